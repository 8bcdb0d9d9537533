/**
 * Method 5: the chip vendor's encrypted seed file, as the station reads it (contracts.md §7,
 * docs/crypto-constructions.md §5). Pure: node:crypto only, no I/O. The station runs this inside
 * its PKCS#11 worker, after the HSM has computed the ECDH shared secret Z; the vendor kit writes
 * the same format with its own code (src/simulator/vendor/seed-file-writer.ts).
 *
 * The envelope is shaped like a JWE in flattened JSON serialization (RFC 7516 §7.2.2) but names
 * its own key agreement, "ECDH-ES+HKDF-SHA256", because the contract asks for HKDF and JOSE's
 * ECDH-ES uses the Concat KDF (RFC 7518 §4.6.2); a JOSE library therefore refuses the file
 * instead of decrypting it with the wrong KDF.
 *
 *   { "protected": BASE64URL(UTF-8(header)), "iv": BASE64URL(12 bytes),
 *     "ciphertext": BASE64URL(...), "tag": BASE64URL(16 bytes) }
 *   header = { "typ": "birth-seed-file+json", "v": 1, "alg": "ECDH-ES+HKDF-SHA256", "enc": "A256GCM",
 *              "kid": hex SHA-256(recipient SPKI DER), "epk": { P-256 JWK }, "salt": BASE64URL(32 bytes) }
 *   Z    = x-coordinate of ECDH(recipient private key, epk)
 *   CEK  = HKDF-SHA256(IKM = Z, salt, info = UTF-8("birth-seed-file-v1") || kid (32 bytes) || epk point (65 bytes), L = 32)
 *   AAD  = ASCII(protected)          (every header field is authenticated, as in JWE)
 *   plaintext = UTF-8 JSON { "vendor", "lot", "createdAt", "chips": [ { "chipId": hex, "seed": base64 } ] }
 *
 * Secrets: the CEK and the plaintext are Buffers the caller zeroises; the seeds are returned as
 * Buffers decoded straight from the plaintext bytes. JSON.parse still makes JS strings of the
 * base64 seeds, which cannot be wiped: they live only inside the worker, for one call.
 */
import { createDecipheriv, createHash, hkdfSync } from 'node:crypto';
import { ConfigError } from './errors';
import { MIN_SEED_BYTES } from './seed-derivation';

export const SEED_FILE_TYPE = 'birth-seed-file+json';
export const SEED_FILE_VERSION = 1;
export const SEED_FILE_ALG = 'ECDH-ES+HKDF-SHA256';
export const SEED_FILE_ENC = 'A256GCM';
/** The HKDF info prefix; the recipient key id and the ephemeral point follow it. */
export const SEED_FILE_KDF_INFO_PREFIX = Buffer.from('birth-seed-file-v1', 'utf8');
export const SEED_FILE_IV_BYTES = 12;
export const SEED_FILE_TAG_BYTES = 16;
export const SEED_FILE_SALT_BYTES = 32;
/** Largest chip id accepted (bytes). */
export const MAX_CHIP_ID_BYTES = 32;
/** Largest seed accepted (bytes). */
export const MAX_SEED_BYTES = 64;
/**
 * Most chips in one file: the file is opened by one PKCS#11 worker op, which must finish within
 * the worker's request timeout (30 s; about 0.2 ms per chip measured on SoftHSM).
 */
export const MAX_CHIPS_PER_FILE = 100_000;

export interface SeedFileHeader {
  typ: typeof SEED_FILE_TYPE;
  v: typeof SEED_FILE_VERSION;
  alg: typeof SEED_FILE_ALG;
  enc: typeof SEED_FILE_ENC;
  /** Lowercase hex SHA-256 of the recipient's DER SubjectPublicKeyInfo. */
  kid: string;
  epk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
  salt: string;
}

/** A structurally valid envelope, not yet decrypted. */
export interface SeedFileEnvelope {
  header: SeedFileHeader;
  /** The `protected` member as it appears in the file (its ASCII bytes are the AAD). */
  protectedB64: string;
  /** The ephemeral public point, 04 || X || Y. */
  epkPoint: Buffer;
  salt: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export interface SeedFileChip {
  chipId: Buffer;
  /** Secret: the caller zeroises it. */
  seed: Buffer;
}

export interface SeedFilePayload {
  vendor: string;
  lot: string;
  createdAt: string;
  chips: SeedFileChip[];
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const META = /^[\x20-\x7e]{1,128}$/;

function malformed(reason: string): ConfigError {
  return new ConfigError('SEED_FILE_MALFORMED', `The seed file is malformed: ${reason}. Ask the chip vendor for a file in the documented format (docs/crypto-constructions.md §5).`);
}

function b64url(value: unknown, what: string, length?: number): Buffer {
  if (typeof value !== 'string' || !B64URL.test(value) || value.length % 4 === 1) throw malformed(`${what} is not base64url`);
  const bytes = Buffer.from(value, 'base64url');
  if (length !== undefined && bytes.length !== length) throw malformed(`${what} is ${bytes.length} bytes, expected ${length}`);
  return bytes;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Lowercase hex SHA-256 of a DER SubjectPublicKeyInfo: the recipient key id (`kid`). */
export function seedRecipientKeyId(spkiDer: Uint8Array): string {
  return createHash('sha256').update(spkiDer).digest('hex');
}

/** Parse and check the envelope's structure; nothing is decrypted. Throws SEED_FILE_MALFORMED. */
export function parseSeedFileEnvelope(fileBytes: Uint8Array): SeedFileEnvelope {
  let outer: unknown;
  try {
    outer = JSON.parse(Buffer.from(fileBytes).toString('utf8'));
  } catch {
    throw malformed('it is not JSON');
  }
  if (!isObject(outer)) throw malformed('it is not a JSON object');
  const protectedB64 = outer.protected;
  if (typeof protectedB64 !== 'string' || protectedB64.length === 0) throw malformed('"protected" is missing');
  let header: unknown;
  try {
    header = JSON.parse(b64url(protectedB64, '"protected"').toString('utf8'));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw malformed('the protected header is not JSON');
  }
  if (!isObject(header)) throw malformed('the protected header is not a JSON object');
  if (header.typ !== SEED_FILE_TYPE) throw malformed(`typ is ${JSON.stringify(header.typ)}, expected "${SEED_FILE_TYPE}"`);
  if (header.v !== SEED_FILE_VERSION) throw malformed(`version ${JSON.stringify(header.v)} is not supported (this station reads version ${SEED_FILE_VERSION})`);
  if (header.alg !== SEED_FILE_ALG) throw malformed(`alg is ${JSON.stringify(header.alg)}, expected "${SEED_FILE_ALG}"`);
  if (header.enc !== SEED_FILE_ENC) throw malformed(`enc is ${JSON.stringify(header.enc)}, expected "${SEED_FILE_ENC}"`);
  if (typeof header.kid !== 'string' || !/^[0-9a-f]{64}$/.test(header.kid)) throw malformed('kid is not 64 lowercase hex digits');
  if ('crit' in header) throw malformed('it has a "crit" header, which this station does not understand');
  const epk = header.epk;
  if (!isObject(epk) || epk.kty !== 'EC' || epk.crv !== 'P-256') throw malformed('epk is not a P-256 EC JWK');
  const x = b64url(epk.x, 'epk.x', 32);
  const y = b64url(epk.y, 'epk.y', 32);
  const salt = b64url(header.salt, 'salt', SEED_FILE_SALT_BYTES);
  const iv = b64url(outer.iv, '"iv"', SEED_FILE_IV_BYTES);
  const tag = b64url(outer.tag, '"tag"', SEED_FILE_TAG_BYTES);
  const ciphertext = b64url(outer.ciphertext, '"ciphertext"');
  if (ciphertext.length === 0) throw malformed('the ciphertext is empty');
  return {
    header: { typ: SEED_FILE_TYPE, v: SEED_FILE_VERSION, alg: SEED_FILE_ALG, enc: SEED_FILE_ENC, kid: header.kid, epk: { kty: 'EC', crv: 'P-256', x: epk.x as string, y: epk.y as string }, salt: header.salt as string },
    protectedB64,
    epkPoint: Buffer.concat([Buffer.from([0x04]), x, y]),
    salt,
    iv,
    ciphertext,
    tag,
  };
}

/** The HKDF info: "birth-seed-file-v1" || kid (32 bytes) || epk point (65 bytes). */
export function seedFileKdfInfo(kidHex: string, epkPoint: Uint8Array): Buffer {
  return Buffer.concat([SEED_FILE_KDF_INFO_PREFIX, Buffer.from(kidHex, 'hex'), epkPoint]);
}

/** CEK = HKDF-SHA256(Z, salt, info, 32). The caller zeroises Z and the CEK. */
export function seedFileCek(z: Uint8Array, envelope: SeedFileEnvelope): Buffer {
  return Buffer.from(hkdfSync('sha256', z, envelope.salt, seedFileKdfInfo(envelope.header.kid, envelope.epkPoint), 32));
}

/** AES-256-GCM open with AAD = ASCII(protected). Throws SEED_FILE_DECRYPT_FAILED; the caller zeroises the plaintext. */
export function openSeedFileEnvelope(cek: Uint8Array, envelope: SeedFileEnvelope): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', cek, envelope.iv, { authTagLength: SEED_FILE_TAG_BYTES });
    decipher.setAAD(Buffer.from(envelope.protectedB64, 'ascii'));
    decipher.setAuthTag(envelope.tag);
    const head = decipher.update(envelope.ciphertext);
    const tail = decipher.final();
    const plain = Buffer.concat([head, tail]);
    head.fill(0);
    return plain;
  } catch {
    throw new ConfigError(
      'SEED_FILE_DECRYPT_FAILED',
      'The seed file does not decrypt: its authentication tag does not verify, so it was altered after the vendor encrypted it (or made for another key with the same id). Nothing was imported; ask the chip vendor for the original file.',
    );
  }
}

/** Parse the decrypted plaintext. Seeds come back as Buffers (the caller zeroises them). Throws SEED_FILE_MALFORMED. */
export function parseSeedFilePayload(plain: Uint8Array): SeedFilePayload {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength).toString('utf8'));
  } catch {
    throw malformed('the decrypted content is not JSON');
  }
  if (!isObject(doc)) throw malformed('the decrypted content is not a JSON object');
  for (const field of ['vendor', 'lot', 'createdAt'] as const) {
    if (typeof doc[field] !== 'string' || !META.test(doc[field] as string)) throw malformed(`"${field}" is not printable text of 1..128 characters`);
  }
  if (!Array.isArray(doc.chips) || doc.chips.length === 0) throw malformed('"chips" is not a non-empty list');
  if (doc.chips.length > MAX_CHIPS_PER_FILE) throw malformed(`it lists ${doc.chips.length} chips; at most ${MAX_CHIPS_PER_FILE} per file (ask the vendor to split the lot)`);
  const chips: SeedFileChip[] = [];
  const seen = new Set<string>();
  try {
    for (const [i, entry] of (doc.chips as unknown[]).entries()) {
      if (!isObject(entry)) throw malformed(`chips[${i}] is not an object`);
      const chipHex = entry.chipId;
      if (typeof chipHex !== 'string' || !/^([0-9a-fA-F]{2}){1,32}$/.test(chipHex)) throw malformed(`chips[${i}].chipId is not hex of 1..${MAX_CHIP_ID_BYTES} bytes`);
      const key = chipHex.toLowerCase();
      if (seen.has(key)) throw malformed(`chip ${key} is listed twice`);
      seen.add(key);
      const seedB64 = entry.seed;
      if (typeof seedB64 !== 'string' || !B64.test(seedB64) || seedB64.length % 4 !== 0) throw malformed(`chips[${i}].seed is not base64`);
      const seed = Buffer.from(seedB64, 'base64');
      if (seed.length < MIN_SEED_BYTES || seed.length > MAX_SEED_BYTES) {
        seed.fill(0);
        throw malformed(`the seed of chip ${key} is ${seed.length} bytes (${MIN_SEED_BYTES}..${MAX_SEED_BYTES} accepted)`);
      }
      chips.push({ chipId: Buffer.from(key, 'hex'), seed });
    }
  } catch (err) {
    for (const c of chips) c.seed.fill(0);
    throw err;
  }
  return { vendor: doc.vendor as string, lot: doc.lot as string, createdAt: doc.createdAt as string, chips };
}
