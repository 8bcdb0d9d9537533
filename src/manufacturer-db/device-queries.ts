/**
 * Read-only queries for the operator GUI: recent devices and search, one device's stages,
 * label prints and audit trail, and audit events. Never writes.
 */
import type { SqliteDb } from './sqlite-database';

export interface DeviceListRow {
  serial: string;
  status: 'assigned' | 'issued' | 'verified' | 'passed' | 'failed';
  workOrderId: string;
  model: string | null;
  hardwareId: string | null;
  port: string | null;
  labelState: 'none' | 'pending' | 'printed' | 'failed';
  errorCode: string | null;
  disposition: 'rework' | 'scrap' | null;
  updatedAt: string;
}

export interface AuditEventRow {
  seq: number;
  at: string;
  type: string;
  serial: string | null;
  data: string;
}

const LIST_COLUMNS =
  'serial, status, work_order_id AS workOrderId, model, hardware_id AS hardwareId, port, label_state AS labelState, error_code AS errorCode, disposition, updated_at AS updatedAt';

/** The most recently changed devices, or those whose serial, hardware id or work order contains `query`. */
export function listDevices(db: SqliteDb, query: string | undefined, limit: number): DeviceListRow[] {
  const q = (query ?? '').trim();
  if (q === '') return db.prepare(`SELECT ${LIST_COLUMNS} FROM devices ORDER BY updated_at DESC, serial DESC LIMIT ?`).all(limit) as DeviceListRow[];
  const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return db
    .prepare(
      `SELECT ${LIST_COLUMNS} FROM devices WHERE serial LIKE ? ESCAPE '\\' OR hardware_id LIKE ? ESCAPE '\\' OR work_order_id LIKE ? ESCAPE '\\' ORDER BY serial = ? DESC, updated_at DESC LIMIT ?`,
    )
    .all(like, like, like, q, limit) as DeviceListRow[];
}

export function deviceStages(db: SqliteDb, serial: string): { runId: string; name: string; status: string; durationMs: number }[] {
  return db.prepare('SELECT run_id AS runId, name, status, duration_ms AS durationMs FROM device_stages WHERE serial = ? ORDER BY rowid').all(serial) as {
    runId: string;
    name: string;
    status: string;
    durationMs: number;
  }[];
}

export function labelPrints(db: SqliteDb, serial: string): { at: string; kind: 'first' | 'retry' | 'reprint'; operator: string | null; reason: string | null; printer: string; result: 'printed' | 'failed'; errorCode: string | null }[] {
  return db.prepare('SELECT at, kind, operator, reason, printer, result, error_code AS errorCode FROM label_prints WHERE serial = ? ORDER BY id').all(serial) as ReturnType<typeof labelPrints>;
}

export function auditEvents(db: SqliteDb, opts: { serial?: string; beforeSeq?: number; limit: number }): AuditEventRow[] {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (opts.serial) {
    where.push('serial = ?');
    params.push(opts.serial);
  }
  if (opts.beforeSeq) {
    where.push('seq < ?');
    params.push(opts.beforeSeq);
  }
  params.push(opts.limit);
  return db.prepare(`SELECT seq, at, type, serial, data FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`).all(...params) as AuditEventRow[];
}

/** The work order's next serial number and last, as stored (null when not in the database yet). */
export function workOrderProgress(db: SqliteDb, id: string): { nextSerial: number; serialLast: number } | undefined {
  return db.prepare('SELECT next_serial AS nextSerial, serial_last AS serialLast FROM work_orders WHERE id = ?').get(id) as { nextSerial: number; serialLast: number } | undefined;
}
