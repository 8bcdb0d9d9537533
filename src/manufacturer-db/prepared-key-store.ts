/**
 * Prepared keys of method 3 in the manufacturer database (table prepared_keys, migration 4),
 * on the record store's own connection: every change and its audit event in one transaction,
 * and the device-record changes a key's life implies (a device taking a prepared serial, a
 * device failed when its key is burned) in the same transaction.
 *
 * Each prepared key has a device record (status `issued` once its certificate is recorded,
 * with port and hardware id empty) and a certificate, because certificates and issuance intents
 * reference devices: that record waits for a device, like a device that left the issue stage.
 * Label and pending queries look at passed devices only; resolveDanglingIntents at pending
 * intents only; neither sees a prepared record as a device on the line.
 *
 * Blobs: `PRAGMA secure_delete` is switched on for the connection, so that deleted content is
 * overwritten with zeros in the pages; `scrub()` checkpoints the write-ahead log and truncates
 * it, so that the frames that held a deleted blob are gone from the disk too.
 */
import { createHash, randomUUID } from 'node:crypto';
import { DatabaseError } from '../core/errors';
import type { WrappedDeviceKey } from '../core/ports/key-injection';
import type { DeviceAttachment, PreparedKey, PreparedKeyOrigin, PreparedKeys, PreparedKeyState } from '../core/ports/prepared-keys';
import { inTransaction, statementFor, toDatabaseError, type CachedStatement, type SqliteDb } from './sqlite-database';
import type { SqliteRecordStore } from './sqlite-record-store';

interface PreparedKeyRow {
  id: string;
  work_order_id: string;
  serial: string;
  origin: PreparedKeyOrigin;
  prepare_run_id: string;
  spki: Buffer;
  public_key_sha256: string;
  kek_label: string;
  wrapped_key: Buffer | null;
  certificate_serial: string | null;
  state: PreparedKeyState;
  reserved_for: string | null;
  reserved_port: string | null;
  reserved_run_id: string | null;
  injected_at: string | null;
  confirmed_at: string | null;
  burn_reason: string | null;
  device_status: string;
}

/** What `station prepare` adds per key before its certificate is issued. */
export interface PreparingKey {
  id: string;
  serial: string;
}

/** What start-up reconciliation did with keys an earlier stop left half-way (for the log). */
export interface PreparedKeyResolution {
  id: string;
  serial: string;
  action: 'made-available' | 'burned' | 'consumed' | 'kept-reserved';
  reason: string;
}

export const PREPARED_KEYS_EXHAUSTED = 'PREPARED_KEYS_EXHAUSTED';
export const INJECTION_INTERRUPTED = 'INJECTION_INTERRUPTED';

const SELECT_KEY = `SELECT k.*, d.status AS device_status FROM prepared_keys k JOIN devices d ON d.serial = k.serial`;

function toKey(row: PreparedKeyRow): PreparedKey {
  return {
    id: row.id,
    workOrderId: row.work_order_id,
    serial: row.serial,
    origin: row.origin,
    spki: row.spki,
    publicKeySha256: row.public_key_sha256,
    kekLabel: row.kek_label,
    wrappedKey: row.wrapped_key,
    certificateSerial: row.certificate_serial,
    state: row.state,
    reservedFor: row.reserved_for,
    reservedPort: row.reserved_port,
    reservedRunId: row.reserved_run_id,
    injectedAt: row.injected_at,
    confirmedAt: row.confirmed_at,
    burnReason: row.burn_reason,
    deviceStatus: row.device_status,
  };
}

export class SqlitePreparedKeyStore implements PreparedKeys {
  private readonly db: SqliteDb;

  constructor(private readonly records: SqliteRecordStore) {
    this.db = records.db;
    this.db.pragma('secure_delete = ON');
  }

  private tx<T>(doing: string, fn: () => T): T {
    return inTransaction(this.db, doing, fn);
  }

  /** Statements prepared once per SQL text (a key's claim, injection and consumption are on every method-3 device's path). */
  private stmt(sql: string): CachedStatement {
    return statementFor(this.db, sql);
  }

  private read<T>(doing: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toDatabaseError(err, doing);
    }
  }

  private row(where: string, ...params: unknown[]): PreparedKey | undefined {
    const row = this.stmt(`${SELECT_KEY} WHERE ${where}`).get(...params) as PreparedKeyRow | undefined;
    return row ? toKey(row) : undefined;
  }

  private mustGet(id: string): PreparedKey {
    const key = this.row('k.id = ?', id);
    if (!key) throw new DatabaseError('PREPARED_KEY_UNKNOWN', `No prepared key ${id} in the database.`);
    return key;
  }

  get(id: string): PreparedKey | undefined {
    return this.read('reading a prepared key', () => this.row('k.id = ?', id));
  }

  findBySerial(serial: string): PreparedKey | undefined {
    return this.read('reading a prepared key', () => this.row('k.serial = ?', serial));
  }

  findReservedFor(workOrderId: string, hardwareId: string): PreparedKey | undefined {
    return this.read('looking for a key reserved for a device', () =>
      this.row("k.work_order_id = ? AND k.state = 'reserved' AND k.reserved_for = ? ORDER BY k.reserved_at LIMIT 1", workOrderId, hardwareId),
    );
  }

  availableCount(workOrderId: string): number {
    return this.read('counting prepared keys', () =>
      (this.stmt("SELECT COUNT(*) AS n FROM prepared_keys WHERE work_order_id = ? AND state = 'available'").get(workOrderId) as { n: number }).n,
    );
  }

  /** Counts per state of a work order (operator output, tests). */
  countsByState(workOrderId: string): Record<PreparedKeyState, number> {
    const counts: Record<PreparedKeyState, number> = { preparing: 0, available: 0, reserved: 0, consumed: 0, burned: 0 };
    const rows = this.read('counting prepared keys', () =>
      this.stmt('SELECT state, COUNT(*) AS n FROM prepared_keys WHERE work_order_id = ? GROUP BY state').all(workOrderId) as { state: PreparedKeyState; n: number }[],
    );
    for (const r of rows) counts[r.state] = r.n;
    return counts;
  }

  /**
   * `station prepare`, step 1: one transaction that allocates a device record per key (through
   * `allocate`, the record store's serial allocation) and adds the keys as `preparing`, wrapped.
   */
  addPreparing(input: { workOrderId: string; prepareRunId: string; kekLabel: string; keys: readonly WrappedDeviceKey[]; allocate: () => string }): PreparingKey[] {
    return this.tx('adding prepared keys', () => {
      const insert = this.stmt(
        `INSERT INTO prepared_keys (id, work_order_id, serial, origin, prepare_run_id, spki, public_key_sha256, kek_label, wrapped_key, state, created_at, updated_at)
         VALUES (?, ?, ?, 'prepared', ?, ?, ?, ?, ?, 'preparing', ?, ?)`,
      );
      const now = new Date().toISOString();
      const out: PreparingKey[] = [];
      for (const key of input.keys) {
        const serial = input.allocate();
        const id = randomUUID();
        insert.run(id, input.workOrderId, serial, input.prepareRunId, key.spki, createHash('sha256').update(key.spki).digest('hex'), input.kekLabel, key.wrappedKey, now, now);
        out.push({ id, serial });
      }
      if (out.length > 0) {
        this.records.audit.append({
          type: 'prepared-keys.made',
          serial: null,
          data: { workOrder: input.workOrderId, runId: input.prepareRunId, count: out.length, first: out[0]!.serial, last: out[out.length - 1]!.serial, kekLabel: input.kekLabel },
        });
      }
      return out;
    });
  }

  /** `station prepare`, step 2: keys whose certificate is recorded become available, in one transaction. */
  markAvailable(entries: readonly { id: string; certificateSerial: string }[]): void {
    this.tx('making prepared keys available', () => {
      const update = this.stmt(
        "UPDATE prepared_keys SET state = 'available', certificate_serial = ?, updated_at = ? WHERE id = ? AND state = 'preparing' AND EXISTS (SELECT 1 FROM devices d WHERE d.serial = prepared_keys.serial AND d.status = 'issued')",
      );
      const now = new Date().toISOString();
      for (const e of entries) {
        if (update.run(e.certificateSerial, now, e.id).changes !== 1) {
          throw new DatabaseError('PREPARED_KEY_STATE_CONFLICT', `Prepared key ${e.id} is not waiting for its certificate; it is not made available.`);
        }
      }
      if (entries.length > 0) this.records.audit.append({ type: 'prepared-keys.available', serial: null, data: { count: entries.length } });
    });
  }

  private checkMacs(macs: readonly string[]): void {
    for (const mac of macs) {
      const used = this.stmt('SELECT serial FROM device_macs WHERE mac = ?').get(mac) as { serial: string } | undefined;
      if (used) {
        throw new DatabaseError('MAC_ALREADY_USED', `The device reports MAC ${mac}, which already belongs to device ${used.serial}; a MAC is never given twice.`, {
          stage: 'assign',
          details: { mac, serial: used.serial },
        });
      }
    }
  }

  /** The device record of a prepared serial gets the device that took it (the assign stage's record). */
  private attachDevice(serial: string, d: DeviceAttachment, keyId: string): void {
    const changed = this.db
      .prepare("UPDATE devices SET run_id = ?, port = ?, hardware_id = ?, model = ?, firmware_version = ?, updated_at = ? WHERE serial = ? AND status = 'issued'")
      .run(d.runId, d.port, d.hardwareId, d.model, d.firmwareVersion, new Date().toISOString(), serial);
    if (changed.changes !== 1) {
      throw new DatabaseError('PREPARED_KEY_STATE_CONFLICT', `The device record ${serial} of prepared key ${keyId} is not waiting for a device.`, { stage: 'assign' });
    }
    const have = new Set((this.stmt('SELECT mac FROM device_macs WHERE serial = ?').all(serial) as { mac: string }[]).map((r) => r.mac));
    const insertMac = this.stmt('INSERT INTO device_macs (mac, serial) VALUES (?, ?)');
    for (const mac of d.macs) if (!have.has(mac)) insertMac.run(mac, serial);
    this.records.audit.append({ type: 'device.assigned', serial, data: { runId: d.runId, port: d.port, hardwareId: d.hardwareId, macs: d.macs, preparedKeyId: keyId } });
  }

  claimNext(workOrderId: string, device: DeviceAttachment): PreparedKey {
    return this.tx('reserving a prepared key', () => {
      this.checkMacs(device.macs);
      const next = this.stmt("SELECT id, serial FROM prepared_keys WHERE work_order_id = ? AND state = 'available' ORDER BY serial LIMIT 1").get(workOrderId) as
        | { id: string; serial: string }
        | undefined;
      if (!next) {
        throw new DatabaseError(
          PREPARED_KEYS_EXHAUSTED,
          `Work order ${workOrderId} has no prepared key left for the device on ${device.port}. Run "station prepare --work-order ${workOrderId} --count N", or run the batch with --inject at-station.`,
          { stage: 'assign', details: { workOrder: workOrderId } },
        );
      }
      const now = new Date().toISOString();
      this.db
        .prepare("UPDATE prepared_keys SET state = 'reserved', reserved_for = ?, reserved_port = ?, reserved_run_id = ?, reserved_at = ?, updated_at = ? WHERE id = ? AND state = 'available'")
        .run(device.hardwareId, device.port, device.runId, now, now, next.id);
      this.attachDevice(next.serial, device, next.id);
      this.records.audit.append({ type: 'prepared-key.reserved', serial: next.serial, data: { preparedKeyId: next.id, hardwareId: device.hardwareId, port: device.port, runId: device.runId } });
      return this.mustGet(next.id);
    });
  }

  recordStationKey(input: { workOrderId: string; serial: string; key: WrappedDeviceKey; kekLabel: string; hardwareId: string; port: string }): PreparedKey {
    return this.tx('recording a key made at the station', () => {
      const device = this.stmt('SELECT run_id, status FROM devices WHERE serial = ?').get(input.serial) as { run_id: string; status: string } | undefined;
      if (!device || device.status !== 'assigned') {
        throw new DatabaseError('PREPARED_KEY_STATE_CONFLICT', `Device ${input.serial} is not waiting for a key; the key made for it is not recorded.`, { stage: 'obtain-key' });
      }
      const id = randomUUID();
      const now = new Date().toISOString();
      this.db
        .prepare(
          `INSERT INTO prepared_keys (id, work_order_id, serial, origin, prepare_run_id, spki, public_key_sha256, kek_label, wrapped_key, state, reserved_for, reserved_port, reserved_run_id, reserved_at, created_at, updated_at)
           VALUES (?, ?, ?, 'at-station', ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?)`,
        )
        .run(id, input.workOrderId, input.serial, device.run_id, input.key.spki, createHash('sha256').update(input.key.spki).digest('hex'), input.kekLabel, input.key.wrappedKey, input.hardwareId, input.port, device.run_id, now, now, now);
      this.records.audit.append({ type: 'prepared-key.reserved', serial: input.serial, data: { preparedKeyId: id, hardwareId: input.hardwareId, port: input.port, runId: device.run_id, origin: 'at-station' } });
      return this.mustGet(id);
    });
  }

  certificateOf(id: string): Buffer {
    return this.read('reading a prepared key\'s certificate', () => {
      const row = this.db
        .prepare("SELECT c.der FROM prepared_keys k JOIN certificates c ON c.serial_hex = k.certificate_serial WHERE k.id = ? AND c.status = 'active'")
        .get(id) as { der: Buffer } | undefined;
      if (!row) throw new DatabaseError('PREPARED_KEY_NO_CERTIFICATE', `Prepared key ${id} has no active certificate.`, { stage: 'obtain-key' });
      return row.der;
    });
  }

  markInjecting(id: string, hardwareId: string): void {
    this.tx('marking a key as leaving for its device', () => {
      const now = new Date().toISOString();
      const changed = this.db
        .prepare(
          `UPDATE prepared_keys SET injected_at = COALESCE(injected_at, ?), updated_at = ?,
             certificate_serial = COALESCE(certificate_serial, (SELECT certificate_serial FROM devices WHERE devices.serial = prepared_keys.serial))
           WHERE id = ? AND state = 'reserved' AND reserved_for = ?`,
        )
        .run(now, now, id, hardwareId);
      if (changed.changes !== 1) {
        throw new DatabaseError('PREPARED_KEY_STATE_CONFLICT', `Prepared key ${id} is not reserved for the device ${hardwareId}; it is not sent.`, { stage: 'install' });
      }
      const key = this.mustGet(id);
      this.records.audit.append({ type: 'prepared-key.injecting', serial: key.serial, data: { preparedKeyId: id, hardwareId } });
    });
  }

  resume(id: string, device: DeviceAttachment): PreparedKey {
    return this.tx('resuming a device with its reserved key', () => {
      const key = this.mustGet(id);
      if (key.state !== 'reserved' || key.reservedFor !== device.hardwareId || key.deviceStatus !== 'issued') {
        throw new DatabaseError('PREPARED_KEY_STATE_CONFLICT', `Prepared key ${id} (${key.state}, device record ${key.deviceStatus}) cannot be resumed by the device ${device.hardwareId}.`, { stage: 'assign' });
      }
      const now = new Date().toISOString();
      this.stmt('UPDATE prepared_keys SET confirmed_at = ?, reserved_port = ?, reserved_run_id = ?, updated_at = ? WHERE id = ?').run(now, device.port, device.runId, now, id);
      this.attachDevice(key.serial, device, id);
      this.records.audit.append({ type: 'prepared-key.possession-confirmed', serial: key.serial, data: { preparedKeyId: id, hardwareId: device.hardwareId, resumed: true } });
      return this.mustGet(id);
    });
  }

  consume(id: string, how: 'recorded' | 'possession-confirmed'): void {
    this.tx('deleting a consumed key', () => {
      const now = new Date().toISOString();
      const changed = this.db
        .prepare(
          "UPDATE prepared_keys SET state = 'consumed', wrapped_key = NULL, consumed_at = ?, confirmed_at = COALESCE(confirmed_at, ?), updated_at = ? WHERE id = ? AND state = 'reserved' AND injected_at IS NOT NULL",
        )
        .run(now, now, now, id);
      if (changed.changes !== 1) throw new DatabaseError('PREPARED_KEY_STATE_CONFLICT', `Prepared key ${id} is not a reserved key that left for its device; it is not consumed.`);
      const key = this.mustGet(id);
      this.records.audit.append({ type: 'prepared-key.consumed', serial: key.serial, data: { preparedKeyId: id, hardwareId: key.reservedFor, how } });
    });
  }

  burn(id: string, reason: string, failDevice?: { code: string; message: string }): void {
    this.tx('burning a prepared key', () => {
      const key = this.mustGet(id);
      const now = new Date().toISOString();
      const changed = this.db
        .prepare("UPDATE prepared_keys SET state = 'burned', wrapped_key = NULL, burned_at = ?, burn_reason = ?, updated_at = ? WHERE id = ? AND state IN ('preparing', 'available', 'reserved')")
        .run(now, reason, now, id);
      if (changed.changes !== 1) throw new DatabaseError('PREPARED_KEY_STATE_CONFLICT', `Prepared key ${id} is ${key.state}; it cannot be burned.`);
      this.records.audit.append({ type: 'prepared-key.burned', serial: key.serial, data: { preparedKeyId: id, hardwareId: key.reservedFor, injected: key.injectedAt !== null, reason } });
      if (failDevice && (key.deviceStatus === 'assigned' || key.deviceStatus === 'issued')) {
        // Nested: a savepoint inside this transaction. Voids the certificate, closes pending intents.
        this.records.markFailed(key.serial, key.reservedRunId ?? this.prepareRunOf(id), { code: failDevice.code, message: failDevice.message, stage: 'assign' }, [], 'rework');
      }
    });
  }

  private prepareRunOf(id: string): string {
    return (this.stmt('SELECT prepare_run_id FROM prepared_keys WHERE id = ?').get(id) as { prepare_run_id: string }).prepare_run_id;
  }

  scrub(): void {
    this.read('scrubbing deleted keys from the write-ahead log', () => {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    });
  }

  /**
   * At start, before any device (after resolveDanglingIntents): keys that an earlier stop left
   * half-way. One station process per database is assumed, as for issuance intents.
   * - preparing, certificate recorded: made available;
   * - preparing without a certificate: burned (their device record failed);
   * - reserved, never sent: burned (the key never left the station; its device record failed);
   * - reserved and sent, device record verified or passed (the device proved possession in the
   *   verify stage; the stop came before the blob was deleted): consumed;
   * - reserved and sent otherwise: kept reserved for its device, which may come back.
   */
  resolveInterrupted(): PreparedKeyResolution[] {
    const open = this.read('reading unfinished prepared keys', () => this.stmt(`${SELECT_KEY} WHERE k.state IN ('preparing', 'reserved') ORDER BY k.serial`).all() as PreparedKeyRow[]).map(toKey);
    const out: PreparedKeyResolution[] = [];
    for (const key of open) {
      if (key.state === 'preparing') {
        const cert = this.stmt('SELECT certificate_serial FROM devices WHERE serial = ? AND status = ?').get(key.serial, 'issued') as { certificate_serial: string | null } | undefined;
        if (cert?.certificate_serial) {
          this.markAvailable([{ id: key.id, certificateSerial: cert.certificate_serial }]);
          out.push({ id: key.id, serial: key.serial, action: 'made-available', reason: 'its certificate was recorded before the stop' });
        } else {
          const reason = 'the station stopped while preparing it, before its certificate was recorded';
          this.burn(key.id, reason, { code: INJECTION_INTERRUPTED, message: `The station stopped while preparing the key of ${key.serial}; the key was burned and never used.` });
          out.push({ id: key.id, serial: key.serial, action: 'burned', reason });
        }
      } else if (key.injectedAt === null) {
        const reason = 'the station stopped before the key left for its device';
        this.burn(key.id, reason, { code: INJECTION_INTERRUPTED, message: `The station stopped before the key of ${key.serial} was injected; the key was burned. Provision the device again.` });
        out.push({ id: key.id, serial: key.serial, action: 'burned', reason });
      } else if (key.deviceStatus === 'verified' || key.deviceStatus === 'passed') {
        this.consume(key.id, 'recorded');
        out.push({ id: key.id, serial: key.serial, action: 'consumed', reason: `its device proved possession (record ${key.deviceStatus}) before the stop` });
      } else {
        out.push({ id: key.id, serial: key.serial, action: 'kept-reserved', reason: `reserved for the device ${key.reservedFor}, which has not proved possession yet` });
      }
    }
    if (out.some((r) => r.action !== 'kept-reserved')) this.scrub();
    return out;
  }
}
