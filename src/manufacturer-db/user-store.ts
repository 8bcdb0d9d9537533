/**
 * Station users (operators and supervisors) in the station database.
 *
 * PINs are hashed with scrypt (node:crypto) under a per-user random 16-byte salt:
 * N = 2^15, r = 8, p = 1, 32-byte key (about 32 MiB and 50-100 ms per check on the reference
 * machine; RFC 7914 and OWASP's interactive-login guidance). The parameters are stored with each
 * hash (`pin_params`), so they can be raised later without invalidating existing PINs. Hashes
 * are compared with timingSafeEqual; an unknown user costs the same scrypt as a known one.
 *
 * Repeated wrong PINs lock the account: after `maxFailedAttempts` (5) wrong PINs in a row the
 * account is locked for `lockoutMs` (5 minutes); a supervisor can unlock it earlier
 * (`station user unlock`). Every change and every sign-in attempt is an audit event, written in
 * the same transaction as the row it describes; no PIN, hash or salt ever goes into one.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ConfigError, DatabaseError } from '../core/errors';
import { AuditChain } from './audit-chain';
import { type SqliteDb, inTransaction } from './sqlite-database';

export type UserRole = 'operator' | 'supervisor';

export interface PinHashParams {
  N: number;
  r: number;
  p: number;
  keyLen: number;
}

/** The parameters new PIN hashes get (see the file comment). */
export const PIN_HASH_PARAMS: PinHashParams = { N: 2 ** 15, r: 8, p: 1, keyLen: 32 };
export const PIN_SALT_BYTES = 16;
export const PIN_MIN_LENGTH = 4;
export const PIN_MAX_LENGTH = 64;
export const USERNAME_PATTERN = /^[a-z][a-z0-9_.-]{0,31}$/;

export interface StationUser {
  username: string;
  displayName: string;
  role: UserRole;
  failedAttempts: number;
  /** ISO time until which the account is locked, or null. */
  lockedUntil: string | null;
  createdAt: string;
}

export type SignInCheck =
  | { ok: true; user: StationUser }
  | { ok: false; code: 'SIGN_IN_FAILED'; attemptsLeft: number | null }
  | { ok: false; code: 'USER_LOCKED'; lockedUntil: string };

export interface UserStoreOptions {
  /** Wrong PINs in a row that lock the account (default 5). */
  maxFailedAttempts?: number;
  /** How long a lock lasts (default 5 minutes). */
  lockoutMs?: number;
  now?: () => Date;
  /** Hash parameters for new PINs (tests may lower N; stored with each hash). */
  hashParams?: PinHashParams;
}

interface UserRow {
  username: string;
  display_name: string;
  role: UserRole;
  pin_hash: Buffer;
  pin_salt: Buffer;
  pin_params: string;
  failed_attempts: number;
  locked_until: string | null;
  created_at: string;
  updated_at: string;
}

function scrypt(pin: string, salt: Buffer, params: PinHashParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r * params.p };
  return new Promise((resolve, reject) => scryptCallback(pin.normalize('NFC'), salt, params.keyLen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function parseParams(text: string): PinHashParams {
  const v = JSON.parse(text) as Partial<PinHashParams>;
  if (!Number.isInteger(v.N) || !Number.isInteger(v.r) || !Number.isInteger(v.p) || !Number.isInteger(v.keyLen)) {
    throw new DatabaseError('USER_HASH_PARAMS_INVALID', 'A stored PIN hash has unreadable parameters.');
  }
  return v as PinHashParams;
}

/** Refuses a PIN that is too short or too long; the message never repeats it. */
export function checkPinPolicy(pin: string): void {
  if (pin.length < PIN_MIN_LENGTH) throw new ConfigError('PIN_TOO_SHORT', `A PIN has at least ${PIN_MIN_LENGTH} characters.`);
  if (pin.length > PIN_MAX_LENGTH) throw new ConfigError('PIN_TOO_LONG', `A PIN has at most ${PIN_MAX_LENGTH} characters.`);
  if (/[\x00-\x1f\x7f]/.test(pin)) throw new ConfigError('PIN_INVALID', 'A PIN cannot contain control characters.');
}

export class SqliteUserStore {
  private readonly audit: AuditChain;
  private readonly maxFailedAttempts: number;
  private readonly lockoutMs: number;
  private readonly now: () => Date;
  private readonly hashParams: PinHashParams;
  /** A fixed salt and hash for unknown users, so that their check costs the same. */
  private readonly decoySalt = randomBytes(PIN_SALT_BYTES);

  constructor(
    private readonly db: SqliteDb,
    stationId: string,
    options: UserStoreOptions = {},
  ) {
    this.audit = new AuditChain(db, stationId);
    this.maxFailedAttempts = options.maxFailedAttempts ?? 5;
    this.lockoutMs = options.lockoutMs ?? 5 * 60_000;
    this.now = options.now ?? (() => new Date());
    this.hashParams = options.hashParams ?? PIN_HASH_PARAMS;
  }

  private tx<T>(doing: string, fn: () => T): T {
    return inTransaction(this.db, doing, fn);
  }

  private row(username: string): UserRow | undefined {
    return this.db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
  }

  private static toUser(r: UserRow): StationUser {
    return { username: r.username, displayName: r.display_name, role: r.role, failedAttempts: r.failed_attempts, lockedUntil: r.locked_until, createdAt: r.created_at };
  }

  getUser(username: string): StationUser | undefined {
    const r = this.row(username);
    return r ? SqliteUserStore.toUser(r) : undefined;
  }

  listUsers(): StationUser[] {
    return (this.db.prepare('SELECT * FROM users ORDER BY username').all() as UserRow[]).map((r) => SqliteUserStore.toUser(r));
  }

  async addUser(input: { username: string; displayName?: string; role: UserRole; pin: string; by: string }): Promise<StationUser> {
    if (!USERNAME_PATTERN.test(input.username)) {
      throw new ConfigError('USERNAME_INVALID', 'A user name is 1-32 characters: lower-case letters, digits, ".", "_" or "-", starting with a letter.');
    }
    checkPinPolicy(input.pin);
    if (this.row(input.username)) throw new ConfigError('USER_EXISTS', `User ${input.username} exists already; use "station user passwd".`);
    const salt = randomBytes(PIN_SALT_BYTES);
    const hash = await scrypt(input.pin, salt, this.hashParams);
    const at = this.now().toISOString();
    this.tx('adding a user', () => {
      this.db
        .prepare('INSERT INTO users (username, display_name, role, pin_hash, pin_salt, pin_params, failed_attempts, locked_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)')
        .run(input.username, input.displayName ?? input.username, input.role, hash, salt, JSON.stringify(this.hashParams), at, at);
      this.audit.append({ type: 'user.added', serial: null, data: { username: input.username, role: input.role, by: input.by } });
    });
    return this.getUser(input.username)!;
  }

  async changePin(username: string, pin: string, by: string): Promise<void> {
    checkPinPolicy(pin);
    if (!this.row(username)) throw new ConfigError('USER_UNKNOWN', `No user ${username}.`);
    const salt = randomBytes(PIN_SALT_BYTES);
    const hash = await scrypt(pin, salt, this.hashParams);
    this.tx('changing a PIN', () => {
      this.db
        .prepare('UPDATE users SET pin_hash = ?, pin_salt = ?, pin_params = ?, failed_attempts = 0, locked_until = NULL, updated_at = ? WHERE username = ?')
        .run(hash, salt, JSON.stringify(this.hashParams), this.now().toISOString(), username);
      this.audit.append({ type: 'user.pin-changed', serial: null, data: { username, by } });
    });
  }

  unlock(username: string, by: string): StationUser {
    if (!this.row(username)) throw new ConfigError('USER_UNKNOWN', `No user ${username}.`);
    this.tx('unlocking a user', () => {
      this.db.prepare('UPDATE users SET failed_attempts = 0, locked_until = NULL, updated_at = ? WHERE username = ?').run(this.now().toISOString(), username);
      this.audit.append({ type: 'user.unlocked', serial: null, data: { username, by } });
    });
    return this.getUser(username)!;
  }

  /**
   * Checks a sign-in. A locked account is refused without looking at the PIN; a wrong PIN
   * counts towards the lock; a right one resets the count. Each attempt is audited.
   */
  async checkSignIn(username: string, pin: string, client: string): Promise<SignInCheck> {
    const row = USERNAME_PATTERN.test(username) ? this.row(username) : undefined;
    const now = this.now();
    if (row?.locked_until && Date.parse(row.locked_until) > now.getTime()) {
      this.tx('recording a refused sign-in', () => this.audit.append({ type: 'user.sign-in-refused', serial: null, data: { username, client, reason: 'locked', lockedUntil: row.locked_until } }));
      return { ok: false, code: 'USER_LOCKED', lockedUntil: row.locked_until };
    }
    const params = row ? parseParams(row.pin_params) : this.hashParams;
    const salt = row ? row.pin_salt : this.decoySalt;
    const candidate = await scrypt(pin, salt, params);
    const match = row !== undefined && row.pin_hash.length === candidate.length && timingSafeEqual(row.pin_hash, candidate);
    if (row && match) {
      this.tx('recording a sign-in', () => {
        this.db.prepare('UPDATE users SET failed_attempts = 0, locked_until = NULL, updated_at = ? WHERE username = ?').run(now.toISOString(), username);
        this.audit.append({ type: 'user.signed-in', serial: null, data: { username, role: row.role, client } });
      });
      return { ok: true, user: this.getUser(username)! };
    }
    if (!row) {
      this.tx('recording a failed sign-in', () => this.audit.append({ type: 'user.sign-in-failed', serial: null, data: { username, client, reason: 'unknown user' } }));
      return { ok: false, code: 'SIGN_IN_FAILED', attemptsLeft: null };
    }
    return this.tx('recording a failed sign-in', (): SignInCheck => {
      // read again inside the transaction: two wrong PINs at once both count
      const current = this.row(username)!;
      const failed = current.failed_attempts + 1;
      const lock = failed >= this.maxFailedAttempts;
      const lockedUntil = lock ? new Date(now.getTime() + this.lockoutMs).toISOString() : null;
      this.db.prepare('UPDATE users SET failed_attempts = ?, locked_until = ?, updated_at = ? WHERE username = ?').run(lock ? 0 : failed, lockedUntil, now.toISOString(), username);
      this.audit.append({ type: 'user.sign-in-failed', serial: null, data: { username, client, reason: 'wrong PIN', failedAttempts: failed } });
      if (lock) {
        this.audit.append({ type: 'user.locked', serial: null, data: { username, lockedUntil, afterFailedAttempts: failed } });
        return { ok: false, code: 'USER_LOCKED', lockedUntil: lockedUntil! };
      }
      return { ok: false, code: 'SIGN_IN_FAILED', attemptsLeft: this.maxFailedAttempts - failed };
    });
  }

  /** Whether any supervisor exists (the first `station user add` must make one). */
  hasSupervisor(): boolean {
    return this.db.prepare("SELECT 1 FROM users WHERE role = 'supervisor' LIMIT 1").get() !== undefined;
  }
}
