/**
 * The simulated SE vendor's manifest signing key and its self-signed certificate (as Microchip's
 * "Manifest Signer 00n" certificates are), kept in the vendor folder: key PKCS#8 PEM (0600),
 * certificate PEM. The manufacturer configures the certificate as a trusted manifest signer.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OID_COMMON_NAME, OID_ORGANIZATION, buildVendorCertificate, endEntityExtensions, printableName } from './vendor-cert-builder';

export const MANIFEST_SIGNER_KEY_FILE = 'manifest-signer-key.pem';
export const MANIFEST_SIGNER_CERT_FILE = 'manifest-signer.pem';

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

function writeAtomically(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

export class SeManifestSigner {
  private constructor(
    /** The signing key (P-256). */
    readonly key: KeyObject,
    /** Its self-signed certificate, DER. */
    readonly certificate: Buffer,
  ) {}

  static openOrCreate(dir: string, organization: string): SeManifestSigner {
    const keyPath = join(dir, MANIFEST_SIGNER_KEY_FILE);
    const certPath = join(dir, MANIFEST_SIGNER_CERT_FILE);
    if (existsSync(keyPath) && existsSync(certPath)) {
      const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(readFileSync(certPath, 'utf8'));
      if (!m) throw new Error(`${certPath} holds no certificate`);
      return new SeManifestSigner(createPrivateKey(readFileSync(keyPath, 'utf8')), Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const name = printableName([
      [OID_ORGANIZATION, organization],
      [OID_COMMON_NAME, 'Manifest Signer 001'],
    ]);
    const certificate = buildVendorCertificate({ issuer: name, subject: name, subjectSpki: spki, extensions: endEntityExtensions(spki, spki), signingKey: privateKey });
    writeAtomically(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
    writeAtomically(certPath, pem(certificate), 0o644);
    return new SeManifestSigner(privateKey, certificate);
  }

  get spki(): Buffer {
    return createPublicKey(this.key).export({ format: 'der', type: 'spki' });
  }
}
