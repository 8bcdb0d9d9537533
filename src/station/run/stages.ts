/** The run model's stages, in order (style.md), and a runner that times each one. */
import { InterruptedError, asStationError, type StageName } from '../../core/errors';
import type { StageReport } from './report';
import { reachKillPoint } from './kill-points';

export { STAGES } from './stage-names';

/** A stage starting (`started`) or ending (its status and duration). */
export interface StageEvent {
  stage: StageName;
  status: 'started' | StageReport['status'];
  durationMs?: number;
}

export class StageRecorder {
  readonly stages: StageReport[] = [];

  constructor(
    private readonly signal: AbortSignal,
    private readonly onEvent?: (event: StageEvent) => void,
  ) {}

  private push(report: StageReport): void {
    this.stages.push(report);
    this.onEvent?.({ stage: report.name, status: report.status, durationMs: report.durationMs });
  }

  async run<T>(name: StageName, fn: () => Promise<T> | T): Promise<T> {
    if (this.signal.aborted) {
      // a new error per device: the abort reason is shared by every device of the run
      throw new InterruptedError('The run was interrupted before this stage.', { stage: name });
    }
    this.onEvent?.({ stage: name, status: 'started' });
    reachKillPoint(name, 'start');
    const start = performance.now();
    try {
      const value = await fn();
      reachKillPoint(name, 'end');
      this.push({ name, status: 'ok', durationMs: round(performance.now() - start) });
      return value;
    } catch (err) {
      this.push({ name, status: 'failed', durationMs: round(performance.now() - start) });
      throw asStationError(err, 'INTERNAL_ERROR', name);
    }
  }

  skip(name: StageName): void {
    reachKillPoint(name, 'start');
    reachKillPoint(name, 'end');
    this.push({ name, status: 'skipped', durationMs: 0 });
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
