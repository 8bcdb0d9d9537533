/**
 * The reference services' storage seam: a small SQL executor with two adapters, SQLite
 * (better-sqlite3, the default) and PostgreSQL (pg). The services' repositories are written once
 * against it in a portable SQL subset: `$1`-style parameters, TEXT / BIGINT columns,
 * `INSERT ... ON CONFLICT`, and an auto-increment key spelled by the adapter.
 */
export type SqlValue = string | number | null;

export interface SqlTx {
  /** Rows of a query. */
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export interface SqlDatabase {
  readonly dialect: 'sqlite' | 'postgres';
  /** The column type of an auto-increment integer primary key in this dialect. */
  readonly autoIncrementKey: string;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. `lockKeys`
   * names what the transaction writes (serials): transactions on the same key run one after the
   * other; SQLite runs every transaction one after the other anyway.
   */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>, lockKeys?: readonly string[]): Promise<T>;
  close(): Promise<void>;
}

/** Storage settings of a service (docs/services.md). A PostgreSQL password comes from PGPASSWORD or PGPASSFILE, never from here. */
export type StorageConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; connectionString: string };
