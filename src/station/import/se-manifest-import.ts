/**
 * `station import se-manifest FILE` and the simulate-mode import: read the manifest and the
 * configured trust anchors, verify every entry (core/se-manifest), then store the entries with
 * one audit event (manufacturer-db/se-manifest-store). Nothing is stored unless every entry
 * verified.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import type { SeVendorConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';
import { verifySeManifest, type SeManifestTrust } from '../../core/se-manifest';
import type { SeManifestImportResult, SeManifestStore } from '../../manufacturer-db/se-manifest-store';

export interface SeManifestTrustFiles {
  manifestSignerCertificates: readonly string[];
  vendorCaCertificates: readonly string[];
}

/** Every certificate of a PEM file (one or more BEGIN CERTIFICATE blocks), DER. */
export function readPemCertificates(path: string, what: string): Buffer[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('SE_VENDOR_TRUST_UNREADABLE', `Cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
  const ders = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  if (ders.length === 0) throw new ConfigError('SE_VENDOR_TRUST_UNREADABLE', `The ${what} ${path} holds no PEM certificate.`);
  return ders;
}

/** The configured trust anchors (paths relative to the data dir), plus any the caller adds. */
export function seVendorTrustFiles(config: SeVendorConfig | undefined, dataDir: string, extra?: SeManifestTrustFiles): SeManifestTrustFiles {
  const abs = (p: string) => (isAbsolute(p) ? p : join(dataDir, p));
  return {
    manifestSignerCertificates: [...(config?.manifestSignerCertificates ?? []).map(abs), ...(extra?.manifestSignerCertificates ?? [])],
    vendorCaCertificates: [...(config?.vendorCaCertificates ?? []).map(abs), ...(extra?.vendorCaCertificates ?? [])],
  };
}

export function loadSeVendorTrust(files: SeManifestTrustFiles): SeManifestTrust {
  if (files.manifestSignerCertificates.length === 0 || files.vendorCaCertificates.length === 0) {
    throw new ConfigError(
      'SE_VENDOR_TRUST_MISSING',
      'No SE vendor trust anchors are configured: add "seVendor": { "manifestSignerCertificates": [PEM...], "vendorCaCertificates": [PEM...] } to the configuration, with the certificates your SE vendor published (docs/se-manifest.md).',
    );
  }
  return {
    signerCertificates: files.manifestSignerCertificates.flatMap((p) => readPemCertificates(p, 'manifest signer certificate file')),
    vendorCaCertificates: files.vendorCaCertificates.flatMap((p) => readPemCertificates(p, 'SE vendor CA certificate file')),
  };
}

export interface SeManifestImportOutcome extends SeManifestImportResult {
  file: string;
  warnings: string[];
}

/** Verify and import one manifest file. Throws SeManifestError (nothing stored) when any entry is refused. */
export function importSeManifestFile(store: SeManifestStore, file: string, trust: SeManifestTrust, now?: Date): SeManifestImportOutcome {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ConfigError('MANIFEST_UNREADABLE', `Cannot read the SE manifest ${file}: ${(err as Error).message}`);
  }
  const verified = verifySeManifest(bytes, trust, now ? { now } : {});
  const manifestSha256 = createHash('sha256').update(bytes).digest('hex');
  const result = store.importVerified({ manifestSha256, fileName: basename(file), entries: verified.entries });
  return { ...result, file, warnings: verified.warnings };
}
