/**
 * Method 5's seed vault, inside the PKCS#11 worker (docs/crypto-constructions.md §5 and §6):
 *
 * - `seed.recipientKey`: the seed-import P-256 key pair (token objects; the private key
 *   sensitive, never extractable, DERIVE only), made once by label; returns its public SPKI.
 * - `seed.openFile`: decrypts a vendor seed file: Z = CKM_ECDH1_DERIVE (CKD_NULL, the only KDF
 *   SoftHSM offers: pitfalls.md 10) as an extractable session secret, read once and destroyed;
 *   HKDF-SHA256 and AES-256-GCM in this worker; then each seed is sealed at rest by the HSM
 *   (C_Encrypt CKM_AES_GCM under the vault key, a token AES-256 key that never leaves it) and
 *   its public key derived, so that the station can refuse a chip whose seed changed.
 * - `seed.derivePublicKey`: unseals one seed in the HSM (C_Decrypt), derives the birth key's
 *   public key (src/core/seed-derivation.ts) and returns only the SPKI.
 *
 * Seeds, Z, the CEK and the plaintext are zero-filled before each op returns, and never appear
 * in a result, an error or a log. Every op is safe to repeat (keys are found by label first).
 */
import { createHash } from 'node:crypto';
import { HsmError, StationError } from '../../../core/errors';
import { deriveSeedPublicKeySpki } from '../../../core/seed-derivation';
import {
  openSeedFileEnvelope,
  parseSeedFileEnvelope,
  parseSeedFilePayload,
  seedFileCek,
  seedRecipientKeyId,
  type SeedFilePayload,
} from '../../../core/seed-file-envelope';
import { ckrOf } from '../ckr-names';
import { pkcs11js, type Pkcs11Handle } from '../pkcs11-library';
import { registerWorkerOps, type WorkerOpContext } from '../pkcs11-worker-ops';
import { P256_EC_PARAMS, booleanAttributes, findObjects, readP256PublicKeySpki } from '../pkcs11-objects';

const P = pkcs11js;

/** OID prime256v1 as CKA_EC_PARAMS. */
/** AAD of a sealed seed: "seed-vault-v1" || chipId, so that a sealed seed moved to another chip's row does not open. */
export const SEED_VAULT_AAD_PREFIX = Buffer.from('seed-vault-v1', 'utf8');
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;

export interface SeedRecipientKeyArgs {
  importKeyLabel: string;
}
export interface SeedOpenFileArgs {
  file: Uint8Array;
  importKeyLabel: string;
  vaultKeyLabel: string;
}
export interface SeedDerivePublicKeyArgs {
  chipId: string;
  sealed: Uint8Array;
  vaultKeyLabel: string;
}
export interface SealedSeedResult {
  chipId: string;
  /** iv (12) || ciphertext || tag (16), made by the HSM under the vault key. */
  sealed: Uint8Array;
  /** SHA-256 (hex) of the derived birth key's DER SPKI. */
  publicKeySha256: string;
}
export interface SeedOpenFileResult {
  kid: string;
  vendor: string;
  lot: string;
  createdAt: string;
  chips: SealedSeedResult[];
}

function label(args: unknown, field: string): string {
  const v = (args as Record<string, unknown> | null)?.[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw new HsmError('HSM_OP_BAD_ARGS', `seed vault: ${field} must be a label of 1..64 characters`);
  return v;
}

function bytes(args: unknown, field: string): Buffer {
  const v = (args as Record<string, unknown> | null)?.[field];
  if (!(v instanceof Uint8Array)) throw new HsmError('HSM_OP_BAD_ARGS', `seed vault: ${field} must be bytes`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function findOne(ctx: WorkerOpContext, template: pkcs11js.Template): Pkcs11Handle | undefined {
  const found = findObjects(ctx.api, ctx.session, template, 2);
  if (found.length > 1) throw new HsmError('HSM_KEY_AMBIGUOUS', 'Two objects on the HSM token carry the same seed-vault label; remove one.');
  return found[0];
}

function bool(ctx: WorkerOpContext, handle: Pkcs11Handle, types: number[]): boolean[] {
  return booleanAttributes(ctx.api, ctx.session, handle, types);
}

/** Refuse a key whose attributes are weaker than the template the station makes (pitfalls.md 7). */
function auditKey(ctx: WorkerOpContext, handle: Pkcs11Handle, keyLabel: string, want: Record<string, [number, boolean]>): void {
  const names = Object.keys(want);
  const values = bool(ctx, handle, names.map((n) => want[n]![0]));
  const weak = names.filter((n, i) => values[i] !== want[n]![1]);
  if (weak.length > 0) {
    throw new HsmError('HSM_KEY_WEAK', `The seed-vault key "${keyLabel}" on the HSM has the wrong attributes (${weak.join(', ')}); the station refuses to use it. Remove it so that the station makes a correct one.`);
  }
}

const IMPORT_PRIVATE_AUDIT: Record<string, [number, boolean]> = {
  CKA_TOKEN: [P.CKA_TOKEN, true],
  CKA_PRIVATE: [P.CKA_PRIVATE, true],
  CKA_SENSITIVE: [P.CKA_SENSITIVE, true],
  CKA_EXTRACTABLE: [P.CKA_EXTRACTABLE, false],
  CKA_DERIVE: [P.CKA_DERIVE, true],
  CKA_SIGN: [P.CKA_SIGN, false],
  CKA_DECRYPT: [P.CKA_DECRYPT, false],
  CKA_UNWRAP: [P.CKA_UNWRAP, false],
};

const VAULT_AUDIT: Record<string, [number, boolean]> = {
  CKA_TOKEN: [P.CKA_TOKEN, true],
  CKA_PRIVATE: [P.CKA_PRIVATE, true],
  CKA_SENSITIVE: [P.CKA_SENSITIVE, true],
  CKA_EXTRACTABLE: [P.CKA_EXTRACTABLE, false],
  CKA_ENCRYPT: [P.CKA_ENCRYPT, true],
  CKA_DECRYPT: [P.CKA_DECRYPT, true],
  CKA_WRAP: [P.CKA_WRAP, false],
  CKA_UNWRAP: [P.CKA_UNWRAP, false],
  CKA_DERIVE: [P.CKA_DERIVE, false],
};

/** The seed-import key pair, made on first use. Returns the private key handle and the public SPKI. */
function importKey(ctx: WorkerOpContext, keyLabel: string): { privateKey: Pkcs11Handle; spki: Buffer } {
  const common = [
    { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
    { type: P.CKA_LABEL, value: keyLabel },
  ];
  let privateKey = findOne(ctx, [{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, ...common]);
  let publicKey = findOne(ctx, [{ type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, ...common]);
  if (!privateKey && !publicKey) {
    const id = createHash('sha256').update(keyLabel).digest().subarray(0, 16);
    const pair = ctx.api.C_GenerateKeyPair(
      ctx.session,
      { mechanism: P.CKM_EC_KEY_PAIR_GEN },
      [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        ...common,
        { type: P.CKA_ID, value: id },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: false },
        { type: P.CKA_EC_PARAMS, value: P256_EC_PARAMS },
        { type: P.CKA_VERIFY, value: false },
        { type: P.CKA_ENCRYPT, value: false },
        { type: P.CKA_WRAP, value: false },
        { type: P.CKA_DERIVE, value: false },
      ],
      [
        { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
        ...common,
        { type: P.CKA_ID, value: id },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
        { type: P.CKA_DERIVE, value: true },
        { type: P.CKA_SIGN, value: false },
        { type: P.CKA_DECRYPT, value: false },
        { type: P.CKA_UNWRAP, value: false },
      ],
    );
    privateKey = pair.privateKey;
    publicKey = pair.publicKey;
  }
  if (!privateKey || !publicKey) {
    throw new HsmError('HSM_KEY_NOT_FOUND', `Only half of the seed-import key pair "${keyLabel}" is on the HSM token; remove the other half so that the station makes a new pair (and send its public key to the chip vendor).`);
  }
  auditKey(ctx, privateKey, keyLabel, IMPORT_PRIVATE_AUDIT);
  return { privateKey, spki: readP256PublicKeySpki(ctx.api, ctx.session, publicKey, `The seed-import key "${keyLabel}"`) };
}

/** The vault's AES-256 key (token object, never extractable, ENCRYPT/DECRYPT only), made on first use. */
function vaultKey(ctx: WorkerOpContext, keyLabel: string): Pkcs11Handle {
  const common = [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
    { type: P.CKA_LABEL, value: keyLabel },
  ];
  let key = findOne(ctx, common);
  if (!key) {
    key = ctx.api.C_GenerateKey(ctx.session, { mechanism: P.CKM_AES_KEY_GEN }, [
      ...common,
      { type: P.CKA_ID, value: createHash('sha256').update(keyLabel).digest().subarray(0, 16) },
      { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: false },
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_DECRYPT, value: true },
      { type: P.CKA_WRAP, value: false },
      { type: P.CKA_UNWRAP, value: false },
      { type: P.CKA_DERIVE, value: false },
      { type: P.CKA_SIGN, value: false },
      { type: P.CKA_VERIFY, value: false },
    ]);
  }
  auditKey(ctx, key, keyLabel, VAULT_AUDIT);
  return key;
}

/**
 * CKM_AES_GCM parameters. pkcs11js has two layouts; SoftHSM 2.6.1 is built on the v2.40 header,
 * whose CK_GCM_PARAMS carries ulIvBits, so the v2.40 one is used (both were measured to give
 * the bytes node's aes-256-gcm gives: test/integration/seed-vault.test.ts).
 */
function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM_v240, iv, ivBits: GCM_IV_BYTES * 8, aad, tagBits: GCM_TAG_BYTES * 8 } as pkcs11js.IParams };
}

function vaultAad(chipId: Buffer): Buffer {
  return Buffer.concat([SEED_VAULT_AAD_PREFIX, chipId]);
}

function seal(ctx: WorkerOpContext, key: Pkcs11Handle, chipId: Buffer, seed: Buffer): Buffer {
  const iv = ctx.api.C_GenerateRandom(ctx.session, Buffer.alloc(GCM_IV_BYTES));
  ctx.api.C_EncryptInit(ctx.session, gcm(iv, vaultAad(chipId)), key);
  const sealed = ctx.api.C_Encrypt(ctx.session, seed, Buffer.alloc(seed.length + GCM_TAG_BYTES + 16));
  return Buffer.concat([iv, sealed]);
}

/** The clear seed in a buffer the caller zeroises (`out`: its backing store, zeroised too). */
function unseal(ctx: WorkerOpContext, key: Pkcs11Handle, chipId: Buffer, sealed: Buffer, out: Buffer): Buffer {
  if (sealed.length <= GCM_IV_BYTES + GCM_TAG_BYTES) throw integrity(chipId);
  ctx.api.C_DecryptInit(ctx.session, gcm(sealed.subarray(0, GCM_IV_BYTES), vaultAad(chipId)), key);
  try {
    return ctx.api.C_Decrypt(ctx.session, sealed.subarray(GCM_IV_BYTES), out);
  } catch (err) {
    // SoftHSM answers a failed GCM tag check with CKR_GENERAL_ERROR; others CKR_ENCRYPTED_DATA_INVALID.
    const ckr = ckrOf(err);
    if (ckr === 'CKR_GENERAL_ERROR' || ckr === 'CKR_ENCRYPTED_DATA_INVALID' || ckr === 'CKR_ENCRYPTED_DATA_LEN_RANGE') throw integrity(chipId);
    throw err;
  }
}

function integrity(chipId: Buffer): HsmError {
  return new HsmError('SEED_VAULT_INTEGRITY', `The stored seed of chip ${chipId.toString('hex')} does not open under the HSM's vault key: the database row was altered or belongs to another station. Stop and call the supervisor.`);
}

/** Z = x(d·epk) through the HSM, as a session secret read once and destroyed. The caller zeroises Z. */
function ecdhSecret(ctx: WorkerOpContext, privateKey: Pkcs11Handle, epkPoint: Buffer): Buffer {
  let secret: Pkcs11Handle | undefined;
  try {
    secret = ctx.api.C_DeriveKey(
      ctx.session,
      { mechanism: P.CKM_ECDH1_DERIVE, parameter: { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: epkPoint } as pkcs11js.IParams },
      privateKey,
      [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_SENSITIVE, value: false },
        { type: P.CKA_EXTRACTABLE, value: true },
      ],
    );
    return Buffer.from(ctx.api.C_GetAttributeValue(ctx.session, secret, [{ type: P.CKA_VALUE }])[0]!.value as Buffer);
  } catch (err) {
    if (ckrOf(err) === 'CKR_DOMAIN_PARAMS_INVALID' || ckrOf(err) === 'CKR_ARGUMENTS_BAD' || ckrOf(err) === 'CKR_MECHANISM_PARAM_INVALID') {
      throw new HsmError('SEED_FILE_MALFORMED', 'The seed file is malformed: its ephemeral key (epk) is not a point on P-256.');
    }
    throw err;
  } finally {
    if (secret) ctx.api.C_DestroyObject(ctx.session, secret);
  }
}

/** Errors of the envelope (StationErrors from core) cross the worker boundary as HsmErrors with the same code. */
function asWorkerError(err: unknown): unknown {
  if (err instanceof StationError && !(err instanceof HsmError)) return new HsmError(err.code, err.message);
  return err;
}

function openFile(ctx: WorkerOpContext, args: unknown): SeedOpenFileResult {
  const file = bytes(args, 'file');
  const importKeyLabel = label(args, 'importKeyLabel');
  const vaultKeyLabel = label(args, 'vaultKeyLabel');
  let z: Buffer | undefined;
  let cek: Buffer | undefined;
  let plain: Buffer | undefined;
  let payload: SeedFilePayload | undefined;
  try {
    const envelope = parseSeedFileEnvelope(file);
    const recipient = importKey(ctx, importKeyLabel);
    const kid = seedRecipientKeyId(recipient.spki);
    if (envelope.header.kid !== kid) {
      throw new HsmError(
        'SEED_FILE_WRONG_RECIPIENT',
        `The seed file is encrypted to key ${envelope.header.kid}, not to this station's seed-import key ${kid}. Send the vendor this station's key (station import seeds --show-recipient-key), or import the file on the station it was made for.`,
      );
    }
    z = ecdhSecret(ctx, recipient.privateKey, envelope.epkPoint);
    cek = seedFileCek(z, envelope);
    plain = openSeedFileEnvelope(cek, envelope);
    payload = parseSeedFilePayload(plain);
    const key = vaultKey(ctx, vaultKeyLabel);
    const chips: SealedSeedResult[] = payload.chips.map((c) => {
      const spki = deriveSeedPublicKeySpki(c.seed, c.chipId);
      const sealed = seal(ctx, key, c.chipId, c.seed);
      c.seed.fill(0);
      return { chipId: c.chipId.toString('hex'), sealed, publicKeySha256: createHash('sha256').update(spki).digest('hex') };
    });
    return { kid, vendor: payload.vendor, lot: payload.lot, createdAt: payload.createdAt, chips };
  } catch (err) {
    throw asWorkerError(err);
  } finally {
    z?.fill(0);
    cek?.fill(0);
    plain?.fill(0);
    for (const c of payload?.chips ?? []) c.seed.fill(0);
  }
}

function derivePublicKey(ctx: WorkerOpContext, args: unknown): { spki: Buffer } {
  const chipHex = (args as Record<string, unknown> | null)?.chipId;
  if (typeof chipHex !== 'string' || !/^([0-9a-f]{2}){1,32}$/.test(chipHex)) throw new HsmError('HSM_OP_BAD_ARGS', 'seed vault: chipId must be lowercase hex');
  const chipId = Buffer.from(chipHex, 'hex');
  const sealed = bytes(args, 'sealed');
  const key = vaultKey(ctx, label(args, 'vaultKeyLabel'));
  const out = Buffer.alloc(sealed.length);
  try {
    const seed = unseal(ctx, key, chipId, sealed, out);
    try {
      return { spki: deriveSeedPublicKeySpki(seed, chipId) };
    } catch (err) {
      throw new HsmError('SEED_VAULT_INTEGRITY', `The stored seed of chip ${chipHex} is not a usable seed: ${(err as Error).message}.`);
    } finally {
      seed.fill(0);
    }
  } finally {
    out.fill(0);
  }
}

registerWorkerOps({
  'seed.recipientKey': (ctx, args) => ({ spki: importKey(ctx, label(args, 'importKeyLabel')).spki }),
  'seed.openFile': openFile,
  'seed.derivePublicKey': derivePublicKey,
});
