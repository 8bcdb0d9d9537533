/**
 * Object queries every user of a PKCS#11 session needs, in one place: find objects (always
 * closing the search, pitfalls.md 2), read boolean attributes, read the attributes the CA key
 * audit judges, read a P-256 public key as DER SPKI, and destroy a session object without
 * failing. Synchronous pkcs11js calls on the caller's session; PKCS#11 errors are left for the
 * caller to type (toHsmError), except readP256PublicKeySpki's, which types its own.
 */
import { HsmError } from '../../core/errors';
import { EcPublicKeyError, p256SpkiFromPoint } from '../../core/ec-public-key';
import { toHsmError } from './ckr-names';
import { pkcs11js, type Pkcs11Handle } from './pkcs11-library';

/** The attributes of a private key that the CA key audit judges. */
export type PrivateKeyAudit = Record<
  'token' | 'private' | 'sensitive' | 'extractable' | 'alwaysSensitive' | 'neverExtractable' | 'local' | 'sign' | 'decrypt' | 'unwrap' | 'derive',
  boolean
> & { keyType: number; ecParams: Buffer };

/** CKA_EC_PARAMS of P-256: the namedCurve OID prime256v1. */
export const P256_EC_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');

/**
 * The DER SPKI of a P-256 public key object. CKA_EC_POINT is a DER OCTET STRING around the
 * 65-byte point (some modules give the raw point). `what` names the key in the errors, which are
 * typed here (HSM_KEY_WRONG_TYPE, or the CKR's code).
 */
export function readP256PublicKeySpki(api: pkcs11js.PKCS11, session: Pkcs11Handle, publicKey: Pkcs11Handle, what = 'The key'): Buffer {
  let attrs: pkcs11js.TemplateResult;
  try {
    attrs = api.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_EC_POINT }, { type: pkcs11js.CKA_EC_PARAMS }]);
  } catch (err) {
    throw toHsmError(err, 'reading a public key');
  }
  if (!(attrs[1]!.value as Buffer).equals(P256_EC_PARAMS)) throw new HsmError('HSM_KEY_WRONG_TYPE', `${what} is not on curve P-256.`);
  let point = attrs[0]!.value as Buffer;
  if (point.length === 67 && point[0] === 0x04 && point[1] === 65) point = point.subarray(2);
  try {
    return p256SpkiFromPoint(point);
  } catch (err) {
    if (err instanceof EcPublicKeyError) throw new HsmError('HSM_KEY_WRONG_TYPE', `${what} has no uncompressed P-256 point: ${err.message}.`);
    throw err;
  }
}

export function findObjects(api: pkcs11js.PKCS11, session: Pkcs11Handle, template: pkcs11js.Template, max: number): Pkcs11Handle[] {
  api.C_FindObjectsInit(session, template);
  try {
    return api.C_FindObjects(session, max);
  } finally {
    api.C_FindObjectsFinal(session);
  }
}

/** CK_BBOOL attributes, in the order asked; an absent or empty value reads false. */
export function booleanAttributes(api: pkcs11js.PKCS11, session: Pkcs11Handle, handle: Pkcs11Handle, types: readonly number[]): boolean[] {
  return api.C_GetAttributeValue(session, handle, types.map((type) => ({ type }))).map((a) => {
    const v = a.value as Buffer | undefined;
    return v !== undefined && v.length > 0 && v[0] !== 0;
  });
}

const AUDIT_FLAGS = [
  ['token', pkcs11js.CKA_TOKEN],
  ['private', pkcs11js.CKA_PRIVATE],
  ['sensitive', pkcs11js.CKA_SENSITIVE],
  ['extractable', pkcs11js.CKA_EXTRACTABLE],
  ['alwaysSensitive', pkcs11js.CKA_ALWAYS_SENSITIVE],
  ['neverExtractable', pkcs11js.CKA_NEVER_EXTRACTABLE],
  ['local', pkcs11js.CKA_LOCAL],
  ['sign', pkcs11js.CKA_SIGN],
  ['decrypt', pkcs11js.CKA_DECRYPT],
  ['unwrap', pkcs11js.CKA_UNWRAP],
  ['derive', pkcs11js.CKA_DERIVE],
] as const;

/** The attributes assertStrongCaKey judges, read from a private key. */
export function readPrivateKeyAudit(api: pkcs11js.PKCS11, session: Pkcs11Handle, privateKey: Pkcs11Handle): PrivateKeyAudit {
  const flags = booleanAttributes(api, session, privateKey, AUDIT_FLAGS.map(([, type]) => type));
  const [keyType, ecParams] = api.C_GetAttributeValue(session, privateKey, [{ type: pkcs11js.CKA_KEY_TYPE }, { type: pkcs11js.CKA_EC_PARAMS }]);
  const audit = { keyType: (keyType!.value as Buffer).readUInt32LE(0), ecParams: ecParams!.value as Buffer } as PrivateKeyAudit;
  AUDIT_FLAGS.forEach(([name], i) => {
    audit[name] = flags[i]!;
  });
  return audit;
}

/** Destroy a (session) object; a failure is ignored: a session object dies with its session anyway. */
export function destroyQuietly(api: pkcs11js.PKCS11, session: Pkcs11Handle, handle: Pkcs11Handle | undefined): void {
  if (!handle) return;
  try {
    api.C_DestroyObject(session, handle);
  } catch {
    // see above
  }
}
