/**
 * A passed device's label as a job of the run's label queue, and what its end writes back: the
 * device report's label state, label files and `label` stage (placed before `queue-sync`, so the
 * report keeps the run model's order), the `label` stage events (they now come after the
 * device's PASS), and the stage's kill points (crash-safety tests: `label:start` fires when the
 * job starts, `label:end` after it printed).
 */
import type { Logger } from '../../core/logger';
import { reachKillPoint } from '../run/kill-points';
import type { DeviceReport, StageReport } from '../run/report';
import type { StageEvent } from '../run/stages';
import type { LabelJob, LabelJobResult } from './label-queue';

/** The report's label while its job waits in the queue (replaced when the job ends). */
export const QUEUED_LABEL: DeviceReport['label'] = { state: 'pending', reason: 'LABEL_QUEUED: the label is waiting for the printer.' };

export interface DeviceLabelJobOptions {
  serial: string;
  port: string;
  report: DeviceReport;
  onStage?: (event: StageEvent & { port: string; serial: string | null }) => void;
  /** The device's logger (port, serial). */
  log: Logger;
}

export function deviceLabelJob(o: DeviceLabelJobOptions): LabelJob {
  o.report.label = QUEUED_LABEL;
  return {
    serial: o.serial,
    onStart: () => {
      o.onStage?.({ stage: 'label', status: 'started', port: o.port, serial: o.serial });
      reachKillPoint('label', 'start');
    },
    onEnd: (r: LabelJobResult) => {
      const printed = r.outcome.state === 'printed';
      if (printed && r.started) reachKillPoint('label', 'end');
      if (r.files.png) o.report.labelPngPath = r.files.png;
      if (r.files.zpl) o.report.labelZplPath = r.files.zpl;
      o.report.label = printed ? { state: 'printed' } : { state: 'pending', reason: r.outcome.reason ?? 'LABEL_FAILED: the label was not printed.' };
      const stage: StageReport = { name: 'label', status: printed ? 'ok' : 'failed', durationMs: Math.round(r.durationMs * 100) / 100 };
      insertInRunOrder(o.report.stages, stage);
      if (!printed) o.log.warn({ code: r.outcome.errorCode ?? 'LABEL_FAILED', reason: r.outcome.errorMessage ?? r.outcome.reason }, 'label not printed; the device stays passed with its label pending');
      o.onStage?.({ stage: 'label', status: stage.status, durationMs: stage.durationMs, port: o.port, serial: o.serial });
    },
  };
}

/** The label stage goes before queue-sync when that stage already ended (the usual case). */
function insertInRunOrder(stages: StageReport[], label: StageReport): void {
  const at = stages.findIndex((s) => s.name === 'queue-sync');
  if (at < 0) stages.push(label);
  else stages.splice(at, 0, label);
}
