/**
 * `station batch --resume [RUN]`: continue a run that a crash (or a kill) left unfinished, where
 * the database says it stopped.
 *
 * - RUN is a run id; without it, the newest unfinished run of this station. A finished run is
 *   refused (RUN_FINISHED), and so is a --work-order other than the run's.
 * - At start (after the issuance intents are resolved, as every run does), each device of the run
 *   still mid-run (assigned, issued or verified: never locked as far as the database knows) is
 *   marked failed with RUN_CRASHED and disposition rework through the recorder, so an issued
 *   certificate is voided and the void queued like any failure. Such a device may be locked on
 *   the device side already (a crash between LOCK and the record): rework decides.
 * - The run keeps its id; `--count N` is the run's total, so the resumed part provisions N minus
 *   the devices the run already has. report.json is rewritten with every device of the run: the
 *   earlier ones rebuilt from the database, then the new ones.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ConfigError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { KeyOrigin } from '../../core/method-id';
import type { DeviceRecorder } from '../../manufacturer-db/records/device-recorder';
import { inTransaction, openDatabase } from '../../manufacturer-db/sqlite-database';
import type { DeviceRecord, SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import { blankDeviceReport, type DeviceReport, type StageReport } from './report';

export const RUN_CRASHED = 'RUN_CRASHED';

export interface ResumeTarget {
  runId: string;
  workOrderId: string;
}

interface RunRow {
  id: string;
  work_order_id: string;
  finished_at: string | null;
}

/**
 * The run `--resume [RUN]` continues, and its work order (checked against --work-order).
 * `resume` is commander's value: true for a bare --resume, a run id, or undefined.
 */
export function resolveResume(dbPath: string, stationId: string, resume: string | boolean | undefined, workOrderId: string | undefined): { workOrderId: string | undefined; resume: ResumeTarget | undefined } {
  if (resume === undefined || resume === false) return { workOrderId, resume: undefined };
  if (!existsSync(dbPath)) throw new ConfigError('NOTHING_TO_RESUME', `No station database at ${dbPath}: there is no run to resume. Pass the crashed run's --out or --data-dir.`);
  const db = openDatabase(dbPath);
  let row: RunRow | undefined;
  try {
    row =
      typeof resume === 'string'
        ? (db.prepare('SELECT id, work_order_id, finished_at FROM runs WHERE id = ? AND station_id = ?').get(resume, stationId) as RunRow | undefined)
        : (db.prepare('SELECT id, work_order_id, finished_at FROM runs WHERE station_id = ? AND finished_at IS NULL ORDER BY started_at DESC, rowid DESC LIMIT 1').get(stationId) as RunRow | undefined);
  } finally {
    db.close();
  }
  if (!row) throw new ConfigError('NOTHING_TO_RESUME', typeof resume === 'string' ? `No run ${resume} of station ${stationId} in the database.` : `No unfinished run of station ${stationId} in the database: nothing to resume.`);
  if (row.finished_at) throw new ConfigError('RUN_FINISHED', `Run ${row.id} finished at ${row.finished_at}; start a new run instead of resuming it.`);
  if (workOrderId && workOrderId !== row.work_order_id) {
    throw new ConfigError('RESUME_WORK_ORDER_MISMATCH', `Run ${row.id} belongs to work order ${row.work_order_id}, not ${workOrderId}. Resume it without --work-order.`);
  }
  return { workOrderId: row.work_order_id, resume: { runId: row.id, workOrderId: row.work_order_id } };
}

function stagesOf(store: SqliteRecordStore, serial: string, runId: string): StageReport[] {
  return store.db.prepare('SELECT name, status, duration_ms AS durationMs FROM device_stages WHERE serial = ? AND run_id = ? ORDER BY rowid').all(serial, runId) as StageReport[];
}

function fileIfExists(outDir: string, ...parts: string[]): string | null {
  const path = join(outDir, ...parts);
  return existsSync(path) ? relative(outDir, path) : null;
}

/** A device of the run as its report entry, from the committed record. */
export function reportFromRecord(d: DeviceRecord, stages: StageReport[], outDir: string): DeviceReport {
  const passed = d.status === 'passed';
  return {
    ...blankDeviceReport(d.port ?? 'unknown', d.method),
    serial: d.serial,
    status: passed ? 'passed' : 'failed',
    hardwareId: d.hardwareId,
    macs: d.macs,
    keyOrigin: d.keyOrigin,
    certificatePath: d.certificateDer ? fileIfExists(outDir, 'certs', `${d.serial}.pem`) : null,
    chainPath: d.certificateDer ? fileIfExists(outDir, 'certs', 'idevid-chain.pem') : null,
    dppUri: d.dppUri,
    labelPngPath: fileIfExists(outDir, 'labels', `${d.serial}.png`),
    labelZplPath: fileIfExists(outDir, 'labels', `${d.serial}.zpl`),
    label: passed ? (d.labelState === 'printed' ? { state: 'printed' } : { state: 'pending', reason: d.labelReason ?? 'not printed before the stop' }) : { state: 'pending', reason: 'device failed' },
    error: d.error ? { code: d.error.code, message: d.error.message, stage: (d.error.stage as DeviceReport['stages'][number]['name'] | null) ?? null } : null,
    ...(d.disposition ? { disposition: d.disposition } : {}),
    // A device a stop left half-way has no stage rows (they are written with the record or the
    // failure; a reconciler at start may fail it without any): its failed stage stands for them.
    stages: stages.length > 0 ? stages : [{ name: (d.error?.stage as StageReport['name'] | undefined) ?? 'connect', status: passed ? 'ok' : 'failed', durationMs: 0 }],
  };
}

/**
 * Reconciles the devices the crash left mid-run and returns the run's devices so far, as report
 * entries (oldest first). Audited as `run.resumed`.
 */
export async function resumeRun(opts: { store: SqliteRecordStore; recorder: DeviceRecorder; runId: string; keyOrigin: KeyOrigin; outDir: string; log: Logger }): Promise<DeviceReport[]> {
  const { store, runId, log } = opts;
  const serials = (store.db.prepare('SELECT serial, status FROM devices WHERE run_id = ? ORDER BY created_at, serial').all(runId) as { serial: string; status: string }[]);
  const reconciled: string[] = [];
  for (const d of serials) {
    if (d.status !== 'assigned' && d.status !== 'issued' && d.status !== 'verified') continue;
    const record = store.getDevice(d.serial)!;
    const message =
      `The station stopped while provisioning this device (it was ${d.status}); the resumed run did not finish it. ` +
      'Put it in the rework tray: it is provisioned again under a new serial.';
    const stage = d.status === 'assigned' ? 'obtain-key' : d.status === 'issued' ? 'install' : 'lock';
    // The stop left no stage rows (they are written with the record or the failure): the
    // report names the stage the database says the device was in, as failed.
    const known = stagesOf(store, d.serial, runId);
    const stages: StageReport[] = known.length > 0 ? known : [{ name: stage, status: 'failed', durationMs: 0 }];
    await opts.recorder.markFailed(d.serial, runId, { code: RUN_CRASHED, message, stage }, stages, 'rework', {
      keyOrigin: record.keyOrigin ?? opts.keyOrigin,
      dppUri: record.dppUri,
    });
    reconciled.push(d.serial);
    log.warn({ serial: d.serial, code: RUN_CRASHED, was: d.status }, 'a device left mid-run by the stop is marked failed (rework)');
  }
  inTransaction(store.db, 'recording the resumed run', () => store.audit.append({ type: 'run.resumed', serial: null, data: { runId, devicesSoFar: serials.length, reconciled } }));
  return serials.map((d) => reportFromRecord(store.getDevice(d.serial)!, stagesOf(store, d.serial, runId), opts.outDir));
}
