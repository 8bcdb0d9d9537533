/**
 * The station's record layer as the run sees it: builds a device's record from what the database
 * holds and what the stage commits, signs it with the station identity key (Signer port, the
 * HSM), and commits state change + signed record + audit event + outbox rows in one transaction
 * (SqliteRecordStore). Signing happens before the transaction (it waits on the HSM worker); the
 * write refuses a record whose sequence went stale meanwhile.
 *
 * Without a RecordSigner (no station identity, sync disabled) records are kept unsigned and
 * never queued. Without targets nothing is queued and every sync state is `disabled`.
 */
import { DatabaseError } from '../../core/errors';
import type { KeyOrigin } from '../../core/method-id';
import type { DeviceSyncState, SyncTargetName } from '../outbox/outbox-store';
import type { RecordWrite, SqliteRecordStore, StageResultRow } from '../sqlite-record-store';
import { buildDevicePayload, type PayloadInput, type RecordFacts } from './device-payload';
import type { RecordSigner } from './record-signer';
import { canonicalJson } from '../../core/canonical-json';

export interface DeviceSyncStates {
  masa: DeviceSyncState;
  supplyChain: DeviceSyncState;
}

/** What the record stage commits about a verified device (and its record is over). */
export interface VerifiedRecordInput {
  serial: string;
  keyOrigin: KeyOrigin;
  publicKeySpki: Buffer;
  dppUri: string;
  facts?: RecordFacts;
}

/** A verified device's record, built and signed, not yet stored (DeviceRecorder.prepareVerified). */
export interface PreparedVerifiedRecord {
  readonly input: VerifiedRecordInput;
  readonly write: RecordWrite;
}

function sameVerifiedInput(a: VerifiedRecordInput, b: VerifiedRecordInput): boolean {
  const fa = a.facts ?? {};
  const fb = b.facts ?? {};
  return (
    a.serial === b.serial &&
    a.keyOrigin === b.keyOrigin &&
    a.dppUri === b.dppUri &&
    a.publicKeySpki.equals(b.publicKeySpki) &&
    fa.seSerial === fb.seSerial &&
    fa.chipId === fb.chipId &&
    fa.preparedKeyId === fb.preparedKeyId &&
    fa.manifestEntryId === fb.manifestEntryId
  );
}

export class DeviceRecorder {
  constructor(
    readonly store: SqliteRecordStore,
    private readonly signer: RecordSigner | null,
    readonly targets: readonly SyncTargetName[],
  ) {}

  get signs(): boolean {
    return this.signer !== null;
  }

  private async prepare(input: PayloadInput): Promise<RecordWrite> {
    const built = buildDevicePayload(this.store.db, this.store.stationId, input);
    if (!this.signer) return { ...built, canonical: canonicalJson(built.payload), signature: null, targets: [] };
    const { canonical, signature } = await this.signer.sign(built.payload);
    return { ...built, canonical, signature, targets: this.targets };
  }

  /** The record stage. */
  async recordVerified(input: VerifiedRecordInput & { stages: StageResultRow[]; runId: string }): Promise<void> {
    const record = await this.prepareVerified(input);
    await this.commitVerified(record, input);
  }

  /**
   * The record of a device about to be verified, built and signed ahead (the run starts it as
   * the verify stage's requests go out, so the HSM's turn overlaps the device's). It is only a
   * value in memory: nothing is stored, queued or sent until commitVerified, which the run calls
   * once verify passed; a device that fails drops it.
   */
  prepareVerified(input: VerifiedRecordInput): Promise<PreparedVerifiedRecord> {
    const spki = Buffer.from(input.publicKeySpki);
    return this.prepare({ serial: input.serial, status: 'active', keyOrigin: input.keyOrigin, publicKeySpki: spki, dppUri: input.dppUri, facts: input.facts }).then((write) => ({
      input: { ...input, publicKeySpki: spki },
      write,
    }));
  }

  /**
   * Commits a prepared record with the device's row, stages, audit event and outbox rows (one
   * transaction, shared with the other writes of this turn: the promise settles once it is
   * durable). The record must be over what is recorded now: the same key, DPP URI, key origin
   * and facts, else it is refused (RECORD_INVALID) and nothing is written.
   */
  /** The prepared record is over exactly this input (commitVerified takes it). */
  isOver(prepared: PreparedVerifiedRecord, input: VerifiedRecordInput): boolean {
    return sameVerifiedInput(prepared.input, input);
  }

  async commitVerified(prepared: PreparedVerifiedRecord, input: VerifiedRecordInput & { stages: StageResultRow[]; runId: string }): Promise<void> {
    if (!sameVerifiedInput(prepared.input, input)) {
      throw new DatabaseError('RECORD_INVALID', `The record prepared for ${input.serial} is not over what is being recorded; not recorded.`, { stage: 'record' });
    }
    await this.store.committer.run('recording a verified device', () => this.store.recordVerified({ ...input, record: prepared.write }));
  }

  /**
   * The failure path: the device is marked failed; when it holds an issued certificate, that
   * certificate is voided and the signed void record is queued in the same transaction. If the
   * void record cannot be built or signed (HSM down), the device is still marked failed and the
   * certificate voided locally; the error is returned so the run can log it.
   */
  async markFailed(
    serial: string,
    runId: string,
    error: { code: string; message: string; stage: string | null },
    stages: StageResultRow[],
    disposition: 'rework' | 'scrap',
    context: { keyOrigin: KeyOrigin; dppUri: string | null },
  ): Promise<{ voidQueued: boolean; voidError?: unknown }> {
    let voidRecord: RecordWrite | undefined;
    let voidError: unknown;
    if (this.store.hasActiveCertificate(serial)) {
      try {
        voidRecord = await this.prepare({ serial, status: 'void', voidReason: `device failed: ${error.code}`, keyOrigin: context.keyOrigin, dppUri: context.dppUri });
      } catch (err) {
        voidError = err;
      }
    }
    this.store.markFailed(serial, runId, error, stages, disposition, voidRecord);
    return { voidQueued: voidRecord !== undefined && voidRecord.targets.length > 0, ...(voidError !== undefined ? { voidError } : {}) };
  }

  /** `station device retire`: void the certificate, queue the signed void record, audit who and why. */
  async retire(serial: string, reason: string, operator: string): Promise<{ certificateSerial: string; recordSequence: number | null; queuedFor: readonly SyncTargetName[] }> {
    const device = this.store.getDevice(serial);
    const record = device?.certificateStatus === 'active' ? await this.prepare({ serial, status: 'void', voidReason: `retired: ${reason}` }) : undefined;
    const r = this.store.retireDevice(serial, reason, operator, record);
    return { ...r, queuedFor: record?.signature ? record.targets : [] };
  }

  /** Per target: the device's sync state (`disabled` for a target that is not configured). */
  syncStates(serial: string): DeviceSyncStates {
    const state = (t: SyncTargetName): DeviceSyncState => (this.targets.includes(t) ? this.store.outbox.deviceState(serial, t) : 'disabled');
    return { masa: state('masa'), supplyChain: state('supply-chain') };
  }
}
