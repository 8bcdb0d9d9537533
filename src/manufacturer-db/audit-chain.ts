/**
 * Append-only audit events, numbered and chained by hash:
 *   hash = SHA-256( prev_hash || "\n" || JSON([seq, at, station_id, type, serial, data]) )
 * written in the same transaction as the record they describe.
 */
import { createHash } from 'node:crypto';
import type { SqliteDb } from './sqlite-database';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEventInput {
  type: string;
  serial: string | null;
  data: Record<string, unknown>;
}

interface AuditRow {
  seq: number;
  at: string;
  station_id: string;
  type: string;
  serial: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

function eventHash(prev: string, seq: number, at: string, stationId: string, type: string, serial: string | null, data: string): string {
  return createHash('sha256').update(prev).update('\n').update(JSON.stringify([seq, at, stationId, type, serial, data])).digest('hex');
}

export class AuditChain {
  private readonly lastStmt;
  private readonly insertStmt;

  constructor(
    db: SqliteDb,
    private readonly stationId: string,
  ) {
    this.lastStmt = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
    this.insertStmt = db.prepare(
      'INSERT INTO audit_events (seq, at, station_id, type, serial, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
  }

  /** Call inside the transaction that writes the record the event describes. */
  append(event: AuditEventInput, at = new Date()): number {
    const last = this.lastStmt.get() as { seq: number; hash: string } | undefined;
    const seq = (last?.seq ?? 0) + 1;
    const prev = last?.hash ?? GENESIS_HASH;
    const iso = at.toISOString();
    const data = JSON.stringify(event.data);
    this.insertStmt.run(seq, iso, this.stationId, event.type, event.serial, data, prev, eventHash(prev, seq, iso, this.stationId, event.type, event.serial, data));
    return seq;
  }
}

export interface AuditVerifyResult {
  ok: boolean;
  events: number;
  firstBreak?: { seq: number; reason: string };
}

export function verifyAuditChain(db: SqliteDb): AuditVerifyResult {
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  let events = 0;
  for (const row of db.prepare('SELECT * FROM audit_events ORDER BY seq').iterate() as IterableIterator<AuditRow>) {
    events++;
    if (row.seq !== expectedSeq) return { ok: false, events, firstBreak: { seq: row.seq, reason: `expected event ${expectedSeq}, found ${row.seq}` } };
    if (row.prev_hash !== prev) return { ok: false, events, firstBreak: { seq: row.seq, reason: 'prev_hash does not match the previous event' } };
    const h = eventHash(prev, row.seq, row.at, row.station_id, row.type, row.serial, row.data);
    if (h !== row.hash) return { ok: false, events, firstBreak: { seq: row.seq, reason: 'hash does not match the event content' } };
    prev = row.hash;
    expectedSeq++;
  }
  return { ok: true, events };
}
