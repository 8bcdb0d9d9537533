/**
 * P-256 public keys in the encodings the station needs. Pure: no I/O.
 *
 * The compressed SubjectPublicKeyInfo is written by hand because it is a fixed
 * 26-byte DER prefix followed by the 33-byte compressed point; no ASN.1 library
 * is needed for a constant structure, and DPP hashes exactly these bytes.
 */
import { createPublicKey } from 'node:crypto';

/** SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (34 bytes: 0x00 + 33-byte point) } */
const P256_COMPRESSED_SPKI_PREFIX = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
/** Same with a 66-byte BIT STRING for the uncompressed point. */
const P256_UNCOMPRESSED_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

export class EcPublicKeyError extends Error {}

/** Returns the 65-byte uncompressed point (04 || X || Y) of a P-256 SPKI, compressed or not. */
export function p256PointFromSpki(spkiDer: Uint8Array): Buffer {
  const der = Buffer.from(spkiDer);
  if (der.length === 91 && der.subarray(0, 26).equals(P256_UNCOMPRESSED_SPKI_PREFIX)) {
    return der.subarray(26);
  }
  let key;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (err) {
    throw new EcPublicKeyError(`not a valid SubjectPublicKeyInfo: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EcPublicKeyError('the public key is not an EC P-256 key');
  }
  const jwk = key.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x as string, 'base64url');
  const y = Buffer.from(jwk.y as string, 'base64url');
  return Buffer.concat([Buffer.from([4]), x, y]);
}

export function compressP256Point(uncompressed: Uint8Array): Buffer {
  if (uncompressed.length !== 65 || uncompressed[0] !== 4) {
    throw new EcPublicKeyError('expected a 65-byte uncompressed P-256 point');
  }
  const prefix = (uncompressed[64]! & 1) === 1 ? 3 : 2;
  return Buffer.concat([Buffer.from([prefix]), Buffer.from(uncompressed.subarray(1, 33))]);
}

export function p256SpkiFromPoint(uncompressed: Uint8Array): Buffer {
  if (uncompressed.length !== 65 || uncompressed[0] !== 4) {
    throw new EcPublicKeyError('expected a 65-byte uncompressed P-256 point');
  }
  return Buffer.concat([P256_UNCOMPRESSED_SPKI_PREFIX, Buffer.from(uncompressed)]);
}

/** DER SubjectPublicKeyInfo with the compressed point (02/03 || X), as DPP's K: field carries. */
export function compressedP256Spki(spkiDer: Uint8Array): Buffer {
  return Buffer.concat([P256_COMPRESSED_SPKI_PREFIX, compressP256Point(p256PointFromSpki(spkiDer))]);
}

export function isCompressedP256Spki(der: Uint8Array): boolean {
  const b = Buffer.from(der);
  return b.length === 59 && b.subarray(0, 26).equals(P256_COMPRESSED_SPKI_PREFIX) && (b[26] === 2 || b[26] === 3);
}
