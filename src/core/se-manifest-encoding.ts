/**
 * The encodings a secure-element manifest mixes (docs/se-manifest.md "Variants"): JWS members
 * in base64url (RFC 7515 section 2, written unpadded by Microchip's tools, accepted padded too),
 * x5c certificates in standard base64 (RFC 7517 section 4.7; padded, unpadded, or wrapped in
 * lines), and JWK coordinates in base64url. Pure: no I/O.
 */

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;
const BASE64_ANY = /^[A-Za-z0-9+/_-]*={0,2}$/;

export class EncodingError extends Error {}

/** base64url, padded or unpadded; anything outside the alphabet is an error (never skipped). */
export function decodeBase64Url(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || value.length === 0) throw new EncodingError(`${what} is not a non-empty string`);
  if (!BASE64URL.test(value) || value.replace(/=+$/, '').length % 4 === 1) throw new EncodingError(`${what} is not base64url`);
  return Buffer.from(value.replace(/=+$/, ''), 'base64url');
}

/**
 * A certificate of an x5c array: standard base64 (RFC 7517 4.7), padded or not. Line breaks and
 * spaces (PEM-style wrapping) are removed; the base64url alphabet is tolerated, since no
 * certificate byte sequence is ambiguous between the two alphabets.
 */
export function decodeX5cCertificate(value: unknown, what: string): Buffer {
  if (typeof value !== 'string') throw new EncodingError(`${what} is not a string`);
  const compact = value.replace(/\s+/g, '');
  if (compact.length === 0 || !BASE64_ANY.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) {
    throw new EncodingError(`${what} is not base64`);
  }
  const der = Buffer.from(compact.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (der.length < 2 || der[0] !== 0x30) throw new EncodingError(`${what} is not a DER certificate`);
  return der;
}

/** Unpadded base64url, as JWS and JWK members are written. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** A secure element's unique id as hex, any case; normalised to lowercase (Microchip writes lowercase). */
export function normaliseUniqueId(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (!/^[0-9a-fA-F]{2,128}$/.test(v) || v.length % 2 !== 0) return undefined;
  return v.toLowerCase();
}
