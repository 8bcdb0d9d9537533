/**
 * Object queries every user of a PKCS#11 session needs, in one place: find objects (always
 * closing the search, pitfalls.md 2), read boolean attributes, read the attributes the CA key
 * audit judges, and destroy a session object without failing. Synchronous pkcs11js calls on the
 * caller's session; PKCS#11 errors are left for the caller to type (toHsmError).
 */
import { pkcs11js, type Pkcs11Handle } from './pkcs11-library';
import type { PrivateKeyAudit } from './pkcs11-token';

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
