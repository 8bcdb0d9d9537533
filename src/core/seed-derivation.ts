/**
 * Method 5 (seed-derived): the birth key a device derives from the seed its chip vendor burned
 * in, and that the station derives again from the vendor's seed file (contracts.md §7,
 * docs/crypto-constructions.md §1). Pure: node:crypto only, no I/O.
 *
 *   OKM = HKDF-SHA256(IKM = seed, salt = empty, info = "birth-key-v1" || chipId, L = 40)
 *   d   = (OKM mod (n - 1)) + 1        n = the P-256 group order
 *
 * 40 bytes (320 bits) of OKM reduced modulo n - 1 leave a bias below 2^-64 and give
 * 1 <= d <= n - 1, a valid scalar, with no rejection loop.
 *
 * Secrets: every Buffer holding seed-derived material is zeroised before it is dropped. A JS
 * BigInt cannot be wiped, so the reduction works on BigInts built byte by byte (no hex string
 * of the secret is ever made) and keeps them only for the duration of the call.
 */
import { createECDH, createPrivateKey, hkdfSync, type KeyObject } from 'node:crypto';
import { p256SpkiFromPoint } from './ec-public-key';
import { zeroise } from './bytes';

/** The P-256 group order n. */
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The HKDF info prefix; the chip id follows it. */
export const SEED_KEY_INFO_PREFIX = Buffer.from('birth-key-v1', 'utf8');

/** OKM length: 32 bytes of scalar plus 8 bytes of margin against modulo bias. */
export const SEED_OKM_BYTES = 40;

/** The shortest seed accepted (128 bits). */
export const MIN_SEED_BYTES = 16;

/** PKCS#8 PrivateKeyInfo { v0, { id-ecPublicKey, prime256v1 }, OCTET STRING { ECPrivateKey { 1, OCTET STRING d } } } up to d. */
const P256_PKCS8_PREFIX = Buffer.from('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420', 'hex');

export class SeedDerivationError extends Error {}

function check(seed: Uint8Array, chipId: Uint8Array): void {
  if (seed.length < MIN_SEED_BYTES) throw new SeedDerivationError(`the seed must be at least ${MIN_SEED_BYTES} bytes`);
  if (chipId.length === 0) throw new SeedDerivationError('the chip id is empty');
}

/** The HKDF info string: "birth-key-v1" (UTF-8) followed by the chip id bytes. */
export function seedKeyInfo(chipId: Uint8Array): Buffer {
  return Buffer.concat([SEED_KEY_INFO_PREFIX, chipId]);
}

/** The 32-byte big-endian private scalar d for this seed and chip id. The caller zeroises it. */
export function deriveSeedPrivateScalar(seed: Buffer, chipId: Buffer): Buffer {
  check(seed, chipId);
  const okm = Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), seedKeyInfo(chipId), SEED_OKM_BYTES));
  try {
    let x = 0n;
    for (const byte of okm) x = (x << 8n) | BigInt(byte);
    let d = (x % (P256_ORDER - 1n)) + 1n;
    x = 0n;
    const out = Buffer.alloc(32);
    for (let i = 31; i >= 0; i--) {
      out[i] = Number(d & 0xffn);
      d >>= 8n;
    }
    return out;
  } finally {
    zeroise(okm);
  }
}

/** The uncompressed public point (04 || X || Y) of the derived key. */
function derivePublicPoint(seed: Buffer, chipId: Buffer): Buffer {
  const d = deriveSeedPrivateScalar(seed, chipId);
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    return ecdh.getPublicKey();
  } finally {
    zeroise(d);
  }
}

/** DER SubjectPublicKeyInfo (uncompressed point) of the seed-derived birth key. */
export function deriveSeedPublicKeySpki(seed: Buffer, chipId: Buffer): Buffer {
  return p256SpkiFromPoint(derivePublicPoint(seed, chipId));
}

/**
 * The seed-derived birth key as a node KeyObject (what a device keeps). The PKCS#8 encoding it
 * is built from is zeroised before returning; the KeyObject is then the only copy.
 */
export function deriveSeedPrivateKey(seed: Buffer, chipId: Buffer): KeyObject {
  const d = deriveSeedPrivateScalar(seed, chipId);
  const pkcs8 = Buffer.concat([P256_PKCS8_PREFIX, d]);
  zeroise(d);
  try {
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } finally {
    zeroise(pkcs8);
  }
}
