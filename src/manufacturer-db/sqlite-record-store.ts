/**
 * The manufacturer database for device records. Every state change writes the device row and
 * its audit event in one transaction; serials are allocated from the work order's range in the
 * same transaction as the device row, so a serial is never given twice, across restarts too.
 */
import { createHash } from 'node:crypto';
import type { WorkOrder } from '../core/config';
import { DatabaseError, StationError, type StageName } from '../core/errors';
import { formatSerial } from '../core/config';
import type { KeyOrigin, MethodId } from '../core/method-id';
import type { IssuanceIntent, IssuanceJournal, IssuedCertificateEntry } from '../core/ports/issuance-journal';
import type { DeviceRecordPayload } from '../core/device-record';
import { AuditChain } from './audit-chain';
import { BlockRegistry } from './blocks';
import { OutboxStore, type SyncTargetName } from './outbox/outbox-store';
import type { RecordFacts } from './records/device-payload';
import type { RecordSignature } from './records/record-signer';
import { commitEachInSavepoint, inTransaction, statementFor, toDatabaseError, turnCommitter, withoutSavepoints, type CachedStatement, type SqliteDb, type TurnCommitter, type WriteOutcome } from './sqlite-database';

/**
 * A signed (or, without a station identity, unsigned) device record, ready to commit with the
 * state change it describes: the payload, its canonical JSON, the signature, and the sync
 * targets that get an outbox row each.
 */
export interface RecordWrite {
  payload: DeviceRecordPayload;
  /** The device's record_sequence the payload was built on; the write refuses a stale one. */
  previousSequence: number;
  canonical: string;
  signature: RecordSignature | null;
  targets: readonly SyncTargetName[];
}

export type DeviceStatus = 'assigned' | 'issued' | 'verified' | 'passed' | 'failed';
export type LabelState = 'none' | 'pending' | 'printed' | 'failed';

export interface DeviceRecord {
  serial: string;
  workOrderId: string;
  runId: string;
  stationId: string;
  port: string | null;
  hardwareId: string | null;
  model: string | null;
  firmwareVersion: string | null;
  macs: string[];
  method: MethodId;
  keyOrigin: KeyOrigin | null;
  publicKeySpki: Buffer | null;
  publicKeySha256: string | null;
  certificateSerial: string | null;
  certificateDer: Buffer | null;
  certificateStatus: 'active' | 'void' | null;
  dppUri: string | null;
  status: DeviceStatus;
  error: { code: string; message: string; stage: string | null } | null;
  disposition: 'rework' | 'scrap' | null;
  labelState: LabelState;
  labelReason: string | null;
  createdAt: string;
  updatedAt: string;
  seSerial: string | null;
  chipId: string | null;
  preparedKeyId: string | null;
  manifestEntryId: string | null;
  owner: string | null;
  operator: string | null;
  /** Signed records written for the device so far (0: none). */
  recordSequence: number;
  voidReason: string | null;
}

export interface AllocateDeviceInput {
  runId: string;
  workOrder: WorkOrder;
  port: string;
  hardwareId: string;
  model: string;
  firmwareVersion: string;
  macs: string[];
  method: MethodId;
  /** Who runs the line (recorded with the device). */
  operator?: string;
  /**
   * A product whose MACs the station allocates (macSource `block`): `count` consecutive MACs
   * from this station's MAC blocks for `product`, taken in this transaction (then `macs`, the
   * device's own, are neither checked nor recorded). Read them back with `blocks.macsOf(serial)`.
   */
  macBlock?: { product: string; count: number };
}

export interface LabelPrintInput {
  serial: string;
  kind: 'first' | 'retry' | 'reprint';
  printer: string;
  result: 'printed' | 'failed';
  operator?: string;
  reason?: string;
  errorCode?: string;
  errorMessage?: string;
}

/** An issuance intent found pending at start: the process stopped between intent and record. */
export interface ResolvedIntent {
  deviceSerial: string;
  certificateSerialHex: string;
  publicKeySha256Hex: string;
  intendedAt: string;
  /** False when the device had already moved on (failed, or issued another certificate). */
  deviceMarkedFailed: boolean;
}

/** The error a device gets when its issuance was interrupted (docs/operator-guide.md §5). */
export const ISSUANCE_INTERRUPTED = 'ISSUANCE_INTERRUPTED';

export interface StageResultRow {
  name: StageName;
  status: 'ok' | 'failed' | 'skipped';
  durationMs: number;
  errorCode?: string;
}

interface DeviceRow {
  serial: string;
  work_order_id: string;
  run_id: string;
  station_id: string;
  port: string | null;
  hardware_id: string | null;
  model: string | null;
  firmware_version: string | null;
  method: string;
  key_origin: string | null;
  public_key_spki: Buffer | null;
  public_key_sha256: string | null;
  certificate_serial: string | null;
  dpp_uri: string | null;
  status: DeviceStatus;
  error_code: string | null;
  error_message: string | null;
  error_stage: string | null;
  disposition: 'rework' | 'scrap' | null;
  label_state: LabelState;
  label_reason: string | null;
  created_at: string;
  updated_at: string;
  se_serial: string | null;
  chip_id: string | null;
  prepared_key_id: string | null;
  manifest_entry_id: string | null;
  owner: string | null;
  operator: string | null;
  record_sequence: number;
  void_reason: string | null;
}

export class SqliteRecordStore implements IssuanceJournal {
  readonly audit: AuditChain;
  readonly outbox: OutboxStore;
  readonly blocks: BlockRegistry;
  /**
   * Group commit per event-loop turn on this connection (sqlite-database.ts): the line's hot
   * writes go through it (`await store.committer.run(doing, () => store.write(...))`), so that
   * the ports' commits of one turn share one fsync.
   */
  readonly committer: TurnCommitter;

  constructor(
    readonly db: SqliteDb,
    readonly stationId: string,
  ) {
    this.committer = turnCommitter(db);
    this.audit = new AuditChain(db, stationId);
    this.outbox = new OutboxStore(db, this.audit);
    this.blocks = new BlockRegistry(db, this.audit, stationId);
  }

  /** Prepared statements of the hot paths (allocation, journal), prepared once per SQL text. */
  private stmt(sql: string): CachedStatement {
    return statementFor(this.db, sql);
  }

  private tx<T>(doing: string, fn: () => T): T {
    return inTransaction(this.db, doing, fn);
  }

  /** Insert the work order, or check that the stored one has the same serial format. */
  ensureWorkOrder(wo: WorkOrder): void {
    this.tx(`registering work order ${wo.id}`, () => {
      const row = this.db.prepare('SELECT * FROM work_orders WHERE id = ?').get(wo.id) as
        | { serial_prefix: string; serial_width: number; serial_first: number; serial_last: number; method: string; product: string }
        | undefined;
      if (!row) {
        this.db
          .prepare(
            `INSERT INTO work_orders (id, product, method, serial_prefix, serial_width, serial_first, serial_last, next_serial, owner, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(wo.id, wo.product, wo.method, wo.serial.prefix, wo.serial.width, wo.serial.first, wo.serial.last, wo.serial.first, wo.owner ?? null, new Date().toISOString());
        this.audit.append({ type: 'work-order.created', serial: null, data: { workOrder: wo.id, product: wo.product, method: wo.method } });
        this.blocks.claimWorkOrderRange(wo.id, wo.serial.prefix, wo.serial.first, wo.serial.last);
        return;
      }
      if (row.serial_prefix !== wo.serial.prefix || row.serial_width !== wo.serial.width || row.serial_first !== wo.serial.first) {
        throw new DatabaseError(
          'WORK_ORDER_CONFLICT',
          `Work order ${wo.id} is already in the database with another serial format (${row.serial_prefix}, width ${row.serial_width}, from ${row.serial_first}); a work order's serial range cannot change.`,
        );
      }
      if (wo.serial.last > row.serial_last) {
        this.db.prepare('UPDATE work_orders SET serial_last = ? WHERE id = ?').run(wo.serial.last, wo.id);
        this.audit.append({ type: 'work-order.range-extended', serial: null, data: { workOrder: wo.id, from: row.serial_last, to: wo.serial.last } });
      }
      // A database from before the blocks (schema 7) gets its work order's block now.
      this.blocks.claimWorkOrderRange(wo.id, row.serial_prefix, row.serial_first, Math.max(row.serial_last, wo.serial.last));
    });
  }

  startRun(runId: string, workOrderId: string): void {
    this.tx('starting a run', () => {
      this.db.prepare('INSERT INTO runs (id, station_id, work_order_id, started_at) VALUES (?, ?, ?, ?)').run(runId, this.stationId, workOrderId, new Date().toISOString());
      this.audit.append({ type: 'run.started', serial: null, data: { runId, workOrder: workOrderId } });
    });
  }

  finishRun(runId: string, counts: Record<string, number>): void {
    this.tx('finishing a run', () => {
      this.stmt('UPDATE runs SET finished_at = ? WHERE id = ?').run(new Date().toISOString(), runId);
      this.audit.append({ type: 'run.finished', serial: null, data: { runId, ...counts } });
    });
  }

  /** Allocate the work order's next serial to a device and record it, with its MACs. */
  allocateDevice(input: AllocateDeviceInput): string {
    return this.tx('assigning a serial', () => {
      for (const mac of input.macBlock ? [] : input.macs) {
        const used = this.stmt('SELECT serial FROM device_macs WHERE mac = ?').get(mac) as { serial: string } | undefined;
        if (used) {
          throw new DatabaseError('MAC_ALREADY_USED', `The device reports MAC ${mac}, which already belongs to device ${used.serial}; a MAC is never given twice.`, {
            stage: 'assign',
            details: { mac, serial: used.serial },
          });
        }
      }
      const wo = this.stmt('SELECT next_serial, serial_last FROM work_orders WHERE id = ?').get(input.workOrder.id) as
        | { next_serial: number; serial_last: number }
        | undefined;
      if (!wo) throw new DatabaseError('WORK_ORDER_UNKNOWN', `Work order ${input.workOrder.id} is not in the database.`, { stage: 'assign' });
      if (wo.next_serial > wo.serial_last) {
        throw new DatabaseError('SERIAL_RANGE_EXHAUSTED', `Work order ${input.workOrder.id} has used its whole serial range (last ${wo.serial_last}).`, { stage: 'assign' });
      }
      const serial = formatSerial(input.workOrder.serial, wo.next_serial);
      // MACs from the station's block commit with the serial (never given twice, even if the device fails).
      const macs = input.macBlock ? this.blocks.allocateMacs(input.macBlock.product, input.macBlock.count) : input.macs;
      this.stmt('UPDATE work_orders SET next_serial = next_serial + 1 WHERE id = ?').run(input.workOrder.id);
      const now = new Date().toISOString();
      this
        .stmt(
          `INSERT INTO devices (serial, work_order_id, run_id, station_id, port, hardware_id, model, firmware_version, method, status, owner, operator, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'assigned', ?, ?, ?, ?)`,
        )
        .run(serial, input.workOrder.id, input.runId, this.stationId, input.port, input.hardwareId, input.model, input.firmwareVersion, input.method, input.workOrder.owner ?? null, input.operator ?? null, now, now);
      for (const mac of macs) this.stmt('INSERT INTO device_macs (mac, serial) VALUES (?, ?)').run(mac, serial);
      this.audit.append({ type: 'device.assigned', serial, data: { runId: input.runId, port: input.port, hardwareId: input.hardwareId, macs, ...(input.macBlock ? { macSource: 'block' } : {}) } });
      return serial;
    });
  }

  /**
   * IssuanceJournal: the intent to certify a key for a device, durable before the HSM signs.
   * Refused unless the device is waiting for a certificate.
   */
  recordIntent(intent: IssuanceIntent): void {
    this.tx('recording an issuance intent', () => {
      const device = this.stmt('SELECT status FROM devices WHERE serial = ?').get(intent.deviceSerial) as { status: DeviceStatus } | undefined;
      if (!device) throw new DatabaseError('DEVICE_UNKNOWN', `No device ${intent.deviceSerial} in the database; refusing to issue a certificate for it.`, { stage: 'issue' });
      if (device.status !== 'assigned') {
        throw new DatabaseError('DEVICE_STATE_CONFLICT', `Device ${intent.deviceSerial} is ${device.status}, not waiting for a certificate; refusing to issue one.`, { stage: 'issue' });
      }
      this
        .stmt(
          "INSERT INTO issuance_intents (certificate_serial, device_serial, work_order_id, station_id, public_key_sha256, created_at, state) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
        )
        .run(intent.certificateSerialHex, intent.deviceSerial, intent.workOrderId, this.stationId, intent.publicKeySha256Hex, intent.at.toISOString());
    });
  }

  /**
   * IssuanceJournal: the certificate is durable before the issuer hands it out. Closes the
   * certificate's intent (and any other pending intent of the device) in the same transaction.
   */
  recordIssued(entry: IssuedCertificateEntry): void {
    this.tx('recording an issued certificate', () => {
      this
        .stmt('INSERT INTO certificates (serial_hex, device_serial, work_order_id, der, public_key_sha256, issued_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(entry.certificateSerialHex, entry.deviceSerial, entry.workOrderId, entry.certificateDer, entry.publicKeySha256Hex, entry.issuedAt.toISOString());
      const changed = this
        .stmt("UPDATE devices SET status = 'issued', certificate_serial = ?, public_key_sha256 = ?, updated_at = ? WHERE serial = ? AND status = 'assigned'")
        .run(entry.certificateSerialHex, entry.publicKeySha256Hex, new Date().toISOString(), entry.deviceSerial);
      if (changed.changes !== 1) {
        throw new DatabaseError('DEVICE_STATE_CONFLICT', `Device ${entry.deviceSerial} is not waiting for a certificate; refusing to record a second one.`, { stage: 'issue' });
      }
      const intent = this.stmt('SELECT device_serial, public_key_sha256, state FROM issuance_intents WHERE certificate_serial = ?').get(entry.certificateSerialHex) as
        | { device_serial: string; public_key_sha256: string; state: string }
        | undefined;
      if (intent && (intent.state !== 'pending' || intent.device_serial !== entry.deviceSerial || intent.public_key_sha256 !== entry.publicKeySha256Hex)) {
        throw new DatabaseError(
          'DEVICE_STATE_CONFLICT',
          `Certificate ${entry.certificateSerialHex} does not match its issuance intent (intent ${intent.state}, for ${intent.device_serial}); refusing to record it.`,
          { stage: 'issue' },
        );
      }
      const now = new Date().toISOString();
      this
        .stmt("UPDATE issuance_intents SET state = CASE WHEN certificate_serial = ? THEN 'issued' ELSE 'abandoned' END, resolved_at = ? WHERE device_serial = ? AND state = 'pending'")
        .run(entry.certificateSerialHex, now, entry.deviceSerial);
      this.audit.append({ type: 'certificate.issued', serial: entry.deviceSerial, data: { certificateSerial: entry.certificateSerialHex, publicKeySha256: entry.publicKeySha256Hex } });
    });
  }

  /**
   * A certificate another CA issued (method 4 keeping the SE vendor's certificate as the IDevID)
   * recorded as the device's certificate, in one transaction with its audit event
   * `certificate.recorded-external` (naming the issuer), before the certificate is installed.
   * Nothing is signed, so there is no issuance intent; the rest is as for our own certificates:
   * the device must be waiting for a certificate, a key held by another device (active
   * certificate or pending issuance) is refused (KEY_ALREADY_CERTIFIED), and a failure voids it.
   * The row is keyed by the certificate's serial (hex, as the DER carries it). The same
   * certificate recorded again, after the device it was recorded for failed (the SE's reworked
   * device), moves the void row to the new device and the audit event names the previous one.
   */
  recordExternalCertificate(entry: { deviceSerial: string; workOrderId: string; certificateDer: Buffer; certificateSerialHex: string; publicKeySpki: Buffer; issuer: string; recordedAt?: Date }): void {
    const publicKeySha256Hex = createHash('sha256').update(entry.publicKeySpki).digest('hex');
    const serialHex = entry.certificateSerialHex.toLowerCase();
    this.tx('recording a certificate issued by another CA', () => {
      const holder = this.findDeviceByPublicKey(publicKeySha256Hex);
      if (holder !== undefined && holder !== entry.deviceSerial) {
        throw new DatabaseError('KEY_ALREADY_CERTIFIED', `The key of device ${entry.deviceSerial} is already certified for device ${holder}. Set both aside and call the supervisor: key material was reused.`, {
          stage: 'issue',
          details: { serial: entry.deviceSerial, otherSerial: holder, publicKeySha256: publicKeySha256Hex },
        });
      }
      const at = (entry.recordedAt ?? new Date()).toISOString();
      const existing = this.stmt('SELECT device_serial, der, status, void_reason FROM certificates WHERE serial_hex = ?').get(serialHex) as
        | { device_serial: string; der: Buffer; status: 'active' | 'void'; void_reason: string | null }
        | undefined;
      if (existing && (existing.status !== 'void' || !existing.der.equals(entry.certificateDer))) {
        throw new DatabaseError(
          'CERTIFICATE_SERIAL_CONFLICT',
          `A certificate with serial ${serialHex} is already recorded for device ${existing.device_serial} (${existing.status}); refusing to record another one for ${entry.deviceSerial} under that serial.`,
          { stage: 'issue' },
        );
      }
      if (existing) {
        this.stmt("UPDATE certificates SET device_serial = ?, work_order_id = ?, public_key_sha256 = ?, issued_at = ?, status = 'active', void_reason = NULL WHERE serial_hex = ?").run(
          entry.deviceSerial,
          entry.workOrderId,
          publicKeySha256Hex,
          at,
          serialHex,
        );
      } else {
        this
          .stmt('INSERT INTO certificates (serial_hex, device_serial, work_order_id, der, public_key_sha256, issued_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(serialHex, entry.deviceSerial, entry.workOrderId, entry.certificateDer, publicKeySha256Hex, at);
      }
      const changed = this
        .stmt("UPDATE devices SET status = 'issued', certificate_serial = ?, public_key_sha256 = ?, updated_at = ? WHERE serial = ? AND status = 'assigned'")
        .run(serialHex, publicKeySha256Hex, new Date().toISOString(), entry.deviceSerial);
      if (changed.changes !== 1) {
        throw new DatabaseError('DEVICE_STATE_CONFLICT', `Device ${entry.deviceSerial} is not waiting for a certificate; refusing to record one.`, { stage: 'issue' });
      }
      this.audit.append({
        type: 'certificate.recorded-external',
        serial: entry.deviceSerial,
        data: {
          certificateSerial: serialHex,
          publicKeySha256: publicKeySha256Hex,
          issuer: entry.issuer,
          ...(existing ? { previousDevice: existing.device_serial, previousVoidReason: existing.void_reason } : {}),
        },
      });
    });
  }

  /**
   * IssuanceJournal: the device that holds this public key (SHA-256 of the DER SPKI, hex) in an
   * active certificate or a pending issuance. Certificates voided when their device failed do
   * not count, so a reworked device with a fixed key (SE pre-provisioned, seed-derived) can be
   * certified again under its new serial.
   */
  findDeviceByPublicKey(publicKeySha256Hex: string): string | undefined {
    try {
      const cert = this
        .stmt("SELECT device_serial FROM certificates WHERE public_key_sha256 = ? AND status = 'active' ORDER BY issued_at LIMIT 1")
        .get(publicKeySha256Hex) as { device_serial: string } | undefined;
      if (cert) return cert.device_serial;
      const intent = this
        .stmt("SELECT device_serial FROM issuance_intents WHERE public_key_sha256 = ? AND state = 'pending' ORDER BY created_at LIMIT 1")
        .get(publicKeySha256Hex) as { device_serial: string } | undefined;
      return intent?.device_serial;
    } catch (err) {
      throw toDatabaseError(err, 'looking up a public key');
    }
  }

  /**
   * At start, before any device: every intent this station left pending (the process stopped
   * after writing an intent and before recording its certificate, or before marking the device
   * failed) is closed as interrupted; its device, when still waiting for the certificate, is
   * marked failed with ISSUANCE_INTERRUPTED and disposition rework; each gets an audit event
   * `issuance.interrupted`. One transaction. Assumes one station process per database.
   */
  resolveDanglingIntents(): ResolvedIntent[] {
    return this.tx('resolving interrupted issuances', () => {
      const pending = this.db
        .prepare("SELECT certificate_serial, device_serial, public_key_sha256, created_at FROM issuance_intents WHERE station_id = ? AND state = 'pending' ORDER BY created_at, certificate_serial")
        .all(this.stationId) as { certificate_serial: string; device_serial: string; public_key_sha256: string; created_at: string }[];
      const resolved: ResolvedIntent[] = [];
      const now = new Date().toISOString();
      for (const i of pending) {
        this.db.prepare("UPDATE issuance_intents SET state = 'interrupted', resolved_at = ? WHERE certificate_serial = ?").run(now, i.certificate_serial);
        const message =
          `The station stopped while issuing certificate ${i.certificate_serial} to this device (intent of ${i.created_at}, no certificate recorded). ` +
          'Nothing left the station; provision the device again.';
        const failed = this.db
          .prepare("UPDATE devices SET status = 'failed', error_code = ?, error_message = ?, error_stage = 'issue', disposition = 'rework', updated_at = ? WHERE serial = ? AND status = 'assigned'")
          .run(ISSUANCE_INTERRUPTED, message, now, i.device_serial);
        const deviceMarkedFailed = failed.changes === 1;
        this.audit.append({
          type: 'issuance.interrupted',
          serial: i.device_serial,
          data: {
            certificateSerial: i.certificate_serial,
            publicKeySha256: i.public_key_sha256,
            intendedAt: i.created_at,
            code: ISSUANCE_INTERRUPTED,
            deviceMarkedFailed,
            disposition: deviceMarkedFailed ? 'rework' : null,
          },
        });
        resolved.push({ deviceSerial: i.device_serial, certificateSerialHex: i.certificate_serial, publicKeySha256Hex: i.public_key_sha256, intendedAt: i.created_at, deviceMarkedFailed });
      }
      return resolved;
    });
  }

  /**
   * The record stage: the verified device's row (with the method's facts), its signed record and
   * one outbox row per sync target, and the audit event, in ONE transaction.
   */
  recordVerified(input: {
    serial: string;
    keyOrigin: KeyOrigin;
    publicKeySpki: Buffer;
    dppUri: string;
    stages: StageResultRow[];
    runId: string;
    facts?: RecordFacts;
    record?: RecordWrite;
  }): void {
    this.tx('recording a verified device', () => {
      const now = new Date().toISOString();
      const f = input.facts ?? {};
      const changed = this
        .stmt(
          `UPDATE devices SET status = 'verified', key_origin = ?, public_key_spki = ?, public_key_sha256 = ?, dpp_uri = ?,
                  se_serial = COALESCE(?, se_serial), chip_id = COALESCE(?, chip_id), prepared_key_id = COALESCE(?, prepared_key_id), manifest_entry_id = COALESCE(?, manifest_entry_id),
                  recorded_at = ?, updated_at = ? WHERE serial = ? AND status = 'issued'`,
        )
        .run(
          input.keyOrigin,
          input.publicKeySpki,
          createHash('sha256').update(input.publicKeySpki).digest('hex'),
          input.dppUri,
          f.seSerial ?? null,
          f.chipId?.toLowerCase() ?? null,
          f.preparedKeyId ?? null,
          f.manifestEntryId ?? null,
          now,
          now,
          input.serial,
        );
      if (changed.changes !== 1) throw new DatabaseError('DEVICE_STATE_CONFLICT', `Device ${input.serial} is not in state "issued".`, { stage: 'record' });
      this.writeStages(input.serial, input.runId, input.stages);
      const record = input.record ? this.appendRecord(input.serial, input.record) : undefined;
      this.audit.append({ type: 'device.verified', serial: input.serial, data: { keyOrigin: input.keyOrigin, dppUri: input.dppUri, ...(record ?? {}) } });
    });
  }

  /**
   * A signed record and its outbox rows, inside the caller's transaction. Refuses a record built
   * on a stale sequence (another record of the device committed in between).
   */
  private appendRecord(serial: string, r: RecordWrite): { recordSequence: number; signed: boolean; queuedFor: SyncTargetName[] } {
    if (r.payload.serial !== serial) throw new DatabaseError('RECORD_INVALID', `A record for ${r.payload.serial} was offered as the record of ${serial}.`, { stage: 'record' });
    const bumped = this.stmt('UPDATE devices SET record_sequence = ? WHERE serial = ? AND record_sequence = ?').run(r.payload.sequence, serial, r.previousSequence);
    if (bumped.changes !== 1 || r.payload.sequence !== r.previousSequence + 1) {
      throw new DatabaseError('RECORD_SEQUENCE_CONFLICT', `Another record of ${serial} was committed while this one was signed; not recorded.`, { stage: 'record' });
    }
    const key = `${r.payload.stationId}:${serial}:${r.payload.sequence}`;
    const inserted = this
      .stmt('INSERT INTO device_records (serial, sequence, status, idempotency_key, payload, signature, station_certificate, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(serial, r.payload.sequence, r.payload.status, key, r.canonical, r.signature?.value ?? null, r.signature?.stationCertificate ?? null, new Date().toISOString()) as unknown as { lastInsertRowid: number | bigint };
    // Unsigned records (no station identity) are kept as evidence but never sent: a service would reject them.
    const targets = r.signature ? [...r.targets] : [];
    this.outbox.enqueue(Number(inserted.lastInsertRowid), key, serial, r.payload.sequence, targets);
    return { recordSequence: r.payload.sequence, signed: r.signature !== null, queuedFor: targets };
  }

  markPassed(serial: string, runId: string, stages: StageResultRow[]): void {
    this.tx('marking a device passed', () => {
      const now = new Date().toISOString();
      const changed = this.stmt("UPDATE devices SET status = 'passed', label_state = 'pending', passed_at = ?, updated_at = ? WHERE serial = ? AND status = 'verified'").run(now, now, serial);
      if (changed.changes !== 1) throw new DatabaseError('DEVICE_STATE_CONFLICT', `Device ${serial} is not in state "verified".`, { stage: 'lock' });
      this.writeStages(serial, runId, stages);
      this.audit.append({ type: 'device.passed', serial, data: {} });
    });
  }

  /**
   * A failed device keeps its record; any certificate it was issued is voided. With `voidRecord`
   * (a device whose certificate was issued), the signed void record and its outbox rows commit
   * in the same transaction, so the services learn the certificate must never be trusted.
   */
  markFailed(
    serial: string,
    runId: string,
    error: { code: string; message: string; stage: string | null },
    stages: StageResultRow[],
    disposition: 'rework' | 'scrap' = 'rework',
    voidRecord?: RecordWrite,
  ): void {
    this.tx('marking a device failed', () => {
      const now = new Date().toISOString();
      this.db
        .prepare("UPDATE devices SET status = 'failed', error_code = ?, error_message = ?, error_stage = ?, disposition = ?, failed_at = ?, updated_at = ? WHERE serial = ?")
        .run(error.code, error.message, error.stage, disposition, now, now, serial);
      const voided = this.db
        .prepare("UPDATE certificates SET status = 'void', void_reason = ? WHERE device_serial = ? AND status = 'active'")
        .run(`device failed: ${error.code}`, serial);
      if (voided.changes > 0) this.db.prepare('UPDATE devices SET voided_at = ?, void_reason = ? WHERE serial = ?').run(now, `device failed: ${error.code}`, serial);
      const record = voidRecord && voided.changes > 0 ? this.appendRecord(serial, voidRecord) : undefined;
      // An issuance that failed after its intent (HSM error, lint fault) is closed here.
      const abandoned = this.db.prepare("UPDATE issuance_intents SET state = 'abandoned', resolved_at = ? WHERE device_serial = ? AND state = 'pending'").run(now, serial);
      this.writeStages(serial, runId, stages);
      this.audit.append({
        type: 'device.failed',
        serial,
        data: {
          code: error.code,
          stage: error.stage,
          disposition,
          certificatesVoided: voided.changes,
          ...(abandoned.changes > 0 ? { intentsAbandoned: abandoned.changes } : {}),
          ...(record ?? {}),
        },
      });
    });
  }

  /**
   * Retire a device (returned, destroyed, compromised): its certificate is voided, the signed
   * void record is queued for the services, and the operator and reason are audited; one
   * transaction. A device without an active certificate is refused (nothing to retire).
   */
  retireDevice(serial: string, reason: string, operator: string, voidRecord: RecordWrite | undefined): { certificateSerial: string; recordSequence: number | null } {
    if (reason.trim() === '') throw new DatabaseError('REASON_REQUIRED', 'Retiring a device needs a reason (--reason).');
    return this.tx('retiring a device', () => {
      const device = this.db.prepare('SELECT status, certificate_serial FROM devices WHERE serial = ?').get(serial) as { status: DeviceStatus; certificate_serial: string | null } | undefined;
      if (!device) throw new DatabaseError('DEVICE_UNKNOWN', `No device ${serial} in the database.`);
      const now = new Date().toISOString();
      const voided = this.db.prepare("UPDATE certificates SET status = 'void', void_reason = ? WHERE device_serial = ? AND status = 'active'").run(`retired: ${reason}`, serial);
      if (voided.changes === 0 || !device.certificate_serial) {
        throw new DatabaseError('DEVICE_NOT_ACTIVE', `Device ${serial} has no active certificate (it failed, or was retired before); nothing to retire.`);
      }
      this.db.prepare('UPDATE devices SET voided_at = ?, void_reason = ?, updated_at = ? WHERE serial = ?').run(now, `retired: ${reason}`, now, serial);
      const record = voidRecord ? this.appendRecord(serial, voidRecord) : undefined;
      this.audit.append({ type: 'device.retired', serial, data: { reason, operator, certificateSerial: device.certificate_serial, ...(record ?? {}) } });
      return { certificateSerial: device.certificate_serial, recordSequence: record?.recordSequence ?? null };
    });
  }

  /** Whether the device holds an active certificate (a failure then voids it and queues the void). */
  hasActiveCertificate(serial: string): boolean {
    return this.stmt("SELECT 1 FROM certificates WHERE device_serial = ? AND status = 'active' LIMIT 1").get(serial) !== undefined;
  }

  /**
   * One print attempt: the print row, the device's label state and the audit event in one
   * transaction. A failed reprint leaves a printed label printed.
   */
  recordLabelPrint(p: LabelPrintInput): void {
    this.tx('recording a label print', () => {
      const device = this.stmt('SELECT status, label_state FROM devices WHERE serial = ?').get(p.serial) as { status: DeviceStatus; label_state: LabelState } | undefined;
      if (!device) throw new DatabaseError('DEVICE_UNKNOWN', `No device ${p.serial} in the database.`, { stage: 'label' });
      if (device.status !== 'passed') {
        throw new DatabaseError('LABEL_DEVICE_NOT_PASSED', `Device ${p.serial} is ${device.status}; only passed devices get a label.`, { stage: 'label' });
      }
      const at = new Date().toISOString();
      this
        .stmt('INSERT INTO label_prints (serial, at, kind, operator, reason, printer, result, error_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(p.serial, at, p.kind, p.operator ?? null, p.reason ?? null, p.printer, p.result, p.errorCode ?? null);
      const next: LabelState = p.result === 'printed' ? 'printed' : device.label_state === 'printed' ? 'printed' : 'pending';
      this
        .stmt('UPDATE devices SET label_state = ?, label_reason = ?, updated_at = ? WHERE serial = ?')
        .run(next, p.result === 'printed' ? null : `${p.errorCode ?? 'PRINTER_FAILED'}: ${p.errorMessage ?? ''}`.trim(), at, p.serial);
      this.audit.append({
        type: p.kind === 'reprint' ? `label.reprint.${p.result}` : `label.${p.result}`,
        serial: p.serial,
        data: { kind: p.kind, printer: p.printer, operator: p.operator ?? null, reason: p.reason ?? null, errorCode: p.errorCode ?? null },
      });
    });
  }

  /** Passed devices whose label has not been printed, oldest first. */
  pendingLabels(workOrderId?: string): string[] {
    const rows = (
      workOrderId
        ? this.db.prepare("SELECT serial FROM devices WHERE label_state = 'pending' AND status = 'passed' AND work_order_id = ? ORDER BY updated_at, serial").all(workOrderId)
        : this.db.prepare("SELECT serial FROM devices WHERE label_state = 'pending' AND status = 'passed' ORDER BY updated_at, serial").all()
    ) as { serial: string }[];
    return rows.map((r) => r.serial);
  }



  private writeStages(serial: string, runId: string, stages: StageResultRow[]): void {
    const stmt = this.stmt(
      'INSERT INTO device_stages (serial, run_id, name, status, duration_ms, error_code) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial, run_id, name) DO UPDATE SET status = excluded.status, duration_ms = excluded.duration_ms, error_code = excluded.error_code',
    );
    for (const s of stages) stmt.run(serial, runId, s.name, s.status, s.durationMs, s.errorCode ?? null);
  }

  getDevice(serial: string): DeviceRecord | undefined {
    const row = this.stmt('SELECT * FROM devices WHERE serial = ?').get(serial) as DeviceRow | undefined;
    if (!row) return undefined;
    const macs = (this.stmt('SELECT mac FROM device_macs WHERE serial = ? ORDER BY mac').all(serial) as { mac: string }[]).map((r) => r.mac);
    const cert = row.certificate_serial
      ? (this.stmt('SELECT der, status FROM certificates WHERE serial_hex = ?').get(row.certificate_serial) as { der: Buffer; status: 'active' | 'void' } | undefined)
      : undefined;
    return {
      serial: row.serial,
      workOrderId: row.work_order_id,
      runId: row.run_id,
      stationId: row.station_id,
      port: row.port,
      hardwareId: row.hardware_id,
      model: row.model,
      firmwareVersion: row.firmware_version,
      macs,
      method: row.method as MethodId,
      keyOrigin: row.key_origin as KeyOrigin | null,
      publicKeySpki: row.public_key_spki,
      publicKeySha256: row.public_key_sha256,
      certificateSerial: row.certificate_serial,
      certificateDer: cert?.der ?? null,
      certificateStatus: cert?.status ?? null,
      dppUri: row.dpp_uri,
      status: row.status,
      error: row.error_code ? { code: row.error_code, message: row.error_message ?? '', stage: row.error_stage } : null,
      disposition: row.disposition,
      labelState: row.label_state,
      labelReason: row.label_reason,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      seSerial: row.se_serial,
      chipId: row.chip_id,
      preparedKeyId: row.prepared_key_id,
      manifestEntryId: row.manifest_entry_id,
      owner: row.owner,
      operator: row.operator,
      recordSequence: row.record_sequence,
      voidReason: row.void_reason,
    };
  }

  close(): void {
    this.committer.flush();
    this.db.close();
  }
}

/**
 * The line's IssuanceJournal: the store's intent and issued rows through the connection's
 * TurnCommitter, so that issuances on several ports in one turn share a commit with each other
 * and with the ports' other writes. Each promise settles once its row is durable (the issuer
 * awaits it: nothing is signed before its intent is durable, no certificate leaves before its
 * row). Keys of intents queued and not yet committed are visible to findDeviceByPublicKey, as in
 * GroupCommitJournal, so two concurrent issuances of one key are still refused.
 */
export class TurnCommitJournal implements IssuanceJournal {
  private readonly pendingKeys = new Map<string, string>();

  constructor(readonly store: SqliteRecordStore) {}

  async recordIntent(intent: IssuanceIntent): Promise<void> {
    this.pendingKeys.set(intent.publicKeySha256Hex, intent.deviceSerial);
    try {
      await this.store.committer.run('recording an issuance intent', () => this.store.recordIntent(intent));
    } finally {
      if (this.pendingKeys.get(intent.publicKeySha256Hex) === intent.deviceSerial) this.pendingKeys.delete(intent.publicKeySha256Hex);
    }
  }

  recordIssued(entry: IssuedCertificateEntry): Promise<void> {
    return this.store.committer.run('recording an issued certificate', () => this.store.recordIssued(entry));
  }

  findDeviceByPublicKey(publicKeySha256Hex: string): string | undefined {
    return this.pendingKeys.get(publicKeySha256Hex) ?? this.store.findDeviceByPublicKey(publicKeySha256Hex);
  }
}

export interface GroupCommitOptions {
  /** Commit as soon as this many rows wait (default 256). */
  maxRows?: number;
  /** Otherwise commit this long after the first waiting row (default 1 ms). */
  maxWaitMs?: number;
}

interface QueuedRow {
  run: () => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * IssuanceJournal with group commit (design/pitfalls.md 16: one FULL-sync transaction costs an
 * fsync; concurrent issuances share it). recordIntent and recordIssued queue the row and return
 * a promise that settles only after the transaction holding the row has COMMITTED — the issuer
 * awaits it, so nothing is signed before its intent is durable and no certificate leaves before
 * its record is. Rows collect for up to maxWaitMs or maxRows, then one transaction writes them
 * all, each inside its own savepoint (SqliteRecordStore's own transactions nest as savepoints).
 *
 * Failures: a row whose checks or statements fail rolls back alone (its savepoint) and only its
 * issuance is rejected, with the same error the synchronous store would throw; the other rows
 * of the batch commit. If the commit itself fails, every row of that batch is rejected (nothing
 * of it is durable, and no certificate of it is released).
 *
 * Keys of queued, not yet committed intents are visible to findDeviceByPublicKey, so that two
 * concurrent issuances of one key are still refused (CSR_KEY_ALREADY_CERTIFIED).
 */
export class GroupCommitJournal implements IssuanceJournal {
  private queue: QueuedRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pendingKeys = new Map<string, string>();
  private readonly maxRows: number;
  private readonly maxWaitMs: number;
  /** Transactions committed and rows they held (for benches and tests). */
  readonly stats = { commits: 0, rows: 0, regrouped: 0 };

  constructor(
    readonly store: SqliteRecordStore,
    options: GroupCommitOptions = {},
  ) {
    this.maxRows = options.maxRows ?? 256;
    this.maxWaitMs = options.maxWaitMs ?? 1;
  }

  recordIntent(intent: IssuanceIntent): Promise<void> {
    this.pendingKeys.set(intent.publicKeySha256Hex, intent.deviceSerial);
    return this.enqueue(() => this.store.recordIntent(intent), () => {
      if (this.pendingKeys.get(intent.publicKeySha256Hex) === intent.deviceSerial) this.pendingKeys.delete(intent.publicKeySha256Hex);
    });
  }

  recordIssued(entry: IssuedCertificateEntry): Promise<void> {
    return this.enqueue(() => this.store.recordIssued(entry));
  }

  findDeviceByPublicKey(publicKeySha256Hex: string): string | undefined {
    return this.pendingKeys.get(publicKeySha256Hex) ?? this.store.findDeviceByPublicKey(publicKeySha256Hex);
  }

  /** Commits whatever waits now. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    // Fast path: the whole group in one transaction without a savepoint per row. Should any row
    // fail, that transaction rolls back whole and the group runs again below, each row in its
    // own savepoint, so that only the failing rows are refused.
    try {
      withoutSavepoints(this.store.db, () => {
        for (const row of batch) row.run();
      });
      this.stats.commits++;
      this.stats.rows += batch.length;
      for (const row of batch) row.resolve();
      return;
    } catch {
      this.stats.regrouped++;
    }
    let outcomes: WriteOutcome[];
    try {
      outcomes = commitEachInSavepoint(this.store.db, batch.map((row) => row.run));
    } catch (err) {
      const e = err instanceof StationError ? err : toDatabaseError(err, 'committing a group of issuance records');
      for (const row of batch) row.reject(e);
      return;
    }
    this.stats.commits++;
    this.stats.rows += batch.length;
    outcomes.forEach((o, i) => (o.ok ? batch[i]!.resolve() : batch[i]!.reject(o.error)));
  }

  /** Commits what waits; call before closing the store. */
  close(): void {
    this.flush();
  }

  private enqueue(run: () => void, settled?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({
        run,
        resolve: () => {
          settled?.();
          resolve();
        },
        reject: (err) => {
          settled?.();
          reject(err);
        },
      });
      if (this.queue.length >= this.maxRows) this.flush();
      else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
    });
  }
}
