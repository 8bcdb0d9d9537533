/**
 * `station export --format jws`: the shipped devices as a signed manifest in the SE vendors' JWS
 * envelope (Microchip's Trust&GO manifest, docs/se-manifest.md; read by src/core/se-manifest.ts):
 * a JSON array of flattened JWS objects (RFC 7515 7.2.2), one per device, each with
 *
 * - protected {"typ":"JWT","alg":"ES256","kid": base64url(SKI of the station certificate),
 *   "x5t#S256": base64url(SHA-256 of the station certificate DER)};
 * - header {"uniqueId"} (an unsigned copy, as the vendors write it);
 * - payload: the SecureElement object — version, model, manufacturer, provisioningTimestamp,
 *   uniqueId (the SE serial when the device has an SE, else its hardware id; lowercase hex),
 *   publicKeySet.keys[0] = the birth key as a P-256 JWK whose x5c is the IDevID chain (IDevID,
 *   then the issuing CA) — extended with `serialNumber` (the device serial) and `dppUri`;
 * - signature: ES256 raw R||S by the station identity key, over ASCII(protected "." payload).
 *
 * So an importer configured with the station certificate as a manifest signer and the IDevID
 * root as vendor CA verifies it like a vendor's manifest.
 */
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectKeyIdentifier, id_ce_subjectKeyIdentifier } from '@peculiar/asn1-x509';
import { DatabaseError } from '../../core/errors';
import type { Signer } from '../../core/ports/signer';
import { derEcdsaToRawP256 } from '../records/record-signer';
import type { ExportedDevice } from './export-devices';

const b64url = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url');

function subjectKeyIdentifier(der: Buffer): Buffer {
  const ext = AsnConvert.parse(der, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
  if (!ext) throw new DatabaseError('EXPORT_SIGNER_INVALID', 'The station certificate has no subject key identifier; reissue it ("station ca station-cert --reissue").');
  return Buffer.from(AsnConvert.parse(ext.extnValue.buffer, SubjectKeyIdentifier).buffer);
}

export interface JwsManifestOptions {
  signer: Signer;
  /** The station identity certificate (DER) that certifies the signer's key. */
  stationCertificateDer: Buffer;
  /** The IDevID issuing chain after the leaf (issuing CA; the root is the importer's anchor). */
  idevidIssuersDer: readonly Buffer[];
  manufacturer: { organizationName: string; organizationalUnitName: string };
}

function uniqueIdOf(d: ExportedDevice): string {
  for (const v of [d.seSerial, d.hardwareId]) {
    const hex = v?.trim().toLowerCase();
    if (hex && /^[0-9a-f]{2,128}$/.test(hex) && hex.length % 2 === 0) return hex;
  }
  return Buffer.from(d.serial, 'utf8').toString('hex');
}

export async function exportJwsManifest(devices: readonly ExportedDevice[], opts: JwsManifestOptions): Promise<string> {
  const certKey = new X509Certificate(opts.stationCertificateDer).publicKey.export({ format: 'der', type: 'spki' });
  const signerKey = createPublicKey({ key: opts.signer.publicKeySpki, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' });
  if (!certKey.equals(signerKey)) throw new DatabaseError('EXPORT_SIGNER_INVALID', 'The station certificate does not certify the station identity key; reissue it ("station ca station-cert --reissue").');
  const protectedB64 = b64url(
    JSON.stringify({ typ: 'JWT', alg: 'ES256', kid: b64url(subjectKeyIdentifier(opts.stationCertificateDer)), 'x5t#S256': b64url(createHash('sha256').update(opts.stationCertificateDer).digest()) }),
  );
  const entries: Record<string, unknown>[] = [];
  for (const d of devices) {
    const jwk = createPublicKey({ key: d.publicKeySpki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
    const uniqueId = uniqueIdOf(d);
    const secureElement = {
      version: 1,
      model: d.model,
      manufacturer: opts.manufacturer,
      provisioningTimestamp: d.passedAt ?? new Date().toISOString(),
      uniqueId,
      publicKeySet: { keys: [{ kid: '0', kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, x5c: [d.certificateDer, ...opts.idevidIssuersDer].map((c) => c.toString('base64')) }] },
      serialNumber: d.serial,
      dppUri: d.dppUri,
    };
    const payload = b64url(JSON.stringify(secureElement));
    const der = await opts.signer.sign(Buffer.from(`${protectedB64}.${payload}`, 'ascii'));
    entries.push({ payload, protected: protectedB64, header: { uniqueId }, signature: b64url(derEcdsaToRawP256(der)) });
  }
  return JSON.stringify(entries, null, 2) + '\n';
}
