/**
 * The services' tables, one schema for both services and both dialects (docs/services.md):
 * `records` holds every idempotency key once with its canonical payload; `devices` the state a
 * device's records left (the highest sequence applied); `audit` the per-device log; the MASA's
 * `owner_bindings` (trust-on-first-use) and the supply-chain service's `claims`.
 */
import type { SqlDatabase } from './sql-database';

export const SERVICE_SCHEMA_VERSION = 1;

export async function createServiceTables(db: SqlDatabase): Promise<void> {
  const statements = [
    `CREATE TABLE IF NOT EXISTS records (
       idempotency_key TEXT PRIMARY KEY,
       serial TEXT NOT NULL,
       station_id TEXT NOT NULL,
       sequence BIGINT NOT NULL,
       payload TEXT NOT NULL,
       signature TEXT NOT NULL,
       received_at TEXT NOT NULL)`,
    'CREATE INDEX IF NOT EXISTS records_by_serial ON records (serial, sequence)',
    `CREATE TABLE IF NOT EXISTS devices (
       serial TEXT PRIMARY KEY,
       sequence BIGINT NOT NULL,
       status TEXT NOT NULL,
       owner TEXT,
       work_order TEXT NOT NULL,
       payload TEXT NOT NULL,
       updated_at TEXT NOT NULL)`,
    'CREATE INDEX IF NOT EXISTS devices_by_owner ON devices (owner, work_order, serial)',
    `CREATE TABLE IF NOT EXISTS audit (
       id ${db.autoIncrementKey},
       serial TEXT NOT NULL,
       at TEXT NOT NULL,
       event TEXT NOT NULL,
       detail TEXT NOT NULL)`,
    'CREATE INDEX IF NOT EXISTS audit_by_serial ON audit (serial, id)',
    `CREATE TABLE IF NOT EXISTS owner_bindings (
       serial TEXT PRIMARY KEY,
       domain_sha256 TEXT NOT NULL,
       bound_at TEXT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS claims (
       serial TEXT PRIMARY KEY,
       owner TEXT NOT NULL,
       claimed_at TEXT NOT NULL)`,
    'CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)',
  ];
  await db.transaction(async (tx) => {
    for (const sql of statements) await tx.run(sql);
    const rows = await tx.all<{ version: number | string }>('SELECT version FROM schema_version');
    if (rows.length === 0) await tx.run('INSERT INTO schema_version (version) VALUES ($1)', [SERVICE_SCHEMA_VERSION]);
    else if (Number(rows[0]!.version) !== SERVICE_SCHEMA_VERSION) throw new Error(`the service database has schema version ${rows[0]!.version}; this build knows ${SERVICE_SCHEMA_VERSION}`);
  }, ['schema']);
}
