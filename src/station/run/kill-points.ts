/**
 * Crash-safety testing (issue 9): the points at which a test may SIGKILL the station, generated
 * from the run model's stage list, so that a stage added to STAGES gets its kill points without
 * anyone remembering to add them.
 *
 * STATION_KILL_AT=<stage>:<start|end>[#N] makes the station kill itself (SIGKILL: no cleanup, no
 * flush, as a power cut would) the N-th time (default 1) a device reaches that point. `start` is
 * before the stage does anything; `end` is after it finished and before the next begins. Unset,
 * the hook costs one comparison per stage.
 */
import type { StageName } from '../../core/errors';
import { STAGES } from './stage-names';

export type KillPointWhen = 'start' | 'end';
export type KillPoint = `${StageName}:${KillPointWhen}`;

export function killPoints(stages: readonly StageName[] = STAGES): KillPoint[] {
  return stages.flatMap((s) => [`${s}:start`, `${s}:end`] as KillPoint[]);
}

interface ArmedKill {
  point: KillPoint;
  remaining: number;
}

function parse(spec: string | undefined): ArmedKill | undefined {
  if (!spec) return undefined;
  const m = /^([a-z-]+:(?:start|end))(?:#(\d+))?$/.exec(spec);
  if (!m || !(killPoints() as string[]).includes(m[1]!)) {
    throw new Error(`STATION_KILL_AT=${spec} is not a kill point; known: ${killPoints().join(', ')} (optionally #N)`);
  }
  return { point: m[1] as KillPoint, remaining: m[2] ? Number(m[2]) : 1 };
}

let armed: ArmedKill | undefined | null = null;

/** Called by the stage runner at each point; kills the process when the armed point is reached. */
export function reachKillPoint(stage: StageName, when: KillPointWhen): void {
  if (armed === null) armed = parse(process.env.STATION_KILL_AT);
  if (!armed || armed.point !== `${stage}:${when}`) return;
  armed.remaining--;
  if (armed.remaining === 0) process.kill(process.pid, 'SIGKILL');
}
