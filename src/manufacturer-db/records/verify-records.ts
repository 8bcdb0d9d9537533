/**
 * `station audit verify` also checks the signed device records: each payload is stored as its
 * canonical JSON, its idempotency key and sequence match it, and its signature verifies with the
 * station certificate stored beside it. Unsigned records (no station identity) are counted, not
 * failed. Names the first bad record.
 */
import { canonicalJson, type JsonValue } from '../../core/canonical-json';
import type { DeviceRecordPayload } from '../../core/device-record';
import type { SqliteDb } from '../sqlite-database';
import { verifyRecordSignature } from './record-signer';

export interface RecordsVerifyResult {
  ok: boolean;
  records: number;
  unsigned: number;
  firstBad?: { id: number; serial: string; sequence: number; reason: string };
}

export function verifyDeviceRecords(db: SqliteDb): RecordsVerifyResult {
  let records = 0;
  let unsigned = 0;
  const rows = db.prepare('SELECT id, serial, sequence, idempotency_key, payload, signature, station_certificate FROM device_records ORDER BY id').iterate() as IterableIterator<{
    id: number;
    serial: string;
    sequence: number;
    idempotency_key: string;
    payload: string;
    signature: string | null;
    station_certificate: string | null;
  }>;
  for (const r of rows) {
    records++;
    const bad = (reason: string): RecordsVerifyResult => ({ ok: false, records, unsigned, firstBad: { id: r.id, serial: r.serial, sequence: r.sequence, reason } });
    let payload: DeviceRecordPayload;
    try {
      payload = JSON.parse(r.payload) as DeviceRecordPayload;
    } catch {
      return bad('the payload is not JSON');
    }
    if (canonicalJson(payload as unknown as JsonValue) !== r.payload) return bad('the payload is not stored as canonical JSON (it was edited)');
    if (payload.serial !== r.serial || payload.sequence !== r.sequence || `${payload.stationId}:${payload.serial}:${payload.sequence}` !== r.idempotency_key) {
      return bad('the payload does not match its serial, sequence or idempotency key');
    }
    if (r.signature === null || r.station_certificate === null) {
      unsigned++;
      continue;
    }
    let ok = false;
    try {
      ok = verifyRecordSignature({ payload, signature: { alg: 'ES256', stationCertificate: r.station_certificate, value: r.signature } });
    } catch {
      ok = false;
    }
    if (!ok) return bad('the signature does not verify with the station certificate (the record was changed after it was signed)');
  }
  return { ok: true, records, unsigned };
}
