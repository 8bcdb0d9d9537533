/** The run model's stages, in order (style.md), and a runner that times each one. */
import { InterruptedError, asStationError, type StageName } from '../../core/errors';
import type { StageReport } from './report';

export const STAGES: readonly StageName[] = ['connect', 'identify', 'assign', 'obtain-key', 'issue', 'install', 'verify', 'record', 'lock', 'label', 'queue-sync'];

export class StageRecorder {
  readonly stages: StageReport[] = [];

  constructor(private readonly signal: AbortSignal) {}

  async run<T>(name: StageName, fn: () => Promise<T> | T): Promise<T> {
    if (this.signal.aborted) {
      // a new error per device: the abort reason is shared by every device of the run
      throw new InterruptedError('The run was interrupted before this stage.', { stage: name });
    }
    const start = performance.now();
    try {
      const value = await fn();
      this.stages.push({ name, status: 'ok', durationMs: round(performance.now() - start) });
      return value;
    } catch (err) {
      this.stages.push({ name, status: 'failed', durationMs: round(performance.now() - start) });
      throw asStationError(err, 'INTERNAL_ERROR', name);
    }
  }

  skip(name: StageName): void {
    this.stages.push({ name, status: 'skipped', durationMs: 0 });
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
