/**
 * Method 3 (factory-injected key), HSM side, in the PKCS#11 worker (contracts.md §7,
 * docs/crypto-constructions.md §2, docs/hsm.md §KEK):
 *
 *   inject.setup              the mechanisms method 3 needs; the KEK (AES-256 token key, WRAP and
 *                             UNWRAP only, sensitive, never extractable) found by label or made
 *                             once; its attributes audited; a self-check that a device key the
 *                             station makes or unwraps cannot be read in clear.
 *   inject.generate-wrapped   N device key pairs as session objects (private: sensitive,
 *                             extractable only so that it can be wrapped), each wrapped under the
 *                             KEK with CKM_AES_KEY_WRAP_PAD; the objects are destroyed.
 *   inject.wrap-for-transport unwrap a KEK-wrapped key into a session object; an ephemeral ECDH
 *                             key; Z = CKM_ECDH1_DERIVE(CKD_NULL) with the device's transport key
 *                             as a session secret; KEK_t = HKDF-SHA256(Z, "inject-v1" || serial)
 *                             here in the worker; KEK_t imported as a WRAP-only AES session key;
 *                             C_WrapKey(CKM_AES_KEY_WRAP_PAD, KEK_t, device key); Z and KEK_t
 *                             zero-filled; every object destroyed.
 *
 * The device private key never crosses the PKCS#11 API in clear: no C_GetAttributeValue of its
 * CKA_VALUE, no C_CreateObject of it. Only public keys and wrapped blobs are returned.
 * Each op is safe to run again after a session recovery: the objects it made died with their
 * session or are destroyed in `finally`, and the KEK is found by label before it is made.
 */
import { hkdfSync } from 'node:crypto';
import { HsmError } from '../../../core/errors';
import { EcPublicKeyError, p256PointFromSpki } from '../../../core/ec-public-key';
import { zeroise } from '../../../core/bytes';
import { ckrOf, toHsmError } from '../ckr-names';
import { pkcs11js, type Pkcs11Handle } from '../pkcs11-library';
import { P256_EC_PARAMS } from '../pkcs11-token';
import { registerWorkerOps, type WorkerOpContext } from '../pkcs11-worker-ops';
import { booleanAttributes, destroyQuietly as destroyObjectQuietly, findObjects, readP256PublicKeySpki } from '../pkcs11-objects';

/** The mechanisms method 3 needs besides the CA's (checked by inject.setup, at start, when method 3 is in use). */
export const KEY_INJECTION_MECHANISMS = ['CKM_EC_KEY_PAIR_GEN', 'CKM_ECDH1_DERIVE', 'CKM_AES_KEY_GEN', 'CKM_AES_KEY_WRAP_PAD'] as const;

/** HKDF info prefix of the transport wrap; the serial (UTF-8) follows it (docs/crypto-constructions.md §2). */
const INFO_PREFIX = Buffer.from('inject-v1', 'utf8');
const PRINTABLE_SERIAL = /^[A-Za-z0-9 '()+,\-./:=?]{1,64}$/;
/** Keys per inject.generate-wrapped call (the parent splits bigger batches). */
export const MAX_KEYS_PER_OP = 1024;
const WRAP_BUFFER_BYTES = 512;

const P = pkcs11js;

/** What inject.setup reports (structured clone). */
export interface KeyInjectionSetupResult {
  kekLabel: string;
  kekCreated: boolean;
  /** The self-check's findings on a generated and an unwrapped device key (all must hold). */
  deviceKey: { generated: DeviceKeyFindings; unwrapped: DeviceKeyFindings };
}

export interface DeviceKeyFindings {
  token: boolean;
  sensitive: boolean;
  extractable: boolean;
  sign: boolean;
  derive: boolean;
  decrypt: boolean;
  unwrap: boolean;
  /** The CKR name C_GetAttributeValue(CKA_VALUE) failed with, or null if it returned the value (a failure). */
  valueReadRefusedWith: string | null;
}

function badArgs(op: string, what: string): HsmError {
  return new HsmError('HSM_BAD_REQUEST', `${op}: ${what}.`);
}

function bytesArg(op: string, v: unknown, what: string, min: number, max: number): Buffer {
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max) throw badArgs(op, `${what} must be ${min}..${max} bytes`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function labelArg(op: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw badArgs(op, 'kekLabel must be a label of 1..64 characters');
  return v;
}

function argsObject(op: string, args: unknown): Record<string, unknown> {
  if (typeof args !== 'object' || args === null) throw badArgs(op, 'arguments must be an object');
  return args as Record<string, unknown>;
}

const secretKeyBase = (): pkcs11js.Template => [
  { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
];

/** The KEK: a token AES-256 key for wrapping and unwrapping device keys, and nothing else. */
function kekTemplate(label: string): pkcs11js.Template {
  return [
    ...secretKeyBase(),
    { type: P.CKA_VALUE_LEN, value: 32 },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
    { type: P.CKA_WRAP, value: true },
    { type: P.CKA_UNWRAP, value: true },
    { type: P.CKA_ENCRYPT, value: false },
    { type: P.CKA_DECRYPT, value: false },
    { type: P.CKA_SIGN, value: false },
    { type: P.CKA_VERIFY, value: false },
    { type: P.CKA_DERIVE, value: false },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_ID, value: Buffer.from(label, 'utf8') },
  ];
}

/**
 * A device private key inside the HSM: a session object, sensitive (its value is never readable),
 * extractable only so that C_WrapKey can wrap it; no use of its own in the HSM.
 */
function devicePrivateTemplate(): pkcs11js.Template {
  return [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: true },
    { type: P.CKA_SIGN, value: false },
    { type: P.CKA_DERIVE, value: false },
    { type: P.CKA_DECRYPT, value: false },
    { type: P.CKA_UNWRAP, value: false },
    { type: P.CKA_SIGN_RECOVER, value: false },
    { type: P.CKA_LABEL, value: 'inject-device-key' },
  ];
}

function publicTemplate(label: string): pkcs11js.Template {
  return [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_EC_PARAMS, value: P256_EC_PARAMS },
    { type: P.CKA_VERIFY, value: false },
    { type: P.CKA_ENCRYPT, value: false },
    { type: P.CKA_WRAP, value: false },
    { type: P.CKA_DERIVE, value: false },
    { type: P.CKA_LABEL, value: label },
  ];
}

/** The HSM's ephemeral ECDH key: session, sensitive, never extractable, DERIVE only. */
function ephemeralPrivateTemplate(): pkcs11js.Template {
  return [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
    { type: P.CKA_DERIVE, value: true },
    { type: P.CKA_SIGN, value: false },
    { type: P.CKA_DECRYPT, value: false },
    { type: P.CKA_UNWRAP, value: false },
    { type: P.CKA_LABEL, value: 'inject-ephemeral' },
  ];
}

/** Z, the raw ECDH secret (CKD_NULL): a session secret read once for the HKDF, then destroyed. */
function sharedSecretTemplate(): pkcs11js.Template {
  return [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
    { type: P.CKA_VALUE_LEN, value: 32 },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_SENSITIVE, value: false },
    { type: P.CKA_EXTRACTABLE, value: true },
    { type: P.CKA_ENCRYPT, value: false },
    { type: P.CKA_DECRYPT, value: false },
    { type: P.CKA_WRAP, value: false },
    { type: P.CKA_UNWRAP, value: false },
    { type: P.CKA_SIGN, value: false },
    { type: P.CKA_VERIFY, value: false },
    { type: P.CKA_DERIVE, value: false },
  ];
}

/** The per-device transport KEK: a session AES-256 key that can only wrap. */
function transportKekTemplate(value: Buffer): pkcs11js.Template {
  return [
    ...secretKeyBase(),
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
    { type: P.CKA_WRAP, value: true },
    { type: P.CKA_UNWRAP, value: false },
    { type: P.CKA_ENCRYPT, value: false },
    { type: P.CKA_DECRYPT, value: false },
    { type: P.CKA_SIGN, value: false },
    { type: P.CKA_VERIFY, value: false },
    { type: P.CKA_DERIVE, value: false },
    { type: P.CKA_VALUE, value },
  ];
}

function find(ctx: WorkerOpContext, template: pkcs11js.Template, max: number): Pkcs11Handle[] {
  return findObjects(ctx.api, ctx.session, template, max);
}

function findKek(ctx: WorkerOpContext, label: string): Pkcs11Handle | undefined {
  const found = find(ctx, [...secretKeyBase(), { type: P.CKA_TOKEN, value: true }, { type: P.CKA_LABEL, value: label }], 2);
  if (found.length > 1) throw new HsmError('HSM_KEY_AMBIGUOUS', `Token ${ctx.tokenLabel} holds more than one AES key labelled "${label}"; the KEK must be unique.`);
  return found[0];
}

function requireKek(ctx: WorkerOpContext, label: string): Pkcs11Handle {
  const kek = findKek(ctx, label);
  if (!kek) {
    throw new HsmError('HSM_KEK_MISSING', `The key-encryption key "${label}" is not on token ${ctx.tokenLabel}. Run "station prepare" (it makes the KEK once), or check hsm.kekLabel.`, {
      details: { token: ctx.tokenLabel, key: label },
    });
  }
  return kek;
}

function flags(ctx: WorkerOpContext, handle: Pkcs11Handle, types: readonly number[]): boolean[] {
  return booleanAttributes(ctx.api, ctx.session, handle, types);
}

/** What the KEK lacks (empty = good): the same strictness as the CA key audit (pitfalls.md 7). */
export function kekWeaknesses(ctx: WorkerOpContext, kek: Pkcs11Handle): string[] {
  const checks = [
    [P.CKA_TOKEN, true, 'CKA_TOKEN=true'],
    [P.CKA_PRIVATE, true, 'CKA_PRIVATE=true'],
    [P.CKA_SENSITIVE, true, 'CKA_SENSITIVE=true'],
    [P.CKA_EXTRACTABLE, false, 'CKA_EXTRACTABLE=false'],
    [P.CKA_ALWAYS_SENSITIVE, true, 'CKA_ALWAYS_SENSITIVE=true'],
    [P.CKA_NEVER_EXTRACTABLE, true, 'CKA_NEVER_EXTRACTABLE=true'],
    [P.CKA_WRAP, true, 'CKA_WRAP=true'],
    [P.CKA_UNWRAP, true, 'CKA_UNWRAP=true'],
    [P.CKA_ENCRYPT, false, 'CKA_ENCRYPT=false'],
    [P.CKA_DECRYPT, false, 'CKA_DECRYPT=false'],
    [P.CKA_SIGN, false, 'CKA_SIGN=false'],
    [P.CKA_VERIFY, false, 'CKA_VERIFY=false'],
    [P.CKA_DERIVE, false, 'CKA_DERIVE=false'],
  ] as const;
  const values = flags(
    ctx,
    kek,
    checks.map(([t]) => t),
  );
  const out: string[] = checks.filter(([, want], i) => values[i] !== want).map(([, , what]) => what);
  const len = ctx.api.C_GetAttributeValue(ctx.session, kek, [{ type: P.CKA_VALUE_LEN }])[0]!.value as Buffer;
  if (len.length === 0 || len.readUIntLE(0, Math.min(len.length, 6)) !== 32) out.push('CKA_VALUE_LEN=32 (AES-256)');
  return out;
}

function destroyQuietly(ctx: WorkerOpContext, handle: Pkcs11Handle | undefined): void {
  destroyObjectQuietly(ctx.api, ctx.session, handle);
}

function readSpki(ctx: WorkerOpContext, publicKey: Pkcs11Handle): Buffer {
  return readP256PublicKeySpki(ctx.api, ctx.session, publicKey);
}

function wrap(ctx: WorkerOpContext, wrappingKey: Pkcs11Handle, key: Pkcs11Handle): Buffer {
  const out = ctx.api.C_WrapKey(ctx.session, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, wrappingKey, key, Buffer.alloc(WRAP_BUFFER_BYTES));
  return Buffer.from(out);
}

function generateDeviceKey(ctx: WorkerOpContext): { privateKey: Pkcs11Handle; publicKey: Pkcs11Handle } {
  return ctx.api.C_GenerateKeyPair(ctx.session, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, publicTemplate('inject-device-key'), devicePrivateTemplate());
}

function unwrapDeviceKey(ctx: WorkerOpContext, kek: Pkcs11Handle, wrapped: Buffer): Pkcs11Handle {
  try {
    return ctx.api.C_UnwrapKey(ctx.session, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, kek, wrapped, devicePrivateTemplate());
  } catch (err) {
    const ckr = ckrOf(err);
    if (ckr === undefined) throw err;
    // SoftHSM 2.6.1 answers a blob that fails the RFC 5649 check with CKR_GENERAL_ERROR, which
    // also means "token gone" (a recoverable session error). The KEK is looked up again: if the
    // token answers, the blob is at fault, and the line must not stop for one bad blob.
    if (ckr !== 'CKR_WRAPPED_KEY_INVALID' && ckr !== 'CKR_WRAPPED_KEY_LEN_RANGE' && ckr !== 'CKR_ENCRYPTED_DATA_INVALID') {
      if (ckr !== 'CKR_GENERAL_ERROR') throw err;
      ctx.api.C_GetAttributeValue(ctx.session, kek, [{ type: P.CKA_KEY_TYPE }]); // throws a recoverable error when the token is gone
    }
    throw new HsmError('HSM_WRAPPED_KEY_INVALID', `The prepared key does not unwrap under the KEK (${ckr}): it was wrapped under another KEK, or its blob is damaged. The key cannot be used.`, {
      details: { unwrapCkr: ckr },
    });
  }
}

/** What an object shows of itself, and whether its value can be read (it must not). */
function findings(ctx: WorkerOpContext, key: Pkcs11Handle): DeviceKeyFindings {
  const [token, sensitive, extractable, sign, derive, decrypt, unwrap] = flags(ctx, key, [
    P.CKA_TOKEN,
    P.CKA_SENSITIVE,
    P.CKA_EXTRACTABLE,
    P.CKA_SIGN,
    P.CKA_DERIVE,
    P.CKA_DECRYPT,
    P.CKA_UNWRAP,
  ]) as [boolean, boolean, boolean, boolean, boolean, boolean, boolean];
  let valueReadRefusedWith: string | null = null;
  try {
    const leaked = ctx.api.C_GetAttributeValue(ctx.session, key, [{ type: P.CKA_VALUE }])[0]!.value as Buffer;
    zeroise(leaked);
  } catch (err) {
    valueReadRefusedWith = ckrOf(err) ?? 'refused';
  }
  return { token, sensitive, extractable, sign, derive, decrypt, unwrap, valueReadRefusedWith };
}

function findingsProblems(f: DeviceKeyFindings, what: string): string[] {
  const out: string[] = [];
  if (f.token) out.push(`${what} is a token object`);
  if (!f.sensitive) out.push(`${what} is not sensitive`);
  if (f.sign || f.derive || f.decrypt || f.unwrap) out.push(`${what} has a use of its own in the HSM`);
  if (f.valueReadRefusedWith === null) out.push(`${what}'s value can be read in clear`);
  return out;
}

function checkMechanisms(ctx: WorkerOpContext): void {
  const have = new Set(ctx.api.C_GetMechanismList(ctx.slot));
  const missing = KEY_INJECTION_MECHANISMS.filter((name) => !have.has((P as unknown as Record<string, number>)[name]!));
  if (missing.length > 0) {
    throw new HsmError('HSM_MECHANISM_MISSING', `The HSM token ${ctx.tokenLabel} lacks mechanisms method 3 (factory-injected key) needs: ${missing.join(', ')}.`, {
      details: { token: ctx.tokenLabel, missing: missing.join(',') },
    });
  }
}

function setup(ctx: WorkerOpContext, args: unknown): KeyInjectionSetupResult {
  const a = argsObject('inject.setup', args);
  const label = labelArg('inject.setup', a.kekLabel);
  const create = a.create === true;
  checkMechanisms(ctx);
  let kek = findKek(ctx, label);
  let kekCreated = false;
  if (!kek) {
    if (!create) requireKek(ctx, label);
    try {
      kek = ctx.api.C_GenerateKey(ctx.session, { mechanism: P.CKM_AES_KEY_GEN }, kekTemplate(label));
    } catch (err) {
      throw toHsmError(err, `making the key-encryption key "${label}"`);
    }
    kekCreated = true;
  }
  const weak = kekWeaknesses(ctx, kek);
  if (weak.length > 0) {
    throw new HsmError('HSM_KEK_WEAK', `The key-encryption key "${label}" on token ${ctx.tokenLabel} is weaker than the station requires and will not be used. It lacks: ${weak.join(', ')}.`, {
      details: { key: label },
    });
  }
  // Self-check: a device key made here, and one unwrapped from its blob, can be wrapped and nothing else.
  let generated: { privateKey: Pkcs11Handle; publicKey: Pkcs11Handle } | undefined;
  let unwrapped: Pkcs11Handle | undefined;
  try {
    generated = generateDeviceKey(ctx);
    const blob = wrap(ctx, kek, generated.privateKey);
    unwrapped = unwrapDeviceKey(ctx, kek, blob);
    const result = { generated: findings(ctx, generated.privateKey), unwrapped: findings(ctx, unwrapped) };
    const problems = [...findingsProblems(result.generated, 'a generated device key'), ...findingsProblems(result.unwrapped, 'an unwrapped device key')];
    if (problems.length > 0) {
      throw new HsmError('HSM_KEY_INJECTION_UNSAFE', `The HSM token ${ctx.tokenLabel} does not keep device keys secret as method 3 requires: ${problems.join('; ')}.`);
    }
    return { kekLabel: label, kekCreated, deviceKey: result };
  } finally {
    destroyQuietly(ctx, unwrapped);
    destroyQuietly(ctx, generated?.privateKey);
    destroyQuietly(ctx, generated?.publicKey);
  }
}

function generateWrapped(ctx: WorkerOpContext, args: unknown): { keys: { spki: Buffer; wrappedKey: Buffer }[] } {
  const a = argsObject('inject.generate-wrapped', args);
  const kek = requireKek(ctx, labelArg('inject.generate-wrapped', a.kekLabel));
  const count = a.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_KEYS_PER_OP) {
    throw badArgs('inject.generate-wrapped', `count must be a whole number in 1..${MAX_KEYS_PER_OP}`);
  }
  const keys: { spki: Buffer; wrappedKey: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    let pair: { privateKey: Pkcs11Handle; publicKey: Pkcs11Handle } | undefined;
    try {
      pair = generateDeviceKey(ctx);
      keys.push({ spki: readSpki(ctx, pair.publicKey), wrappedKey: wrap(ctx, kek, pair.privateKey) });
    } catch (err) {
      throw toHsmError(err, 'making and wrapping a device key');
    } finally {
      destroyQuietly(ctx, pair?.privateKey);
      destroyQuietly(ctx, pair?.publicKey);
    }
  }
  return { keys };
}

function wrapForTransport(ctx: WorkerOpContext, args: unknown): { hsmPublicKey: Buffer; wrappedKey: Buffer } {
  const op = 'inject.wrap-for-transport';
  const a = argsObject(op, args);
  const kek = requireKek(ctx, labelArg(op, a.kekLabel));
  const kekWrapped = bytesArg(op, a.kekWrappedKey, 'kekWrappedKey', 16, WRAP_BUFFER_BYTES);
  const transportSpki = bytesArg(op, a.transportSpki, 'transportSpki', 1, 256);
  const serial = a.serial;
  if (typeof serial !== 'string' || !PRINTABLE_SERIAL.test(serial)) throw badArgs(op, 'serial must be a PrintableString of 1..64 characters');
  let transportPoint: Buffer;
  try {
    transportPoint = p256PointFromSpki(transportSpki);
  } catch (err) {
    if (err instanceof EcPublicKeyError) throw new HsmError('HSM_BAD_REQUEST', `${op}: the device's transport key is not a P-256 public key (${err.message}).`);
    throw err;
  }

  let deviceKey: Pkcs11Handle | undefined;
  let ephemeral: { privateKey: Pkcs11Handle; publicKey: Pkcs11Handle } | undefined;
  let secret: Pkcs11Handle | undefined;
  let transportKek: Pkcs11Handle | undefined;
  let z: Buffer | undefined;
  let okm: Buffer | undefined;
  try {
    deviceKey = unwrapDeviceKey(ctx, kek, kekWrapped);
    ephemeral = ctx.api.C_GenerateKeyPair(ctx.session, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, publicTemplate('inject-ephemeral'), ephemeralPrivateTemplate());
    const ecdh: pkcs11js.ECDH1 = { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: transportPoint };
    secret = ctx.api.C_DeriveKey(ctx.session, { mechanism: P.CKM_ECDH1_DERIVE, parameter: ecdh }, ephemeral.privateKey, sharedSecretTemplate());
    z = ctx.api.C_GetAttributeValue(ctx.session, secret, [{ type: P.CKA_VALUE }])[0]!.value as Buffer;
    destroyQuietly(ctx, secret);
    secret = undefined;
    okm = Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), Buffer.concat([INFO_PREFIX, Buffer.from(serial, 'utf8')]), 32));
    zeroise(z);
    transportKek = ctx.api.C_CreateObject(ctx.session, transportKekTemplate(okm));
    zeroise(okm);
    const wrappedKey = wrap(ctx, transportKek, deviceKey);
    return { hsmPublicKey: readSpki(ctx, ephemeral.publicKey), wrappedKey };
  } catch (err) {
    throw toHsmError(err, 'wrapping a device key for its transport key');
  } finally {
    if (z) zeroise(z);
    if (okm) zeroise(okm);
    destroyQuietly(ctx, secret);
    destroyQuietly(ctx, transportKek);
    destroyQuietly(ctx, deviceKey);
    destroyQuietly(ctx, ephemeral?.privateKey);
    destroyQuietly(ctx, ephemeral?.publicKey);
  }
}

registerWorkerOps({
  'inject.setup': setup,
  'inject.generate-wrapped': generateWrapped,
  'inject.wrap-for-transport': wrapForTransport,
});
