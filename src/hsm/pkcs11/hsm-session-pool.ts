/**
 * A fixed set of sessions on one token, with at most one operation in flight per session
 * (pitfalls.md 2: a second C_SignInit on a busy session fails with CKR_OPERATION_ACTIVE).
 * Login is once per application and token (pitfalls.md 3): the pool logs in on its first
 * session, treats CKR_USER_ALREADY_LOGGED_IN as success, and never logs out.
 *
 * Used by the PKCS#11 worker (pkcs11-worker-main.ts), where every call is synchronous: an
 * operation runs start to end before the next message is read, so one free session is always
 * found; the busy flags still make the "one operation per session" rule explicit and checked.
 */
import { HsmError } from '../../core/errors';
import { ckrName, isPkcs11Error, toHsmError } from './ckr-names';
import { pkcs11js, type Pkcs11Handle } from './pkcs11-library';

/** CK_STATE values (pkcs11t.h); pkcs11js has no constants for them. */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

interface PooledSession {
  handle: Pkcs11Handle;
  busy: boolean;
  operations: number;
}

export class HsmSessionPool {
  private sessions: PooledSession[] = [];
  private next = 0;

  constructor(
    private readonly api: pkcs11js.PKCS11,
    readonly size: number,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a session pool needs at least one session, not ${size}`);
  }

  get isOpen(): boolean {
    return this.sessions.length > 0;
  }

  /**
   * Open `size` read/write sessions on `slot` and make sure the application is logged in:
   * with a PIN, C_Login (already logged in is success); without one, the sessions must already
   * be in a user state (another session of this process is logged in), else HSM_PIN_REQUIRED.
   * On failure every session opened here is closed again.
   */
  open(slot: Pkcs11Handle, tokenLabel: string, pin: string | undefined): void {
    if (this.isOpen) throw new Error('the session pool is already open');
    const opened: Pkcs11Handle[] = [];
    try {
      for (let i = 0; i < this.size; i++) {
        try {
          opened.push(this.api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
        } catch (err) {
          throw toHsmError(err, `opening a session on token ${tokenLabel}`);
        }
      }
      this.login(opened[0]!, tokenLabel, pin);
    } catch (err) {
      for (const h of opened) this.closeQuietly(h);
      throw err;
    }
    this.sessions = opened.map((handle) => ({ handle, busy: false, operations: 0 }));
    this.next = 0;
  }

  private login(session: Pkcs11Handle, tokenLabel: string, pin: string | undefined): void {
    if (pin !== undefined) {
      try {
        this.api.C_Login(session, pkcs11js.CKU_USER, pin);
      } catch (err) {
        if (!(isPkcs11Error(err) && ckrName(err.code) === 'CKR_USER_ALREADY_LOGGED_IN')) throw toHsmError(err, `logging in to token ${tokenLabel}`);
      }
      return;
    }
    let state: number;
    try {
      state = this.api.C_GetSessionInfo(session).state;
    } catch (err) {
      throw toHsmError(err, `reading the session state of token ${tokenLabel}`);
    }
    if (state !== CKS_RW_USER_FUNCTIONS && state !== CKS_RO_USER_FUNCTIONS) {
      throw new HsmError(
        'HSM_PIN_REQUIRED',
        `The HSM token ${tokenLabel} needs the PIN again (the station is no longer logged in) and no PIN source was given to the PKCS#11 worker.`,
        { details: { token: tokenLabel } },
      );
    }
  }

  /** A free session, marked busy; undefined when every session has an operation in flight. */
  acquire(): Pkcs11Handle | undefined {
    for (let i = 0; i < this.sessions.length; i++) {
      const s = this.sessions[(this.next + i) % this.sessions.length]!;
      if (!s.busy) {
        s.busy = true;
        s.operations++;
        this.next = (this.next + i + 1) % this.sessions.length;
        return s.handle;
      }
    }
    return undefined;
  }

  release(handle: Pkcs11Handle): void {
    const s = this.sessions.find((x) => x.handle.equals(handle));
    if (s) s.busy = false;
  }

  /** Run one synchronous operation on a free session (one operation per session, pitfalls.md 2). */
  withSession<T>(fn: (session: Pkcs11Handle) => T): T {
    const session = this.acquire();
    if (!session) throw new HsmError('HSM_SESSION_BUSY', 'Every HSM session has an operation in flight.', { retryable: true });
    try {
      return fn(session);
    } finally {
      this.release(session);
    }
  }

  handles(): Pkcs11Handle[] {
    return this.sessions.map((s) => s.handle);
  }

  /** Operations started on each session since it was opened. */
  operationCounts(): number[] {
    return this.sessions.map((s) => s.operations);
  }

  /** Close every session (errors ignored: after a token reset the handles are already dead). */
  closeAll(): void {
    const sessions = this.sessions;
    this.sessions = [];
    for (const s of sessions) this.closeQuietly(s.handle);
  }

  closeQuietly(handle: Pkcs11Handle): void {
    try {
      this.api.C_CloseSession(handle);
    } catch {
      // a dead session is already closed
    }
  }
}
