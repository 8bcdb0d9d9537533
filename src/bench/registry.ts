/**
 * The benchmark groups `npm run bench` knows, in the order they run. A group is
 * `{ name, description, run(ctx) -> Figure[] }` (types.ts); add new groups here.
 */
import { caGroup } from './groups/ca-group';
import { labelsGroup } from './groups/labels-group';
import { lineGroup } from './groups/line-group';
import { linkGroup } from './groups/link-group';
import { syncGroup } from './groups/sync-group';
import type { BenchGroup } from './types';

export type { BenchContext, BenchGroup, Figure, FigureTarget } from './types';
export { median, repeat, medianRate, timed, MIN_REPETITIONS } from './stats';

export const BENCH_GROUPS: readonly BenchGroup[] = [linkGroup, caGroup, labelsGroup, syncGroup, lineGroup];

export function groupNames(groups: readonly BenchGroup[] = BENCH_GROUPS): string[] {
  return groups.map((g) => g.name);
}
