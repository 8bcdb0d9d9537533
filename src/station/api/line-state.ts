/**
 * The operator screen's state of the line: one tile per port and the shift's counts and
 * throughput, updated from the run's stage events and device reports. Pure (no I/O).
 */
import type { StageName } from '../../core/errors';
import type { FailureInfo, PortTile, ShiftStats } from '../contract/station-api';
import type { DeviceReport } from '../run/report';
import { STAGES, type StageEvent } from '../run/stages';
import { adviceFor } from './operator-advice';

export const SHIFT_BUCKET_MINUTES = 10;

function blankTile(port: string, index: number): PortTile {
  return { port, name: `Port ${index + 1}`, state: 'idle', serial: null, hardwareId: null, stage: null, stagesDone: 0, stagesTotal: STAGES.length, failure: null, label: null };
}

export function failureOf(error: NonNullable<DeviceReport['error']>): FailureInfo {
  const advice = adviceFor(error.code, error.stage);
  return { code: error.code, stage: error.stage, message: error.message, action: advice.action, retryable: advice.retryable };
}

export class LineState {
  private readonly tiles = new Map<string, PortTile>();
  private passed = 0;
  private failed = 0;
  private readonly buckets = new Map<number, { passed: number; failed: number }>();

  constructor(
    private readonly shiftStartedAt: Date,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The line's ports; a port that stays keeps its tile (a restarted simulator keeps its paths). */
  setPorts(ports: readonly string[]): PortTile[] {
    const before = new Map(this.tiles);
    this.tiles.clear();
    ports.forEach((p, i) => this.tiles.set(p, before.get(p) ?? blankTile(p, i)));
    return this.allTiles();
  }

  ports(): string[] {
    return [...this.tiles.keys()];
  }

  tile(port: string): PortTile | undefined {
    const t = this.tiles.get(port);
    return t ? { ...t } : undefined;
  }

  allTiles(): PortTile[] {
    return [...this.tiles.values()].map((t) => ({ ...t }));
  }

  /** A run is about to take a device on this port. */
  waiting(port: string): PortTile {
    return this.update(port, (t) => ({ ...t, state: 'running', serial: null, hardwareId: null, stage: null, stagesDone: 0, failure: null, label: null }));
  }

  /** The port took no device (the run ended first). */
  idle(port: string): PortTile {
    return this.update(port, (t) => ({ ...t, state: 'idle', stage: null, stagesDone: 0 }));
  }

  stage(e: StageEvent & { port: string; serial: string | null }): PortTile {
    return this.update(port(e), (t) => {
      // connect starting = the next device on this port
      const base = e.stage === 'connect' && e.status === 'started' ? { ...t, serial: null, hardwareId: null, stagesDone: 0, failure: null, label: null } : t;
      const done = e.status === 'ok' || e.status === 'skipped' ? STAGES.indexOf(e.stage) + 1 : base.stagesDone;
      return { ...base, state: 'running', serial: e.serial ?? base.serial, stage: e.stage as StageName, stagesDone: Math.max(base.stagesDone, done) };
    });
  }

  device(report: DeviceReport): PortTile {
    const at = this.now();
    const key = Math.floor(at.getTime() / (SHIFT_BUCKET_MINUTES * 60_000));
    const bucket = this.buckets.get(key) ?? { passed: 0, failed: 0 };
    if (report.status === 'passed') {
      this.passed++;
      bucket.passed++;
    } else {
      this.failed++;
      bucket.failed++;
    }
    this.buckets.set(key, bucket);
    return this.update(report.port, (t) => ({
      ...t,
      state: report.status,
      serial: report.serial,
      hardwareId: report.hardwareId,
      stage: report.status === 'passed' ? null : (report.error?.stage ?? t.stage),
      stagesDone: report.status === 'passed' ? t.stagesTotal : t.stagesDone,
      failure: report.status === 'failed' && report.error ? failureOf(report.error) : null,
      label: report.status === 'passed' ? (report.label.state === 'printed' ? 'printed' : 'pending') : null,
    }));
  }

  /** A label printed (or was left pending) after its device passed: the tile shows it while it still shows that device. */
  label(port: string, serial: string, state: 'printed' | 'pending'): PortTile | undefined {
    const t = this.tiles.get(port);
    if (!t || t.serial !== serial || t.state !== 'passed') return undefined;
    return this.update(port, (tile) => ({ ...tile, label: state }));
  }

  shift(): ShiftStats {
    const total = this.passed + this.failed;
    const first = Math.floor(this.shiftStartedAt.getTime() / (SHIFT_BUCKET_MINUTES * 60_000));
    const last = Math.floor(this.now().getTime() / (SHIFT_BUCKET_MINUTES * 60_000));
    const buckets = [];
    // the last 12 buckets (two hours) at most: the chart has a fixed width
    for (let k = Math.max(first, last - 11); k <= last; k++) {
      const b = this.buckets.get(k) ?? { passed: 0, failed: 0 };
      buckets.push({ at: new Date(k * SHIFT_BUCKET_MINUTES * 60_000).toISOString(), passed: b.passed, failed: b.failed });
    }
    return {
      startedAt: this.shiftStartedAt.toISOString(),
      passed: this.passed,
      failed: this.failed,
      yield: total === 0 ? null : this.passed / total,
      bucketMinutes: SHIFT_BUCKET_MINUTES,
      buckets,
    };
  }

  private update(p: string, fn: (t: PortTile) => PortTile): PortTile {
    const current = this.tiles.get(p) ?? blankTile(p, this.tiles.size);
    const next = fn(current);
    this.tiles.set(p, next);
    return { ...next };
  }
}

function port(e: { port: string }): string {
  return e.port;
}
