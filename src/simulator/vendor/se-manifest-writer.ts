/**
 * The simulated SE vendor writes its manifest the way Microchip's tools write a Trust&GO manifest
 * (docs/se-manifest.md): a JSON array of SignedSecureElement objects, each a flattened JWS whose
 * protected header is {"typ":"JWT","alg":"ES256","kid":SKI,"x5t#S256":thumbprint} of the signer
 * certificate, whose payload is the SecureElement object (uniqueId and a JWK set with the SE key
 * and its x5c chain), with the uniqueId repeated in the unprotected header, and an ES256
 * signature as raw R||S; every base64url member unpadded.
 */
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { keyIdentifier } from './vendor-cert-builder';

export interface EntityName {
  organizationName: string;
  organizationalUnitName: string;
}

/** What a batch of SEs shares (one order, one group). */
export interface SeBatch {
  model: string;
  partNumber: string;
  manufacturer: EntityName;
  provisioner: EntityName;
  distributor: EntityName;
  groupId: string;
}

export interface ManifestSe {
  /** Lowercase hex. */
  uniqueId: string;
  /** DER SPKI of the SE key (slot 0). */
  spki: Buffer;
  /** The SE key's certificate, then its issuers, DER. */
  x5c: Buffer[];
  provisionedAt: Date;
}

export interface ManifestSigningKey {
  key: KeyObject;
  /** The signer's certificate, DER (its SKI is the kid, its SHA-256 the x5t#S256). */
  certificate: Buffer;
  spki: Buffer;
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

export function signedSecureElement(se: ManifestSe, batch: SeBatch, signer: ManifestSigningKey): Record<string, unknown> {
  const jwk = createPublicKey({ key: se.spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  const secureElement = {
    version: 1,
    model: batch.model,
    partNumber: batch.partNumber,
    manufacturer: batch.manufacturer,
    provisioner: batch.provisioner,
    distributor: batch.distributor,
    groupId: batch.groupId,
    provisioningTimestamp: se.provisionedAt.toISOString(),
    uniqueId: se.uniqueId,
    publicKeySet: { keys: [{ kid: '0', kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, x5c: se.x5c.map((c) => c.toString('base64')) }] },
  };
  const protectedHeader = {
    typ: 'JWT',
    alg: 'ES256',
    kid: b64url(keyIdentifier(signer.spki)),
    'x5t#S256': b64url(createHash('sha256').update(signer.certificate).digest()),
  };
  const payload = b64url(Buffer.from(JSON.stringify(secureElement), 'utf8'));
  const protectedB64 = b64url(Buffer.from(JSON.stringify(protectedHeader), 'utf8'));
  const signature = sign('sha256', Buffer.from(`${protectedB64}.${payload}`, 'ascii'), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  return { payload, protected: protectedB64, header: { uniqueId: se.uniqueId }, signature: b64url(signature) };
}

/** The manifest file's text, indented as Microchip's files are. */
export function manifestJson(entries: readonly Record<string, unknown>[]): string {
  return JSON.stringify(entries, null, 2) + '\n';
}
