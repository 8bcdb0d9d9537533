/**
 * The batch CLI, complete (contracts.md §2): --help on every command, --until-empty, and
 * --resume after the station was killed mid-run (SIGKILL: no cleanup, as a power cut).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { REPO, STATION_BIN, cleanEnv, runStation, testDir } from '../helpers/station-cli';

describe('station batch CLI, complete', () => {
  it('answers --help on every command and subcommand (exit 0, a usage line and a description)', async () => {
    // one process walks the whole command tree in-process (a process per command would take a minute)
    const walker = `
      const { main } = require(${JSON.stringify(join(REPO, 'dist/station/cli/main.js'))});
      process.on('unhandledRejection', () => undefined);
      const realWrite = process.stdout.write.bind(process.stdout);
      const results = {};
      const queue = [[]];
      (async () => {
        while (queue.length) {
          const path = queue.shift();
          let text = '';
          let code = null;
          process.stdout.write = (c) => ((text += c), true);
          process.exit = (c) => { if (code === null) code = c ?? 0; throw new Error('exit'); };
          try { main(['node', 'station', ...path, '--help']); } catch {}
          await new Promise((r) => setImmediate(r));
          results[path.join(' ')] = { code, text };
          const section = text.split(/^Commands:$/m)[1] || '';
          for (const line of section.split('\\n')) {
            const m = /^ {2}([a-z][a-z0-9-]*)/.exec(line);
            if (m && m[1] !== 'help') queue.push([...path, m[1]]);
          }
        }
        process.stdout.write = realWrite;
        realWrite(JSON.stringify(results));
        process.exitCode = 0;
      })();
    `;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['-e', walker], { cwd: REPO, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as Record<string, { code: number | null; text: string }>;
    for (const [path, h] of Object.entries(results)) {
      expect(h.code, `station ${path} --help`).toBe(0);
      expect(h.text, `station ${path} --help`).toMatch(new RegExp(`^Usage: station${path ? ` ${path}` : ''} `));
    }
    for (const required of ['batch', 'pki init', 'label print', 'label reprint', 'ports', 'gui', 'user add', 'user passwd', 'user unlock']) expect(Object.keys(results)).toContain(required);
    expect(Object.keys(results).length).toBeGreaterThan(20);
  });

  it('--until-empty keeps taking devices until the ports are empty; an empty port is not a failed device', async () => {
    const out = testDir('until-empty');
    // port 1 has no device that answers (silent): it is empty from the start
    const r = await runStation(['batch', '--simulate', '2', '--sim-faults', '1=silent', '--until-empty', '--count', '3', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    // the empty port is not in the report; the other port took the devices (a turn the empty
    // port gave back after its probe is taken only by a port still running)
    expect(report.counts.failed).toBe(0);
    expect(report.counts.passed).toBe(report.counts.total);
    expect(report.counts.total).toBeGreaterThanOrEqual(2);
    expect(new Set(report.devices.map((d) => d.port)).size).toBe(1);
    expect(report.devices[0]!.port).toMatch(/port0$/);
  });

  it('--resume continues a run killed mid-device: the device left half-way is reconciled, the run keeps its id, the report lists every device', async () => {
    const out = testDir('resume');
    // every device takes 2.5 s to lock, so the kill lands in the middle of the second one
    const child = spawn(process.execPath, [STATION_BIN, 'batch', '--simulate', '1', '--sim-faults', '0=delay:LOCK:2500', '--count', '3', '--out', out], { cwd: REPO, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const firstPassed = new Promise<void>((resolve) =>
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/\[1\/3\] \S+ on .*: PASSED/.test(stderr)) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal === 'SIGKILL' ? -9 : code)));
    await Promise.race([firstPassed, exited.then(() => { throw new Error(`the batch ended before its first device: ${stderr}`); })]);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    child.kill('SIGKILL');
    expect(await exited).toBe(-9);

    const resumed = await runStation(['batch', '--simulate', '1', '--count', '3', '--resume', '--out', out]);
    expect(resumed.code, resumed.stderr).toBe(1); // the device the kill interrupted failed
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.devices.map((d) => d.status)).toEqual(['passed', 'failed', 'passed']);
    const crashed = report.devices[1]!;
    expect(crashed.error).toMatchObject({ code: 'RUN_CRASHED' });
    expect(crashed.disposition).toBe('rework');
    expect(report.devices[0]!.serial).toBe('DEMO-000001');
    expect(report.devices[2]!.serial).toBe('DEMO-000003'); // a serial is never given twice

    const again = await runStation(['batch', '--simulate', '1', '--count', '3', '--resume', report.runId, '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('RUN_FINISHED');
    const audit = await runStation(['--data-dir', join(out, 'data'), 'audit', 'verify']);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  });
});
