/**
 * `make demo`'s script (scripts/demo.sh), as the CI machine would run it, on 2 ports: every
 * device passes, every record is delivered to the MASA and the supply-chain service, the BRSKI
 * check on one device verifies, the report is valid; a second run continues the serial range;
 * no process the demo started is left behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { REPO, cleanEnv, testDir } from '../helpers/station-cli';

function demo(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(REPO, 'scripts/demo.sh'), out, '2', '2'], { cwd: REPO, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

function processesMentioning(text: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(text) && !l.includes('ps -eo'));
}

describe('make demo (scripts/demo.sh)', () => {
  it('provisions, syncs to both services, verifies a BRSKI voucher, continues serials on a second run, and stops what it started', async () => {
    const out = join(testDir('demo'), 'out');
    const first = await demo(out);
    expect(first.code, first.output).toBe(0);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.counts).toMatchObject({ total: 2, passed: 2, failed: 0 });
    for (const d of report.devices) expect(d.sync).toEqual({ masa: 'delivered', supplyChain: 'delivered' });
    const checked = report.devices.filter((d) => d.brski);
    expect(checked).toHaveLength(1);
    expect(checked[0]!.brski).toMatchObject({ voucher: 'verified' });
    expect(existsSync(join(out, checked[0]!.brski!.voucherPath!))).toBe(true);
    expect(first.output).toContain('brski=verified');

    const serials = report.devices.map((d) => d.serial!).sort();
    const second = await demo(out);
    expect(second.code, second.output).toBe(0);
    const again = validateReport(join(out, 'report.json')) as RunReport;
    const next = again.devices.map((d) => d.serial!).sort();
    expect(next[0]! > serials[serials.length - 1]!).toBe(true);

    await new Promise((r) => setTimeout(r, 300));
    expect(processesMentioning(out)).toEqual([]);
  }, 120_000);
});
