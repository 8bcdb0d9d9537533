/**
 * Opens the station database (better-sqlite3 12: version 13 crashes on Node 20) with WAL and
 * synchronous=FULL, and brings its schema up to date with the versioned migrator.
 * The only file that imports better-sqlite3.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { DatabaseError, StationError } from '../core/errors';
import { MIGRATIONS, type Migration } from './migrations';

export type SqliteDb = BetterSqlite3.Database;

export function toDatabaseError(err: unknown, doing: string): DatabaseError {
  if (err instanceof DatabaseError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_FULL') return new DatabaseError('DB_DISK_FULL', `The database disk is full while ${doing}. Free space; nothing was lost.`, { cause: err, retryable: true });
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return new DatabaseError('DB_BUSY', `The database is busy while ${doing}.`, { cause: err, retryable: true });
  if (code.startsWith('SQLITE_CONSTRAINT')) return new DatabaseError('DB_CONSTRAINT', `A database constraint failed while ${doing}: ${message}`, { cause: err });
  return new DatabaseError('DB_ERROR', `The database failed while ${doing}: ${message}`, { cause: err });
}

/**
 * Runs `fn` in one SQLite transaction; a failure that is not already a StationError becomes a
 * typed DatabaseError naming what was being done (DB_DISK_FULL, DB_CONSTRAINT, ...).
 */
export function inTransaction<T>(db: SqliteDb, doing: string, fn: () => T): T {
  // writes grouped for this turn go first: a transaction never overtakes one queued before it
  if (!db.inTransaction) committers.get(db)?.flush();
  try {
    // Inside withoutSavepoints' outer transaction, the writes join it directly (see there).
    return flatDepth.get(db) && db.inTransaction ? fn() : db.transaction(fn)();
  } catch (err) {
    if (err instanceof StationError) throw err;
    throw toDatabaseError(err, doing);
  }
}

const flatDepth = new WeakMap<SqliteDb, number>();

/**
 * Runs `fn` in ONE transaction in which the inTransaction calls it makes open no savepoint of
 * their own: a group committer's fast path (a SAVEPOINT and RELEASE per row cost about as much
 * as the row). All or nothing: if anything in `fn` throws, the whole transaction rolls back and
 * the error is rethrown; a caller that wants each row to fail alone then runs the group again
 * with savepoints (GroupCommitJournal does).
 */
export function withoutSavepoints(db: SqliteDb, fn: () => void): void {
  if (!db.inTransaction) committers.get(db)?.flush();
  flatDepth.set(db, (flatDepth.get(db) ?? 0) + 1);
  try {
    db.transaction(fn)();
  } finally {
    flatDepth.set(db, flatDepth.get(db)! - 1);
  }
}

interface QueuedWrite {
  doing: string;
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const committers = new WeakMap<SqliteDb, TurnCommitter>();

/** The connection's TurnCommitter (one per connection, shared by every store on it). */
export function turnCommitter(db: SqliteDb): TurnCommitter {
  let c = committers.get(db);
  if (!c) {
    c = new TurnCommitter(db);
    committers.set(db, c);
  }
  return c;
}

/**
 * Group commit per event-loop turn (design/pitfalls.md 16). better-sqlite3 is synchronous, so a
 * FULL-sync COMMIT holds the event loop for its fsync; with 32 ports that was ~3.5 ms per device
 * on the reference machine, time every other port waited. Two of every three of the line's
 * commits came in the same turn as the one before (answers from several ports and worker
 * results arrive together), so they can share one transaction and one fsync.
 *
 * run(doing, fn) queues `fn` (synchronous database work, usually one store method) and returns
 * a promise of its result that settles only after the transaction holding it has COMMITTED: a
 * caller that awaits it releases nothing before its write is durable, as with a transaction of
 * its own. The queue is written at the end of the turn (setImmediate), in order, each write in
 * its own savepoint: a write that throws is rolled back alone and its promise rejects with its
 * own error, the others commit. If the COMMIT fails (disk full), every write of the group
 * rejects: none of it is durable. Nothing runs `fn` before the group does, so no other code sees
 * a write that may not commit. A transaction started directly on the connection (inTransaction,
 * withoutSavepoints) first writes what is queued, so writes keep the order they were made in.
 */
export class TurnCommitter {
  private queue: QueuedWrite[] = [];
  private scheduled = false;
  /** Transactions committed and the writes they held (benches, tests). */
  readonly stats = { commits: 0, writes: 0 };

  constructor(private readonly db: SqliteDb) {}

  run<T>(doing: string, fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ doing, fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Writes and commits what is queued now. */
  flush(): void {
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    let outcomes: WriteOutcome[];
    try {
      outcomes = commitEachInSavepoint(this.db, batch.map((w) => w.fn));
    } catch (err) {
      const e = toDatabaseError(err, batch.length === 1 ? batch[0]!.doing : `committing ${batch.length} writes (${batch[0]!.doing}, ...)`);
      for (const w of batch) w.reject(e);
      return;
    }
    this.stats.commits++;
    this.stats.writes += batch.length;
    outcomes.forEach((o, i) => {
      const w = batch[i]!;
      if (o.ok) w.resolve(o.value);
      else w.reject(o.error instanceof StationError ? o.error : toDatabaseError(o.error, w.doing));
    });
  }
}

export type WriteOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Runs each write in its own savepoint inside ONE transaction, then commits it: a write that
 * throws is rolled back alone and its error is its outcome; the others commit. Throws (and
 * nothing of it is committed) when the transaction itself fails: its COMMIT, or a write whose
 * error made SQLite roll back the whole transaction (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM
 * may): the writes after it would otherwise each run and commit on their own.
 * BEGIN IMMEDIATE: a writer on another connection is waited for (busy_timeout) once, before
 * the first write, instead of failing every write of the group with SQLITE_BUSY.
 */
export function commitEachInSavepoint(db: SqliteDb, writes: readonly (() => unknown)[]): WriteOutcome[] {
  const outcomes: WriteOutcome[] = [];
  db.transaction(() => {
    for (const write of writes) {
      try {
        // nested: a savepoint
        outcomes.push({ ok: true, value: db.transaction(write)() });
      } catch (error) {
        if (!db.inTransaction) throw error;
        outcomes.push({ ok: false, error });
      }
    }
  }).immediate();
  return outcomes;
}

/** A statement prepared once per SQL text (statementFor). */
export type CachedStatement = ReturnType<SqliteDb['prepare']> & {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
};

const statementCaches = new WeakMap<SqliteDb, Map<string, CachedStatement>>();

/**
 * The connection's statement for `sql`, prepared the first time it is asked for: the stores on a
 * connection share one cache (the line's hot paths run the same few statements per device).
 * Statements taken from it must not be given modes (pluck, raw, expand): every user shares them.
 */
export function statementFor(db: SqliteDb, sql: string): CachedStatement {
  let cache = statementCaches.get(db);
  if (!cache) {
    cache = new Map();
    statementCaches.set(db, cache);
  }
  let s = cache.get(sql);
  if (!s) {
    s = db.prepare<unknown[], unknown>(sql) as CachedStatement;
    cache.set(sql, s);
  }
  return s;
}

export function currentSchemaVersion(db: SqliteDb): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!exists) return 0;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

export function migrate(db: SqliteDb, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const from = currentSchemaVersion(db);
  // In version order; a migration is applied when its version is not recorded yet (not only when
  // it is above the highest one), so that migrations written on parallel branches all apply.
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  const latest = ordered.length === 0 ? 0 : ordered[ordered.length - 1]!.version;
  if (from > latest) {
    throw new DatabaseError('DB_SCHEMA_TOO_NEW', `The database schema is version ${from}, newer than this station knows (${latest}). Upgrade the station software.`);
  }
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  for (const m of ordered) {
    if (applied.has(m.version)) continue;
    try {
      db.transaction(() => {
        db.exec(m.sql);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
      })();
    } catch (err) {
      throw toDatabaseError(err, `applying migration ${m.version} (${m.name})`);
    }
  }
  return { from, to: Math.max(from, latest) };
}

export function openDatabase(path: string): SqliteDb {
  let db: SqliteDb;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new BetterSqlite3(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
  } catch (err) {
    throw toDatabaseError(err, `opening ${path}`);
  }
  migrate(db);
  return db;
}

/**
 * Online backup (SQLite's backup API through better-sqlite3) of a live database to `path`: a
 * consistent copy while the station keeps writing. The copy is then opened, checked with
 * `PRAGMA integrity_check`, and closed; its path is returned.
 */
export async function backupDatabase(db: SqliteDb, path: string): Promise<{ path: string; pages: number }> {
  let pages = 0;
  try {
    mkdirSync(dirname(path), { recursive: true });
    const r = await db.backup(path);
    pages = r.totalPages;
  } catch (err) {
    throw toDatabaseError(err, `backing up to ${path}`);
  }
  let copy: SqliteDb | undefined;
  try {
    copy = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    const check = copy.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new DatabaseError('DB_BACKUP_CORRUPT', `The backup ${path} fails its integrity check: ${String(check)}.`);
  } catch (err) {
    throw toDatabaseError(err, `checking the backup ${path}`);
  } finally {
    copy?.close();
  }
  return { path, pages };
}
