/**
 * HsmSessionPool against a recording PKCS#11 object: N sessions, one login (already logged in
 * is success), no PIN = the process must already be logged in, one operation per session,
 * everything closed again on failure. The real module is exercised by pkcs11-worker.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { HsmError } from '../../../src/core/errors';
import { HsmSessionPool } from '../../../src/hsm/pkcs11/hsm-session-pool';
import { pkcs11js } from '../../../src/hsm/pkcs11/pkcs11-library';

class RecordingPkcs11 {
  readonly calls: string[] = [];
  private nextHandle = 1;
  readonly open = new Set<string>();
  loginError: Error | undefined;
  sessionState = 2; // CKS_RW_PUBLIC_SESSION
  failOpenAfter = Infinity;

  C_OpenSession(): Buffer {
    if (this.open.size >= this.failOpenAfter) throw new pkcs11js.Pkcs11Error('CKR_SESSION_COUNT:177', 0xb1, 'C_OpenSession');
    const h = Buffer.alloc(8);
    h.writeUInt32LE(this.nextHandle++);
    this.open.add(h.toString('hex'));
    this.calls.push(`open ${h.readUInt32LE()}`);
    return h;
  }
  C_CloseSession(h: Buffer): void {
    this.calls.push(`close ${h.readUInt32LE()}`);
    this.open.delete(h.toString('hex'));
  }
  C_Login(h: Buffer, user: number): void {
    this.calls.push(`login ${h.readUInt32LE()} ${user === pkcs11js.CKU_USER ? 'user' : user}`);
    if (this.loginError) throw this.loginError;
  }
  C_GetSessionInfo(): { state: number } {
    return { state: this.sessionState };
  }
}

const fake = () => new RecordingPkcs11();
const asApi = (f: RecordingPkcs11) => f as unknown as pkcs11js.PKCS11;
const SLOT = Buffer.alloc(8);

describe('HsmSessionPool', () => {
  it('opens N sessions and logs in once, on the first', () => {
    const f = fake();
    const pool = new HsmSessionPool(asApi(f), 3);
    pool.open(SLOT, 't', 'pin');
    expect(f.calls).toEqual(['open 1', 'open 2', 'open 3', 'login 1 user']);
    expect(pool.handles()).toHaveLength(3);
  });

  // CKR names (HSM_LOGIN_FAILED / CKR_PIN_INCORRECT, CKR_USER_ALREADY_LOGGED_IN as success) are
  // asserted against the real module in test/integration/pkcs11-worker.test.ts: under vitest,
  // ckr-names.ts cannot enumerate pkcs11js's constants (the ESM view of a CommonJS module lists
  // only `PKCS11` and `default`), so it names codes in hex here.
  it('closes what it opened when the login fails, and keeps the PIN out of the error', () => {
    const f = fake();
    f.loginError = new pkcs11js.Pkcs11Error('CKR_PIN_INCORRECT:160', 0xa0, 'C_Login');
    const pool = new HsmSessionPool(asApi(f), 2);
    let err: unknown;
    try {
      pool.open(SLOT, 't', 'secret-pin-123');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HsmError);
    expect(JSON.stringify({ m: (err as HsmError).message, d: (err as HsmError).details, s: (err as HsmError).stack })).not.toContain('secret-pin-123');
    expect(f.open.size).toBe(0);
    expect(pool.isOpen).toBe(false);
  });

  it('without a PIN, needs the process to be logged in already (HSM_PIN_REQUIRED otherwise)', () => {
    const f = fake();
    const pool = new HsmSessionPool(asApi(f), 2);
    expect(() => pool.open(SLOT, 't', undefined)).toThrow(expect.objectContaining({ code: 'HSM_PIN_REQUIRED' }));
    expect(f.open.size).toBe(0);
    f.sessionState = 3; // CKS_RW_USER_FUNCTIONS
    pool.open(SLOT, 't', undefined);
    expect(f.calls.filter((c) => c.startsWith('login'))).toEqual([]);
  });

  it('closes the sessions it opened when one cannot be opened', () => {
    const f = fake();
    f.failOpenAfter = 1;
    const pool = new HsmSessionPool(asApi(f), 2);
    expect(() => pool.open(SLOT, 't', 'pin')).toThrow(HsmError);
    expect(f.open.size).toBe(0);
  });

  it('runs one operation per session and hands sessions out in turn', () => {
    const f = fake();
    const pool = new HsmSessionPool(asApi(f), 2);
    pool.open(SLOT, 't', 'pin');
    const used: number[] = [];
    for (let i = 0; i < 4; i++) pool.withSession((s) => used.push(s.readUInt32LE()));
    expect(used).toEqual([1, 2, 1, 2]);
    // Nested: both sessions busy, a third operation is refused rather than overlapped.
    pool.withSession((a) =>
      pool.withSession((b) => {
        expect(a.equals(b)).toBe(false);
        expect(() => pool.withSession(() => undefined)).toThrow(expect.objectContaining({ code: 'HSM_SESSION_BUSY' }));
      }),
    );
    expect(pool.operationCounts()).toEqual([3, 3]);
    pool.closeAll();
    expect(f.open.size).toBe(0);
    expect(pool.isOpen).toBe(false);
  });
});
