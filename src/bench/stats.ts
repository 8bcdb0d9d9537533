/** Small measuring helpers shared by the groups. Every rate is the median of >= 3 repetitions. */
import { performance } from 'node:perf_hooks';

/** The default and minimum number of repetitions behind each rate (contracts.md §4). */
export const MIN_REPETITIONS = 3;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no values');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Run `fn` n times in sequence (never concurrently) and collect its results. */
export async function repeat<T>(n: number, fn: (i: number) => T | Promise<T>): Promise<T[]> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`repeat needs a positive count, got ${n}`);
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn(i));
  return out;
}

/** Wall time of `fn` in seconds, with its result. */
export async function timed<T>(fn: () => T | Promise<T>): Promise<{ seconds: number; result: T }> {
  const t0 = performance.now();
  const result = await fn();
  return { seconds: (performance.now() - t0) / 1000, result };
}

/** Median over `reps` repetitions of (count / seconds) for a measured operation. */
export async function medianRate(reps: number, once: (i: number) => Promise<{ count: number; seconds: number }>): Promise<{ rate: number; rates: number[] }> {
  const rates = (await repeat(Math.max(reps, MIN_REPETITIONS), once)).map(({ count, seconds }) => count / seconds);
  return { rate: median(rates), rates };
}
