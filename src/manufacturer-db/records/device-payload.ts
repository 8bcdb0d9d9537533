/**
 * Builds the DeviceRecordPayload (src/core/device-record.ts) a station signs, from what the
 * database holds about a device (its row, MACs, work order, certificate) and what the record
 * stage is about to commit with it. Validated with the shared zod schema, so a record the station
 * would sign is a record a service can parse.
 */
import { createHash } from 'node:crypto';
import { DeviceRecordPayloadSchema, type DeviceRecordPayload } from '../../core/device-record';
import { DatabaseError } from '../../core/errors';
import type { KeyOrigin } from '../../core/method-id';
import type { SqliteDb } from '../sqlite-database';

/** What a method learnt about the device, kept in its row and its record (contracts.md §3). */
export interface RecordFacts {
  seSerial?: string;
  chipId?: string;
  preparedKeyId?: string;
  manifestEntryId?: string;
}

export interface PayloadInput {
  serial: string;
  status: 'active' | 'void';
  voidReason?: string;
  /** Values the same transaction commits (the record stage); otherwise the row's. */
  keyOrigin?: KeyOrigin;
  publicKeySpki?: Buffer;
  dppUri?: string | null;
  facts?: RecordFacts;
  at?: Date;
}

interface Row {
  serial: string;
  work_order_id: string;
  model: string | null;
  method: string;
  key_origin: string | null;
  public_key_sha256: string | null;
  certificate_serial: string | null;
  dpp_uri: string | null;
  se_serial: string | null;
  chip_id: string | null;
  record_sequence: number;
  owner: string | null;
  der: Buffer | null;
}

export interface BuiltPayload {
  payload: DeviceRecordPayload;
  /** The device's record_sequence the payload follows (the write checks it is unchanged). */
  previousSequence: number;
}

export function buildDevicePayload(db: SqliteDb, stationId: string, input: PayloadInput): BuiltPayload {
  const row = db
    .prepare(
      `SELECT d.serial, d.work_order_id, d.model, d.method, d.key_origin, d.public_key_sha256, d.certificate_serial, d.dpp_uri, d.se_serial, d.chip_id, d.record_sequence,
              COALESCE(d.owner, w.owner) AS owner, c.der
         FROM devices d JOIN work_orders w ON w.id = d.work_order_id LEFT JOIN certificates c ON c.serial_hex = d.certificate_serial
        WHERE d.serial = ?`,
    )
    .get(input.serial) as Row | undefined;
  if (!row) throw new DatabaseError('DEVICE_UNKNOWN', `No device ${input.serial} in the database.`, { stage: 'record' });
  if (!row.der || !row.certificate_serial) throw new DatabaseError('RECORD_NO_CERTIFICATE', `Device ${input.serial} has no certificate; there is no record to sign.`, { stage: 'record' });
  const macs = (db.prepare('SELECT mac FROM device_macs WHERE serial = ? ORDER BY mac').all(input.serial) as { mac: string }[]).map((m) => m.mac);
  const publicKeySha256 = input.publicKeySpki ? createHash('sha256').update(input.publicKeySpki).digest('hex') : row.public_key_sha256;
  const candidate = {
    schema: 'device-record-v1',
    stationId,
    sequence: row.record_sequence + 1,
    serial: row.serial,
    workOrder: row.work_order_id,
    owner: row.owner,
    model: row.model,
    method: row.method,
    keyOrigin: input.keyOrigin ?? row.key_origin,
    macs,
    seSerial: input.facts?.seSerial ?? row.se_serial,
    chipId: (input.facts?.chipId ?? row.chip_id)?.toLowerCase() ?? null,
    publicKeySha256,
    idevid: row.der.toString('base64'),
    certificateSerial: row.certificate_serial.replace(/^0+(?=.)/, '').toLowerCase(),
    dppUri: input.dppUri ?? row.dpp_uri,
    status: input.status,
    voidReason: input.status === 'void' ? (input.voidReason ?? 'void') : null,
    recordedAt: (input.at ?? new Date()).toISOString(),
  };
  const parsed = DeviceRecordPayloadSchema.safeParse(candidate);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new DatabaseError('RECORD_INVALID', `The record of ${input.serial} cannot be built: ${why}.`, { stage: 'record' });
  }
  return { payload: parsed.data, previousSequence: row.record_sequence };
}
