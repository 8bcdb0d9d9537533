/**
 * SqlDatabase on SQLite (better-sqlite3; the only file of the services that loads it). WAL with
 * synchronous=FULL: a batch the service answered is on disk. better-sqlite3 is synchronous, so a
 * transaction that awaits between statements is isolated by running transactions one at a time.
 */
import Database from 'better-sqlite3';
import type { SqlDatabase, SqlTx, SqlValue } from './sql-database';

/** `$1` parameters as better-sqlite3 named ones (`@p1`), bound from an object. */
function named(sql: string, params: readonly SqlValue[] = []): { sql: string; bind: Record<string, SqlValue> } {
  const bind: Record<string, SqlValue> = {};
  params.forEach((v, i) => (bind[`p${i + 1}`] = v));
  return { sql: sql.replace(/\$(\d+)/g, '@p$1'), bind };
}

export class SqliteSqlDatabase implements SqlDatabase {
  readonly dialect = 'sqlite' as const;
  readonly autoIncrementKey = 'INTEGER PRIMARY KEY AUTOINCREMENT';
  private readonly db: Database.Database;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
  }

  private readonly tx: SqlTx = {
    all: async <T>(sql: string, params?: readonly SqlValue[]) => {
      const q = named(sql, params);
      return this.db.prepare(q.sql).all(q.bind) as T[];
    },
    run: async (sql: string, params?: readonly SqlValue[]) => {
      const q = named(sql, params);
      return this.db.prepare(q.sql).run(q.bind).changes;
    },
  };

  transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    const run = async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.tx);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.queue;
    this.db.close();
  }
}
