/**
 * SqlDatabase on PostgreSQL (pg). Each transaction takes a pooled connection; `lockKeys` become
 * transaction-scoped advisory locks, taken in sorted order so that two batches naming the same
 * serials cannot deadlock, and so that "is this idempotency key stored?" and "store it" are one
 * step for each serial.
 */
import { Pool } from 'pg';
import type { SqlDatabase, SqlTx, SqlValue } from './sql-database';

export class PostgresSqlDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;
  readonly autoIncrementKey = 'BIGSERIAL PRIMARY KEY';
  private readonly pool: Pool;

  constructor(connectionString: string) {
    this.pool = new Pool({ connectionString, max: 8 });
    // an idle client that loses its server must not crash the service
    this.pool.on('error', () => undefined);
  }

  async transaction<T>(fn: (tx: SqlTx) => Promise<T>, lockKeys: readonly string[] = []): Promise<T> {
    const client = await this.pool.connect();
    const tx: SqlTx = {
      all: async <R>(sql: string, params: readonly SqlValue[] = []) => (await client.query(sql, [...params])).rows as R[],
      run: async (sql: string, params: readonly SqlValue[] = []) => (await client.query(sql, [...params])).rowCount ?? 0,
    };
    try {
      await client.query('BEGIN');
      for (const key of [...new Set(lockKeys)].sort()) await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
