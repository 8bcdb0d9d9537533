/**
 * The outbox (contracts.md §5, docs/records-and-sync.md): one row per signed device record and
 * sync target, written in the transaction that writes the record. The relay reads due rows, and
 * writes what each delivery attempt taught it; the CLI reads the backlog and the dead letters.
 *
 * Row states: pending -> delivered | dead-lettered; a dead letter goes back to pending
 * (`station sync dead-letters retry`) or to dropped (`... drop --reason`, audited). Per-device
 * order: a row is due only when no earlier-sequence row of the same device and target is still
 * pending or dead-lettered (delivered and dropped rows do not hold it back).
 */
import type { SignedDeviceRecord } from '../../core/device-record';
import { DatabaseError } from '../../core/errors';
import type { AuditChain } from '../audit-chain';
import { toDatabaseError, type SqliteDb } from '../sqlite-database';

export const SYNC_TARGET_NAMES = ['masa', 'supply-chain'] as const;
export type SyncTargetName = (typeof SYNC_TARGET_NAMES)[number];
export type OutboxState = 'pending' | 'delivered' | 'dead-lettered' | 'dropped';
/** A device's state towards one target (contracts.md §5); `disabled` when nothing is queued for it. */
export type DeviceSyncState = 'pending' | 'delivered' | 'dead-lettered' | 'disabled';

export interface OutboxItem {
  id: number;
  target: SyncTargetName;
  idempotencyKey: string;
  deviceSerial: string;
  sequence: number;
  attempts: number;
  record: SignedDeviceRecord;
}

export interface DeadLetter {
  id: number;
  target: SyncTargetName;
  idempotencyKey: string;
  deviceSerial: string;
  sequence: number;
  attempts: number;
  lastError: string | null;
  updatedAt: string;
}

export interface TargetStatus {
  target: SyncTargetName;
  state: 'active' | 'paused';
  alert: string | null;
  pausedSince: string | null;
  lastSuccessAt: string | null;
  pending: number;
  delivered: number;
  deadLettered: number;
  dropped: number;
  /** Age of the oldest pending record (ms), null when none is pending. */
  oldestPendingAgeMs: number | null;
}

interface DueRow {
  id: number;
  target: SyncTargetName;
  idempotency_key: string;
  device_serial: string;
  sequence: number;
  attempts: number;
  payload: string;
  signature: string;
  station_certificate: string;
}

export class OutboxStore {
  constructor(
    readonly db: SqliteDb,
    private readonly audit: AuditChain,
  ) {}

  private tx<T>(doing: string, fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      throw toDatabaseError(err, doing);
    }
  }

  /** Call inside the transaction that writes the record. */
  enqueue(recordId: number, idempotencyKey: string, deviceSerial: string, sequence: number, targets: readonly SyncTargetName[], now = new Date()): void {
    const stmt = this.db.prepare(
      "INSERT INTO outbox (target, record_id, idempotency_key, device_serial, sequence, state, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
    );
    const iso = now.toISOString();
    for (const t of targets) stmt.run(t, recordId, idempotencyKey, deviceSerial, sequence, now.getTime(), iso, iso);
  }

  /** Pending rows of `target` due at `nowMs`, oldest first, never a device's later record before its earlier one is delivered. */
  due(target: SyncTargetName, nowMs: number, limit: number): OutboxItem[] {
    const rows = this.db
      .prepare(
        `SELECT o.id, o.target, o.idempotency_key, o.device_serial, o.sequence, o.attempts, r.payload, r.signature, r.station_certificate
           FROM outbox o JOIN device_records r ON r.id = o.record_id
          WHERE o.target = ? AND o.state = 'pending' AND o.next_attempt_at <= ?
            AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.device_serial = o.device_serial AND p.target = o.target AND p.sequence < o.sequence AND p.state IN ('pending', 'dead-lettered'))
          ORDER BY o.next_attempt_at, o.id LIMIT ?`,
      )
      .all(target, nowMs, limit) as DueRow[];
    return rows.map((r) => ({
      id: r.id,
      target: r.target,
      idempotencyKey: r.idempotency_key,
      deviceSerial: r.device_serial,
      sequence: r.sequence,
      attempts: r.attempts,
      record: {
        idempotencyKey: r.idempotency_key,
        payload: JSON.parse(r.payload) as SignedDeviceRecord['payload'],
        signature: { alg: 'ES256', stationCertificate: r.station_certificate, value: r.signature },
      },
    }));
  }

  /** When the next pending row of `target` becomes due (ms epoch), or undefined when none is pending. */
  nextDueAt(target: SyncTargetName): number | undefined {
    const row = this.db.prepare("SELECT MIN(next_attempt_at) AS t FROM outbox WHERE target = ? AND state = 'pending'").get(target) as { t: number | null };
    return row.t ?? undefined;
  }

  pendingCount(target?: SyncTargetName): number {
    const row = (
      target
        ? this.db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending' AND target = ?").get(target)
        : this.db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'").get()
    ) as { n: number };
    return row.n;
  }

  /** Pending rows that can move at all: not held behind a dead letter of the same device. */
  movablePendingCount(target: SyncTargetName): number {
    const row = this.db
      .prepare(
        `SELECT COUNT(*) AS n FROM outbox o WHERE o.target = ? AND o.state = 'pending'
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.device_serial = o.device_serial AND p.target = o.target AND p.sequence < o.sequence AND p.state = 'dead-lettered')`,
      )
      .get(target) as { n: number };
    return row.n;
  }

  /** The outcome of one delivery attempt, in one transaction. */
  applyOutcome(
    target: SyncTargetName,
    outcome: { delivered: number[]; dead: { id: number; reason: string }[]; retry: { id: number; error: string; nextAttemptAt: number }[] },
    now = new Date(),
  ): void {
    const iso = now.toISOString();
    this.tx('recording a sync attempt', () => {
      const delivered = this.db.prepare("UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?, updated_at = ?, last_error = NULL WHERE id = ? AND state = 'pending'");
      for (const id of outcome.delivered) delivered.run(iso, iso, id);
      const dead = this.db.prepare("UPDATE outbox SET state = 'dead-lettered', attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ? AND state = 'pending'");
      for (const d of outcome.dead) {
        if (dead.run(d.reason, iso, d.id).changes === 1) {
          const row = this.db.prepare('SELECT device_serial, idempotency_key FROM outbox WHERE id = ?').get(d.id) as { device_serial: string; idempotency_key: string };
          this.audit.append({ type: 'sync.dead-lettered', serial: row.device_serial, data: { target, idempotencyKey: row.idempotency_key, reason: d.reason } }, now);
        }
      }
      const retry = this.db.prepare("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'");
      for (const r of outcome.retry) retry.run(r.error, r.nextAttemptAt, iso, r.id);
      if (outcome.delivered.length > 0) this.db.prepare('UPDATE sync_targets SET last_success_at = ? WHERE target = ?').run(iso, target);
    });
  }

  private ensureTargetRow(target: SyncTargetName, now: Date): void {
    this.db.prepare("INSERT INTO sync_targets (target, state, alert, since) VALUES (?, 'active', NULL, ?) ON CONFLICT (target) DO NOTHING").run(target, now.toISOString());
  }

  /** 401/403: the target is paused with an alert the CLI and the GUI show; audited once per pause. */
  pauseTarget(target: SyncTargetName, alert: string, now = new Date()): void {
    this.tx('pausing a sync target', () => {
      this.ensureTargetRow(target, now);
      const row = this.db.prepare('SELECT state FROM sync_targets WHERE target = ?').get(target) as { state: string };
      this.db.prepare("UPDATE sync_targets SET state = 'paused', alert = ?, since = CASE WHEN state = 'paused' THEN since ELSE ? END WHERE target = ?").run(alert, now.toISOString(), target);
      if (row.state !== 'paused') this.audit.append({ type: 'sync.target-paused', serial: null, data: { target, alert } }, now);
    });
  }

  resumeTarget(target: SyncTargetName, now = new Date()): void {
    this.tx('resuming a sync target', () => {
      this.ensureTargetRow(target, now);
      const row = this.db.prepare('SELECT state FROM sync_targets WHERE target = ?').get(target) as { state: string };
      if (row.state === 'paused') {
        this.db.prepare("UPDATE sync_targets SET state = 'active', alert = NULL, since = ? WHERE target = ?").run(now.toISOString(), target);
        this.audit.append({ type: 'sync.target-resumed', serial: null, data: { target } }, now);
      }
    });
  }

  targetState(target: SyncTargetName): { state: 'active' | 'paused'; alert: string | null; since: string | null; lastSuccessAt: string | null } {
    const row = this.db.prepare('SELECT state, alert, since, last_success_at FROM sync_targets WHERE target = ?').get(target) as
      | { state: 'active' | 'paused'; alert: string | null; since: string; last_success_at: string | null }
      | undefined;
    return row ? { state: row.state, alert: row.alert, since: row.since, lastSuccessAt: row.last_success_at } : { state: 'active', alert: null, since: null, lastSuccessAt: null };
  }

  status(target: SyncTargetName, now = new Date()): TargetStatus {
    const counts = this.db.prepare('SELECT state, COUNT(*) AS n FROM outbox WHERE target = ? GROUP BY state').all(target) as { state: OutboxState; n: number }[];
    const n = (s: OutboxState) => counts.find((c) => c.state === s)?.n ?? 0;
    const oldest = this.db.prepare("SELECT MIN(created_at) AS at FROM outbox WHERE target = ? AND state = 'pending'").get(target) as { at: string | null };
    const t = this.targetState(target);
    return {
      target,
      state: t.state,
      alert: t.alert,
      pausedSince: t.state === 'paused' ? t.since : null,
      lastSuccessAt: t.lastSuccessAt,
      pending: n('pending'),
      delivered: n('delivered'),
      deadLettered: n('dead-lettered'),
      dropped: n('dropped'),
      oldestPendingAgeMs: oldest.at ? Math.max(0, now.getTime() - Date.parse(oldest.at)) : null,
    };
  }

  /**
   * A device's state towards a target: any record pending -> pending; else any dead-lettered or
   * dropped -> dead-lettered; else delivered; no record queued -> disabled.
   */
  deviceState(serial: string, target: SyncTargetName): DeviceSyncState {
    const rows = this.db.prepare('SELECT state FROM outbox WHERE device_serial = ? AND target = ?').all(serial, target) as { state: OutboxState }[];
    if (rows.length === 0) return 'disabled';
    if (rows.some((r) => r.state === 'pending')) return 'pending';
    if (rows.some((r) => r.state === 'dead-lettered' || r.state === 'dropped')) return 'dead-lettered';
    return 'delivered';
  }

  deadLetters(target?: SyncTargetName, limit = 1000): DeadLetter[] {
    const sql = `SELECT id, target, idempotency_key, device_serial, sequence, attempts, last_error, updated_at FROM outbox WHERE state = 'dead-lettered' ${target ? 'AND target = ?' : ''} ORDER BY id LIMIT ?`;
    const rows = (target ? this.db.prepare(sql).all(target, limit) : this.db.prepare(sql).all(limit)) as {
      id: number;
      target: SyncTargetName;
      idempotency_key: string;
      device_serial: string;
      sequence: number;
      attempts: number;
      last_error: string | null;
      updated_at: string;
    }[];
    return rows.map((r) => ({ id: r.id, target: r.target, idempotencyKey: r.idempotency_key, deviceSerial: r.device_serial, sequence: r.sequence, attempts: r.attempts, lastError: r.last_error, updatedAt: r.updated_at }));
  }

  /** Dead letters back to pending, due now (the operator fixed the cause). Audited. Returns how many. */
  retryDeadLetters(ids: readonly number[] | 'all', operator: string, target?: SyncTargetName, now = new Date()): number {
    return this.tx('retrying dead letters', () => {
      const chosen = this.select(ids, target);
      const stmt = this.db.prepare("UPDATE outbox SET state = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'dead-lettered'");
      for (const r of chosen) {
        stmt.run(now.getTime(), now.toISOString(), r.id);
        this.audit.append({ type: 'sync.dead-letter-retried', serial: r.device_serial, data: { target: r.target, idempotencyKey: r.idempotency_key, operator } }, now);
      }
      return chosen.length;
    });
  }

  /** Dead letters given up for good, with the operator's reason. Audited. Returns how many. */
  dropDeadLetters(ids: readonly number[] | 'all', reason: string, operator: string, target?: SyncTargetName, now = new Date()): number {
    if (reason.trim() === '') throw new DatabaseError('REASON_REQUIRED', 'Dropping a dead letter needs a reason (--reason).');
    return this.tx('dropping dead letters', () => {
      const chosen = this.select(ids, target);
      const stmt = this.db.prepare("UPDATE outbox SET state = 'dropped', last_error = COALESCE(last_error, '') || ' | dropped: ' || ?, updated_at = ? WHERE id = ? AND state = 'dead-lettered'");
      for (const r of chosen) {
        stmt.run(reason, now.toISOString(), r.id);
        this.audit.append({ type: 'sync.dead-letter-dropped', serial: r.device_serial, data: { target: r.target, idempotencyKey: r.idempotency_key, reason, operator } }, now);
      }
      return chosen.length;
    });
  }

  private select(ids: readonly number[] | 'all', target?: SyncTargetName): { id: number; target: string; device_serial: string; idempotency_key: string }[] {
    const all = this.db
      .prepare(`SELECT id, target, device_serial, idempotency_key FROM outbox WHERE state = 'dead-lettered' ${target ? 'AND target = ?' : ''} ORDER BY id`)
      .all(...(target ? [target] : [])) as { id: number; target: string; device_serial: string; idempotency_key: string }[];
    if (ids === 'all') return all;
    const wanted = new Set(ids);
    const chosen = all.filter((r) => wanted.has(r.id));
    const missing = [...wanted].filter((id) => !chosen.some((r) => r.id === id));
    if (missing.length > 0) throw new DatabaseError('DEAD_LETTER_UNKNOWN', `No dead letter with id ${missing.join(', ')}${target ? ` for ${target}` : ''}; "station sync dead-letters list" shows them.`);
    return chosen;
  }
}
