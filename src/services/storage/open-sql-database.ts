/** Opens the configured SqlDatabase and creates the services' tables (docs/services.md). */
import { PostgresSqlDatabase } from './postgres-sql-database';
import type { SqlDatabase, StorageConfig } from './sql-database';
import { SqliteSqlDatabase } from './sqlite-sql-database';
import { createServiceTables } from './service-schema';

export async function openSqlDatabase(config: StorageConfig): Promise<SqlDatabase> {
  const db = config.kind === 'sqlite' ? new SqliteSqlDatabase(config.path) : new PostgresSqlDatabase(config.connectionString);
  try {
    await createServiceTables(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return db;
}
