/**
 * `POST /api/v1/records` (docs/sync-api.md), the same on both services: every record gets its
 * own outcome; the batch is applied in one transaction, in the order received, before the answer.
 * An idempotency key is stored once: the same key again is `duplicate` when its canonical
 * payload is byte-equal, `conflict` otherwise. A device's records apply in sequence order, one
 * after the other (a gap is `rejected`); the newest one is the device's state (a void supersedes).
 */
import { canonicalJson, type JsonValue } from '../../core/canonical-json';
import { SignedDeviceRecordSchema, idempotencyKeyOf, type RecordBatchResponse, type RecordOutcome, type SignedDeviceRecord } from '../../core/device-record';
import type { SqlDatabase } from '../storage/sql-database';
import { ServiceRepository } from '../storage/service-repository';
import type { StationTrust } from './station-trust';

export const MAX_RECORDS_PER_BATCH = 1000;

/** The whole request is malformed (400): not `{ "records": [1..1000 items] }`. */
export class MalformedBatchError extends Error {}

type Checked =
  | { kind: 'invalid'; idempotencyKey: string; reason: string }
  | { kind: 'valid'; record: SignedDeviceRecord; canonical: string; problem: string | null };

function check(raw: unknown, trust: StationTrust): Checked {
  const keyOf = (v: unknown) => (v !== null && typeof v === 'object' && typeof (v as { idempotencyKey?: unknown }).idempotencyKey === 'string' ? (v as { idempotencyKey: string }).idempotencyKey : '');
  const parsed = SignedDeviceRecordSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { kind: 'invalid', idempotencyKey: keyOf(raw), reason: `schema: ${issue ? `${issue.path.join('.') || '(record)'}: ${issue.message}` : 'invalid'}` };
  }
  const record = parsed.data;
  const expected = idempotencyKeyOf(record.payload);
  if (record.idempotencyKey !== expected) return { kind: 'invalid', idempotencyKey: record.idempotencyKey, reason: `the idempotency key must be ${expected}` };
  return { kind: 'valid', record, canonical: canonicalJson(record.payload as unknown as JsonValue), problem: trust.recordProblem(record) };
}

export interface IngestOptions {
  db: SqlDatabase;
  trust: StationTrust;
  now?: () => Date;
}

export async function ingestRecordBatch(body: unknown, options: IngestOptions): Promise<RecordBatchResponse> {
  const records = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { records?: unknown }).records : undefined;
  if (!Array.isArray(records) || records.length < 1 || records.length > MAX_RECORDS_PER_BATCH) {
    throw new MalformedBatchError(`the body must be { "records": [...] } with 1 to ${MAX_RECORDS_PER_BATCH} records`);
  }
  if (Object.keys(body as object).some((k) => k !== 'records')) throw new MalformedBatchError('the body has members other than "records"');
  // Signatures are checked before the transaction: it holds the write lock only for the queries.
  const checked = records.map((raw) => check(raw, options.trust));
  const serials = checked.flatMap((c) => (c.kind === 'valid' ? [c.record.payload.serial] : []));
  const now = (options.now ?? (() => new Date()))().toISOString();

  const results = await options.db.transaction(async (tx) => {
    const repo = new ServiceRepository(tx);
    const out: RecordOutcome[] = [];
    for (const c of checked) {
      if (c.kind === 'invalid') {
        out.push({ idempotencyKey: c.idempotencyKey, status: 'rejected', reason: c.reason });
        continue;
      }
      const { record, canonical } = c;
      const key = record.idempotencyKey;
      const stored = await repo.storedPayload(key);
      if (stored !== undefined) {
        out.push(stored === canonical ? { idempotencyKey: key, status: 'duplicate' } : { idempotencyKey: key, status: 'conflict', reason: 'this idempotency key was stored with a different payload' });
        continue;
      }
      if (c.problem) {
        out.push({ idempotencyKey: key, status: 'rejected', reason: c.problem });
        continue;
      }
      const p = record.payload;
      const device = await repo.device(p.serial);
      const next = (device?.sequence ?? 0) + 1;
      if (p.sequence !== next) {
        out.push({
          idempotencyKey: key,
          status: 'rejected',
          reason: p.sequence < next ? `sequence ${p.sequence} of ${p.serial} is already applied (from another record)` : `sequence gap: ${p.serial} expects sequence ${next}, got ${p.sequence}`,
        });
        continue;
      }
      await repo.insertRecord(record, canonical, now);
      await repo.putDevice(p, canonical, now);
      await repo.appendAudit(
        p.serial,
        p.status === 'void' ? 'device-void' : 'record-stored',
        { idempotencyKey: key, stationId: p.stationId, sequence: p.sequence, status: p.status, ...(p.voidReason ? { voidReason: p.voidReason } : {}), workOrder: p.workOrder, owner: p.owner },
        now,
      );
      out.push({ idempotencyKey: key, status: 'stored' });
    }
    return out;
  }, serials);
  return { results };
}
