/**
 * The services' queries, written once for both dialects over one transaction (SqlTx). Payloads
 * are stored as the canonical JSON the station signed, so "same payload" is a string compare.
 */
import { DeviceRecordPayloadSchema, type DeviceRecordPayload, type SignedDeviceRecord } from '../../core/device-record';
import type { SqlTx } from './sql-database';

export interface DeviceRow {
  serial: string;
  sequence: number;
  status: 'active' | 'void';
  owner: string | null;
  workOrder: string;
  payload: DeviceRecordPayload;
  updatedAt: string;
}

export interface AuditEvent {
  id: number;
  at: string;
  event: string;
  detail: Record<string, unknown>;
}

export interface ClaimRow {
  owner: string;
  claimedAt: string;
}

interface DeviceDbRow {
  serial: string;
  sequence: number | string;
  status: string;
  owner: string | null;
  work_order: string;
  payload: string;
  updated_at: string;
}

function deviceRow(r: DeviceDbRow): DeviceRow {
  return {
    serial: r.serial,
    sequence: Number(r.sequence),
    status: r.status === 'void' ? 'void' : 'active',
    owner: r.owner,
    workOrder: r.work_order,
    payload: DeviceRecordPayloadSchema.parse(JSON.parse(r.payload)),
    updatedAt: r.updated_at,
  };
}

export class ServiceRepository {
  constructor(private readonly tx: SqlTx) {}

  /** The canonical payload stored under this idempotency key, if any. */
  async storedPayload(idempotencyKey: string): Promise<string | undefined> {
    const rows = await this.tx.all<{ payload: string }>('SELECT payload FROM records WHERE idempotency_key = $1', [idempotencyKey]);
    return rows[0]?.payload;
  }

  async insertRecord(record: SignedDeviceRecord, canonicalPayload: string, now: string): Promise<void> {
    const p = record.payload;
    await this.tx.run(
      'INSERT INTO records (idempotency_key, serial, station_id, sequence, payload, signature, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [record.idempotencyKey, p.serial, p.stationId, p.sequence, canonicalPayload, JSON.stringify(record.signature), now],
    );
  }

  async countRecords(serial?: string): Promise<number> {
    const rows = serial === undefined
      ? await this.tx.all<{ n: number | string }>('SELECT COUNT(*) AS n FROM records')
      : await this.tx.all<{ n: number | string }>('SELECT COUNT(*) AS n FROM records WHERE serial = $1', [serial]);
    return Number(rows[0]?.n ?? 0);
  }

  async device(serial: string): Promise<DeviceRow | undefined> {
    const rows = await this.tx.all<DeviceDbRow>('SELECT serial, sequence, status, owner, work_order, payload, updated_at FROM devices WHERE serial = $1', [serial]);
    return rows[0] ? deviceRow(rows[0]) : undefined;
  }

  /** The device's state after applying `payload` (its newest record). */
  async putDevice(payload: DeviceRecordPayload, canonicalPayload: string, now: string): Promise<void> {
    await this.tx.run(
      `INSERT INTO devices (serial, sequence, status, owner, work_order, payload, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (serial) DO UPDATE SET sequence = excluded.sequence, status = excluded.status, owner = excluded.owner,
         work_order = excluded.work_order, payload = excluded.payload, updated_at = excluded.updated_at`,
      [payload.serial, payload.sequence, payload.status, payload.owner, payload.workOrder, canonicalPayload, now],
    );
  }

  /** Devices whose record names `owner` (or that `owner` claimed), by purchase order (work order) and serial. */
  async devicesOfOwner(owner: string, workOrder?: string): Promise<DeviceRow[]> {
    const sql = `SELECT d.serial, d.sequence, d.status, d.owner, d.work_order, d.payload, d.updated_at FROM devices d
       LEFT JOIN claims c ON c.serial = d.serial
       WHERE (d.owner = $1 OR c.owner = $1)${workOrder === undefined ? '' : ' AND d.work_order = $2'}
       ORDER BY d.work_order, d.serial`;
    const rows = await this.tx.all<DeviceDbRow>(sql, workOrder === undefined ? [owner] : [owner, workOrder]);
    return rows.map(deviceRow);
  }

  async appendAudit(serial: string, event: string, detail: Record<string, unknown>, now: string): Promise<void> {
    await this.tx.run('INSERT INTO audit (serial, at, event, detail) VALUES ($1, $2, $3, $4)', [serial, now, event, JSON.stringify(detail)]);
  }

  async audit(serial: string): Promise<AuditEvent[]> {
    const rows = await this.tx.all<{ id: number | string; at: string; event: string; detail: string }>('SELECT id, at, event, detail FROM audit WHERE serial = $1 ORDER BY id', [serial]);
    return rows.map((r) => ({ id: Number(r.id), at: r.at, event: r.event, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  /** MASA, trust-on-first-use: the SHA-256 (hex) of the domain certificate this device is bound to. */
  async ownerBinding(serial: string): Promise<string | undefined> {
    const rows = await this.tx.all<{ domain_sha256: string }>('SELECT domain_sha256 FROM owner_bindings WHERE serial = $1', [serial]);
    return rows[0]?.domain_sha256;
  }

  async bindOwner(serial: string, domainSha256: string, now: string): Promise<void> {
    await this.tx.run('INSERT INTO owner_bindings (serial, domain_sha256, bound_at) VALUES ($1, $2, $3)', [serial, domainSha256, now]);
  }

  async claim(serial: string): Promise<ClaimRow | undefined> {
    const rows = await this.tx.all<{ owner: string; claimed_at: string }>('SELECT owner, claimed_at FROM claims WHERE serial = $1', [serial]);
    return rows[0] ? { owner: rows[0].owner, claimedAt: rows[0].claimed_at } : undefined;
  }

  async putClaim(serial: string, owner: string, now: string): Promise<void> {
    await this.tx.run('INSERT INTO claims (serial, owner, claimed_at) VALUES ($1, $2, $3)', [serial, owner, now]);
  }
}
