import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBenchArgs, runCli, UsageError } from '../../../src/bench/cli';
import { formatTable, isTargetMissed, runBench } from '../../../src/bench/runner';
import { median, medianRate, repeat } from '../../../src/bench/stats';
import type { BenchGroup, Figure } from '../../../src/bench/types';

function group(name: string, run: BenchGroup['run']): BenchGroup {
  return { name, description: `fake group ${name}`, run };
}

const fixed = (name: string, figures: Figure[]): BenchGroup => group(name, async () => figures);

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'bench-test-'));
  tmpDirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) }, out, err };
}

describe('median, repeat, medianRate', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('repeats in sequence and medianRate uses at least three repetitions', async () => {
    let active = 0;
    const seen = await repeat(4, async (i) => {
      active++;
      expect(active).toBe(1);
      await new Promise((r) => setTimeout(r, 1));
      active--;
      return i;
    });
    expect(seen).toEqual([0, 1, 2, 3]);
    const calls: number[] = [];
    const { rate, rates } = await medianRate(1, async (i) => {
      calls.push(i);
      return { count: [10, 30, 20][i]!, seconds: 1 };
    });
    expect(calls).toEqual([0, 1, 2]);
    expect(rates).toEqual([10, 30, 20]);
    expect(rate).toBe(20);
  });
});

describe('runBench', () => {
  it('writes only finite numbers to the JSON object and fails on a non-finite figure', async () => {
    const r = await runBench([
      fixed('a', [
        { name: 'a_rate_per_s', value: 123.5, unit: '/s' },
        { name: 'a_ratio', value: 0.25, unit: 'ratio' },
        { name: 'a_nan', value: Number.NaN, unit: '/s' },
        { name: 'a_inf', value: Number.POSITIVE_INFINITY, unit: '/s' },
      ]),
    ], { tmpRoot: tmp() });
    expect(r.json).toEqual({ a_rate_per_s: 123.5, a_ratio: 0.25 });
    for (const v of Object.values(JSON.parse(JSON.stringify(r.json)) as Record<string, unknown>)) {
      expect(typeof v === 'number' && Number.isFinite(v)).toBe(true);
    }
    expect(r.exitCode).toBe(1);
    expect(r.failures.map((f) => f.figure)).toEqual(['a_nan', 'a_inf']);
    expect(r.table).toMatch(/a_nan\s+n\/a.*FAILED/);
  });

  it('reports a group that throws as a failure and still runs the other groups', async () => {
    const r = await runBench([
      group('boom', async () => {
        throw Object.assign(new Error('token gone'), { code: 'HSM_TOKEN_ABSENT' });
      }),
      fixed('ok', [{ name: 'ok_per_s', value: 10, unit: '/s' }]),
    ], { tmpRoot: tmp() });
    expect(r.exitCode).not.toBe(0);
    expect(r.failures).toEqual([{ group: 'boom', message: 'HSM_TOKEN_ABSENT: token gone' }]);
    expect(r.json).toEqual({ ok_per_s: 10 });
    expect(r.table).toContain('FAILED boom: HSM_TOKEN_ABSENT: token gone');
  });

  it('flags a missed target without failing', async () => {
    const r = await runBench([
      fixed('t', [
        { name: 't_slow_per_s', value: 150, unit: '/s', target: { op: '>=', value: 200 } },
        { name: 't_fast_per_s', value: 250, unit: '/s', target: { op: '>=', value: 200 } },
        { name: 't_latency_ms', value: 12, unit: 'ms', target: { op: '<=', value: 10 } },
      ]),
    ], { tmpRoot: tmp() });
    expect(r.exitCode).toBe(0);
    expect(r.failures).toEqual([]);
    expect(r.figures.map((f) => [f.name, f.missed])).toEqual([
      ['t_slow_per_s', true],
      ['t_fast_per_s', false],
      ['t_latency_ms', true],
    ]);
    const lines = r.table.split('\n');
    expect(lines.find((l) => l.startsWith('t_slow_per_s'))).toMatch(/>= 200\s+MISSED$/);
    expect(lines.find((l) => l.startsWith('t_fast_per_s'))).not.toContain('MISSED');
    expect(lines.find((l) => l.startsWith('t_latency_ms'))).toMatch(/<= 10\s+MISSED$/);
    expect(r.json).toEqual({ t_slow_per_s: 150, t_fast_per_s: 250, t_latency_ms: 12 });
  });

  it('gives each group its own temporary data dir and removes it, also after a throw', async () => {
    const root = tmp();
    const dirs: string[] = [];
    const r = await runBench([
      group('one', async (ctx) => {
        dirs.push(ctx.dataDir);
        expect(existsSync(ctx.dataDir)).toBe(true);
        return [{ name: 'one_x', value: 1, unit: 'x' }];
      }),
      group('two', async (ctx) => {
        dirs.push(ctx.dataDir);
        throw new Error('no');
      }),
    ], { tmpRoot: root });
    expect(r.exitCode).toBe(1);
    expect(new Set(dirs).size).toBe(2);
    for (const d of dirs) {
      expect(d.startsWith(root)).toBe(true);
      expect(existsSync(d)).toBe(false);
    }
  });

  it('runs only the selected groups, and answers 2 with the group list for an unknown one', async () => {
    const groups = [fixed('a', [{ name: 'a_x', value: 1, unit: 'x' }]), fixed('b', [{ name: 'b_x', value: 2, unit: 'x' }])];
    const onlyB = await runBench(groups, { only: ['b'], tmpRoot: tmp() });
    expect(onlyB.json).toEqual({ b_x: 2 });
    const unknown = await runBench(groups, { only: ['b', 'nope'], tmpRoot: tmp() });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.table).toContain('unknown benchmark group "nope"; groups: a, b');
  });

  it('refuses a figure name reported twice', async () => {
    const r = await runBench([fixed('a', [{ name: 'dup', value: 1, unit: 'x' }]), fixed('b', [{ name: 'dup', value: 2, unit: 'x' }])], { tmpRoot: tmp() });
    expect(r.exitCode).toBe(1);
    expect(r.json).toEqual({ dup: 1 });
  });

  it('prints notes and environment lines above the table', () => {
    const table = formatTable(
      [{ group: 'g', name: 'g_x', value: 0.0123, unit: 'ratio', missed: false }],
      [],
      [{ group: 'g', label: 'openssl version', value: 'OpenSSL 3.0' }],
      [['node', 'v20']],
    );
    expect(table.indexOf('node')).toBeLessThan(table.indexOf('figure'));
    expect(table).toContain('g: openssl version  OpenSSL 3.0');
    expect(table).toMatch(/g_x\s+0\.0123\s+ratio/);
  });

  it('treats a NaN against a target as missed (and the NaN as a failure)', () => {
    expect(isTargetMissed({ name: 'x', value: Number.NaN, unit: '', target: { op: '>=', value: 1 } })).toBe(true);
    expect(isTargetMissed({ name: 'x', value: 1, unit: '' })).toBe(false);
  });
});

describe('bench CLI', () => {
  it('parses --only (repeatable and comma lists) and --json', () => {
    expect(parseBenchArgs(['--only', 'ca,link', '--only=sync', '--json', 'out.json'])).toEqual({ only: ['ca', 'link', 'sync'], json: 'out.json', list: false, help: false });
    expect(() => parseBenchArgs(['--only'])).toThrow(UsageError);
    expect(() => parseBenchArgs(['--bogus'])).toThrow(UsageError);
  });

  it('exits 0 with a missed target, writes the JSON file, and exits 1 when a group throws', async () => {
    const dir = tmp();
    const groups = [
      fixed('good', [{ name: 'good_per_s', value: 5, unit: '/s', target: { op: '>=', value: 10 } }]),
      group('bad', async () => {
        throw new Error('could not measure');
      }),
    ];
    const ok = captureIo();
    const jsonPath = join(dir, 'sub', 'bench.json');
    expect(await runCli(['node', 'cli.js', '--only', 'good', '--json', jsonPath], groups, ok.io)).toBe(0);
    expect(ok.out.join('')).toMatch(/good_per_s.*MISSED/);
    expect(JSON.parse(readFileSync(jsonPath, 'utf8'))).toEqual({ good_per_s: 5 });

    const failing = captureIo();
    expect(await runCli(['node', 'cli.js', '--json', jsonPath], groups, failing.io)).toBe(1);
    expect(failing.out.join('')).toContain('FAILED bad: could not measure');
    expect(JSON.parse(readFileSync(jsonPath, 'utf8'))).toEqual({ good_per_s: 5 });
  });

  it('exits 2 for an unknown group and lists the groups', async () => {
    const c = captureIo();
    expect(await runCli(['node', 'cli.js', '--only', 'nope'], [fixed('ca', [])], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/unknown benchmark group "nope".*\n[\s\S]*ca\s+fake group ca/);
    expect(c.out.join('')).toBe('');
  });
});
