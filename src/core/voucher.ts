/**
 * BRSKI vouchers and voucher-requests as compact JWS (RFC 7515), in the shape of the JWS-voucher
 * draft (draft-ietf-anima-jws-voucher): protected header
 * `{"alg":"ES256","typ":"voucher-jws+json","x5c":[leaf, chain...]}`, payload the RFC 8366 /
 * RFC 8995 JSON object, signature ES256 (P-256, SHA-256, raw r || s of 32 bytes each).
 * Pure: node:crypto only. The device firmware, the station and the MASA share these helpers.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

export const VOUCHER_JWS_TYP = 'voucher-jws+json';

/** The pledge voucher-request object (RFC 8995 §3.2): `{ "ietf-voucher-request:voucher": {...} }`. */
export const VOUCHER_REQUEST_KEY = 'ietf-voucher-request:voucher';
/** The voucher object (RFC 8366 §5.3): `{ "ietf-voucher:voucher": {...} }`. */
export const VOUCHER_KEY = 'ietf-voucher:voucher';

export interface VoucherJwsHeader {
  alg: string;
  typ?: string;
  /** Standard base64 (not base64url) DER certificates, signer first (RFC 7515 §4.1.6). */
  x5c?: string[];
  [name: string]: unknown;
}

export interface ParsedVoucherJws {
  header: VoucherJwsHeader;
  payload: Record<string, unknown>;
  /** ASCII(BASE64URL(header) || '.' || BASE64URL(payload)): what the signature covers. */
  signingInput: Buffer;
  /** r || s, 64 bytes. */
  signatureRaw: Buffer;
}

export class VoucherJwsError extends Error {}

const B64URL = /^[A-Za-z0-9_-]*$/;

function b64url(bytes: Buffer): string {
  return bytes.toString('base64url');
}

function fromB64url(part: string, what: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) throw new VoucherJwsError(`the JWS ${what} is not base64url`);
  return Buffer.from(part, 'base64url');
}

function readDerLength(b: Buffer, off: number): { len: number; off: number } {
  const first = b[off];
  if (first === undefined) throw new VoucherJwsError('truncated DER signature');
  if (first < 0x80) return { len: first, off: off + 1 };
  if (first === 0x81 && b[off + 1] !== undefined && b[off + 1]! >= 0x80) return { len: b[off + 1]!, off: off + 2 };
  throw new VoucherJwsError('bad DER length in the signature');
}

/**
 * DER ECDSA-Sig-Value `SEQUENCE { INTEGER r, INTEGER s }` to fixed-width r || s (RFC 7518 §3.4).
 * Strict: minimal positive integers, no trailing bytes.
 */
export function ecdsaDerToJose(der: Uint8Array, size = 32): Buffer {
  const b = Buffer.from(der);
  if (b[0] !== 0x30) throw new VoucherJwsError('the signature is not a DER SEQUENCE');
  let { len, off } = readDerLength(b, 1);
  if (off + len !== b.length) throw new VoucherJwsError('DER signature length mismatch');
  const out = Buffer.alloc(size * 2);
  for (let i = 0; i < 2; i++) {
    if (b[off] !== 0x02) throw new VoucherJwsError('expected a DER INTEGER in the signature');
    ({ len, off } = readDerLength(b, off + 1));
    if (len === 0 || off + len > b.length) throw new VoucherJwsError('bad DER INTEGER in the signature');
    let v = b.subarray(off, off + len);
    off += len;
    if (v[0]! & 0x80) throw new VoucherJwsError('negative INTEGER in the signature');
    if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) throw new VoucherJwsError('non-minimal INTEGER in the signature');
    if (v[0] === 0 && v.length > 1) v = v.subarray(1);
    if (v.length > size) throw new VoucherJwsError('INTEGER too large for the curve');
    v.copy(out, i * size + (size - v.length));
  }
  if (off !== b.length) throw new VoucherJwsError('trailing bytes after the signature');
  return out;
}

/**
 * Sign `payload` as a compact JWS. `x5c` is the signer's certificate then its chain (DER);
 * `sign` returns an ECDSA P-256 / SHA-256 signature over its input as DER (a Signer's output).
 */
export function signVoucherJws(payload: object, x5c: Buffer[], sign: (data: Buffer) => Buffer): string {
  const header: VoucherJwsHeader = { alg: 'ES256', typ: VOUCHER_JWS_TYP, x5c: x5c.map((c) => c.toString('base64')) };
  const signingInput = `${b64url(Buffer.from(JSON.stringify(header), 'utf8'))}.${b64url(Buffer.from(JSON.stringify(payload), 'utf8'))}`;
  const signature = ecdsaDerToJose(sign(Buffer.from(signingInput, 'ascii')));
  return `${signingInput}.${b64url(signature)}`;
}

function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new VoucherJwsError(`the JWS ${what} is not UTF-8 JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new VoucherJwsError(`the JWS ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Split and decode a compact JWS; throws VoucherJwsError when it is malformed (signature unchecked). */
export function parseVoucherJws(jws: string | Buffer): ParsedVoucherJws {
  const text = typeof jws === 'string' ? jws : jws.toString('latin1');
  const parts = text.split('.');
  if (parts.length !== 3) throw new VoucherJwsError('a compact JWS has three dot-separated parts');
  const [h, p, s] = parts as [string, string, string];
  const header = jsonObject(fromB64url(h, 'protected header'), 'protected header');
  if (typeof header.alg !== 'string') throw new VoucherJwsError('the JWS header has no alg');
  if (header.x5c !== undefined && (!Array.isArray(header.x5c) || !header.x5c.every((c) => typeof c === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(c)))) {
    throw new VoucherJwsError('the JWS x5c is not an array of base64 certificates');
  }
  const payload = jsonObject(fromB64url(p, 'payload'), 'payload');
  const signatureRaw = fromB64url(s, 'signature');
  return { header: header as VoucherJwsHeader, payload, signingInput: Buffer.from(`${h}.${p}`, 'ascii'), signatureRaw };
}

/** The x5c certificates of a parsed JWS, DER. */
export function voucherJwsCertificates(header: VoucherJwsHeader): Buffer[] {
  return (header.x5c ?? []).map((c) => Buffer.from(c, 'base64'));
}

/**
 * True when the JWS is well formed, uses ES256 with no `crit` extensions, and its signature
 * verifies with `publicKeySpki` (DER SPKI, P-256). Anything else is false.
 */
export function verifyVoucherJws(jws: string | Buffer, publicKeySpki: Buffer | KeyObject): boolean {
  let parsed: ParsedVoucherJws;
  try {
    parsed = parseVoucherJws(jws);
  } catch {
    return false;
  }
  if (parsed.header.alg !== 'ES256' || parsed.header.crit !== undefined || parsed.signatureRaw.length !== 64) return false;
  let key: KeyObject;
  try {
    key = Buffer.isBuffer(publicKeySpki) ? createPublicKey({ key: publicKeySpki, format: 'der', type: 'spki' }) : publicKeySpki;
  } catch {
    return false;
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return false;
  return verify('sha256', parsed.signingInput, { key, dsaEncoding: 'ieee-p1363' }, parsed.signatureRaw);
}
