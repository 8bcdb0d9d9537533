/** The line group's arithmetic (src/bench/groups/line-group.ts): the overhead formula and the percentile. */
import { describe, expect, it } from 'vitest';
import { createLineGroup, deviceOverheadMs, percentile } from '../../../src/bench/groups/line-group';
import { BENCH_GROUPS } from '../../../src/bench/registry';

describe('line group', () => {
  it('subtracts the device wait and the wire time of the reply bytes after each first read, not the request bytes', () => {
    const d = { port: 'p', passed: true, error: null, wallMs: 500, deviceWaitMs: 250, bytesSent: 2000, bytesReceived: 2500, firstReadBytes: 580, framesSent: 15, reads: 40, indexOnPort: 0 };
    // (2500 - 580) bytes x 10 bits / 115200 baud = 166.67 ms on the wire
    expect(deviceOverheadMs(d, 115200)).toBeCloseTo(500 - 250 - 166.6667, 3);
  });

  it('takes the nearest-rank percentile', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(xs, 0.5)).toBe(50);
    expect(percentile(xs, 0.99)).toBe(99);
    expect(percentile([7], 0.99)).toBe(7);
    expect(() => percentile([], 0.5)).toThrow(RangeError);
  });

  it('is registered as group line', () => {
    expect(BENCH_GROUPS.map((g) => g.name)).toContain('line');
    expect(createLineGroup().name).toBe('line');
  });
});
