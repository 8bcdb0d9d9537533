/**
 * Translation of PKCS#11 return values into typed HsmErrors with messages an operator can act on.
 * The CKR name is always kept in the error's details.
 */
import * as pkcs11js from 'pkcs11js';
import { HsmError, type StageName } from '../../core/errors';

const CKR_NAMES = new Map<number, string>();
// Under an ES-module loader (vitest) the CommonJS exports sit on `default`.
const pkcs11Exports: Record<string, unknown> = { ...(pkcs11js as unknown as { default?: Record<string, unknown> }).default, ...pkcs11js };
for (const [name, value] of Object.entries(pkcs11Exports)) {
  if (name.startsWith('CKR_') && typeof value === 'number' && !CKR_NAMES.has(value)) CKR_NAMES.set(value, name);
}

// Return values pkcs11js has no constant for (PKCS#11 v2.40 pkcs11t.h).
for (const [value, name] of [
  [0x6a, 'CKR_KEY_UNEXTRACTABLE'],
  [0x6b, 'CKR_KEY_FUNCTION_NOT_PERMITTED'],
] as const) {
  if (!CKR_NAMES.has(value)) CKR_NAMES.set(value, name);
}

export function ckrName(code: number): string {
  return CKR_NAMES.get(code) ?? `CKR_0x${code.toString(16).padStart(8, '0')}`;
}

export function isPkcs11Error(err: unknown): err is { code: number; method?: string; message: string } {
  return err instanceof pkcs11js.Pkcs11Error;
}

export function ckrOf(err: unknown): string | undefined {
  return isPkcs11Error(err) ? ckrName(err.code) : undefined;
}

const OPERATOR_MESSAGES: Record<string, { code: string; message: string; retryable?: boolean }> = {
  CKR_PIN_INCORRECT: {
    code: 'HSM_LOGIN_FAILED',
    message: 'The HSM rejected the PIN. Check the PIN source named in the configuration (hsm.pin).',
  },
  CKR_PIN_LOCKED: {
    code: 'HSM_PIN_LOCKED',
    message: 'The HSM user PIN is locked after too many wrong attempts; a security officer must unlock it.',
  },
  CKR_PIN_LEN_RANGE: { code: 'HSM_LOGIN_FAILED', message: 'The HSM rejected the PIN: its length is out of range.' },
  CKR_TOKEN_NOT_PRESENT: { code: 'HSM_TOKEN_ABSENT', message: 'The HSM token is not present.', retryable: true },
  CKR_DEVICE_REMOVED: { code: 'HSM_TOKEN_ABSENT', message: 'The HSM token was removed.', retryable: true },
  CKR_SESSION_HANDLE_INVALID: { code: 'HSM_SESSION_LOST', message: 'The HSM session was lost.', retryable: true },
  CKR_SESSION_CLOSED: { code: 'HSM_SESSION_LOST', message: 'The HSM session was closed.', retryable: true },
  CKR_DEVICE_ERROR: { code: 'HSM_UNAVAILABLE', message: 'The HSM reported a device error.', retryable: true },
  CKR_MECHANISM_INVALID: { code: 'HSM_MECHANISM_MISSING', message: 'The HSM does not offer a mechanism the station needs.' },
  CKR_KEY_UNEXTRACTABLE: { code: 'HSM_KEY_UNEXTRACTABLE', message: 'The HSM refused to export a non-extractable key.' },
};

/** Convert a foreign PKCS#11 failure into an HsmError. `doing` says what the station was doing. */
export function toHsmError(err: unknown, doing: string, stage?: StageName): HsmError {
  if (err instanceof HsmError) return err;
  if (isPkcs11Error(err)) {
    const name = ckrName(err.code);
    const known = OPERATOR_MESSAGES[name];
    const code = known?.code ?? 'HSM_OPERATION_FAILED';
    const message = known ? `${known.message} (${name} while ${doing})` : `The HSM failed while ${doing}: ${name}.`;
    return new HsmError(code, message, {
      stage,
      retryable: known?.retryable ?? false,
      details: { ckr: name, method: err.method ?? null },
      cause: err,
    });
  }
  const text = err instanceof Error ? err.message : String(err);
  return new HsmError('HSM_OPERATION_FAILED', `The HSM failed while ${doing}: ${text}`, { stage, cause: err });
}
