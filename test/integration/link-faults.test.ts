/**
 * Link-level and firmware faults of the simulator (docs/simulator.md), end to end through the
 * built CLI: `station batch --simulate N --sim-faults ...`. Every fault ends in a typed,
 * operator-readable failure of its device alone (code, stage, a message naming the port and,
 * for link faults, the command); the healthy ports pass in the same run. Timeouts are the
 * defaults: 3 s per command, 15 s for key generation, CSR and challenge.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DeviceReport, RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';

/** Port index -> fault spec, and what the station must make of it. */
const CASES: Array<{ fault: string; code: string | null; stage: string | null; command?: string; names?: 'serial' | 'nothing' }> = [
  { fault: 'drop:GET_CSR', code: 'DEVICE_TIMEOUT', stage: 'obtain-key', command: 'GET_CSR' },
  { fault: 'corrupt:INSTALL_CHAIN', code: 'DEVICE_TIMEOUT', stage: 'install', command: 'INSTALL_CHAIN' },
  { fault: 'delay:IDENTIFY:4000', code: 'DEVICE_TIMEOUT', stage: 'identify', command: 'IDENTIFY' },
  { fault: 'disconnect:INSTALL_CHAIN', code: 'TRANSPORT_DISCONNECTED', stage: 'install' },
  { fault: 'wrong-seq:IDENTIFY', code: 'DEVICE_TIMEOUT', stage: 'identify', command: 'IDENTIFY' },
  { fault: 'slow-se:16000', code: 'DEVICE_TIMEOUT', stage: 'obtain-key', command: 'GENERATE_KEY' },
  { fault: 'silent', code: 'DEVICE_TIMEOUT', stage: 'connect', command: 'HELLO' },
  // the CA's messages are about the request, not the port (the report entry names both)
  { fault: 'csr-bad-signature', code: 'CSR_SIGNATURE_INVALID', stage: 'obtain-key', names: 'nothing' },
  { fault: 'csr-wrong-serial', code: 'CSR_SERIAL_MISMATCH', stage: 'obtain-key', names: 'serial' },
  { fault: 'challenge-wrong-key', code: 'CHALLENGE_FAILED', stage: 'verify' },
  // challenged before install (docs/device-protocol.md §4), its key is read again after it
  { fault: 'rekey-on-install', code: 'DEVICE_KEY_CHANGED', stage: 'verify' },
  { fault: 'readback-corrupt', code: 'READBACK_MISMATCH', stage: 'verify' },
  { fault: 'lock-refused', code: 'DEVICE_INTERNAL_ERROR', stage: 'lock', command: 'LOCK' },
  // within the timeouts: slower, but the device passes
  { fault: 'delay:IDENTIFY:1000', code: null, stage: null },
  { fault: 'slow-se:2000', code: null, stage: null },
  // several faults on one port, joined with + (the old syntax): the first that bites wins
  { fault: 'delay:HELLO:200+readback-corrupt', code: 'READBACK_MISMATCH', stage: 'verify' },
  // no fault
  { fault: '', code: null, stage: null },
];

function byPort(report: RunReport, i: number): DeviceReport {
  const d = report.devices.find((x) => x.port.endsWith(`/port${i}`));
  if (!d) throw new Error(`no device on port ${i}`);
  return d;
}

/** Timers and stage clocks differ by a few ms. */
const SLACK_MS = 50;

function stageMs(d: DeviceReport, name: string): number {
  return d.stages.find((s) => s.name === name)?.durationMs ?? NaN;
}

describe('station batch with link faults on some ports', () => {
  let out: string;
  let report: RunReport;
  let code: number | null;
  let stderr: string;

  beforeAll(async () => {
    out = testDir('link-faults');
    const spec = CASES.map((c, i) => (c.fault ? `${i}=${c.fault}` : '')).filter(Boolean).join(',');
    const r = await runStation(['batch', '--simulate', String(CASES.length), '--out', out, '--sim-faults', spec]);
    code = r.code;
    stderr = r.stderr;
    report = validateReport(join(out, 'report.json')) as RunReport;
  }, 120_000);

  it('reports every port once, fails the faulty devices only, and exits 1', () => {
    expect(code).toBe(1);
    const passing = CASES.filter((c) => c.code === null).length;
    expect(report.counts).toMatchObject({ total: CASES.length, passed: passing, failed: CASES.length - passing });
    expect(new Set(report.devices.map((d) => d.port)).size).toBe(CASES.length);
  });

  for (const [i, c] of CASES.entries()) {
    const title = c.fault || '(no fault)';
    if (c.code === null) {
      it(`${title}: the device passes`, () => {
        const d = byPort(report, i);
        expect(d.error).toBeNull();
        expect(d.status).toBe('passed');
        expect(d.certificatePath).not.toBeNull();
      });
    } else {
      it(`${title}: ${c.code} at ${c.stage}`, () => {
        const d = byPort(report, i);
        expect(d.status).toBe('failed');
        expect(d.error).toMatchObject({ code: c.code, stage: c.stage });
        // operator-readable: names the port (and the command that went unanswered)
        expect(d.error!.message.length).toBeGreaterThan(20);
        if (c.names === undefined) expect(d.error!.message).toContain(d.port);
        if (c.names === 'serial') expect(d.error!.message).toContain(d.serial);
        if (c.command) expect(d.error!.message).toContain(c.command);
        expect(d.stages.find((s) => s.name === c.stage)?.status).toBe('failed');
        // a device that got a serial is kept for rework
        if (d.serial) expect(d.disposition).toBe('rework');
        expect(stderr).toContain(`${c.code} at ${c.stage}`);
      });
    }
  }

  it('a delay inside the command timeout only slows the device down', () => {
    const delayed = byPort(report, CASES.findIndex((c) => c.fault === 'delay:IDENTIFY:1000'));
    expect(stageMs(delayed, 'identify')).toBeGreaterThanOrEqual(1000 - SLACK_MS);
    expect(stageMs(delayed, 'identify')).toBeLessThan(3000);
    const slowSe = byPort(report, CASES.findIndex((c) => c.fault === 'slow-se:2000'));
    // GENERATE_KEY and GET_CSR, then SIGN_CHALLENGE: 2 s more each. The challenge goes out right
    // after GET_CSR (docs/device-protocol.md §4): the station issues meanwhile, and the install's
    // first request waits behind it, so its 2 s fall in issue + install, before verify checks it.
    expect(stageMs(slowSe, 'obtain-key')).toBeGreaterThanOrEqual(4000 - SLACK_MS);
    expect(stageMs(slowSe, 'issue') + stageMs(slowSe, 'install') + stageMs(slowSe, 'verify')).toBeGreaterThanOrEqual(2000 - SLACK_MS);
  });

  it('timeouts are the configured ones: 3 s per command, 15 s for key generation', () => {
    const identify = byPort(report, CASES.findIndex((c) => c.fault === 'delay:IDENTIFY:4000'));
    expect(stageMs(identify, 'identify')).toBeGreaterThanOrEqual(3000 - SLACK_MS);
    expect(stageMs(identify, 'identify')).toBeLessThan(4000);
    const keygen = byPort(report, CASES.findIndex((c) => c.fault === 'slow-se:16000'));
    expect(stageMs(keygen, 'obtain-key')).toBeGreaterThanOrEqual(15000 - SLACK_MS);
  });

  it('a device that goes away fails at once, not after a timeout', () => {
    const gone = byPort(report, CASES.findIndex((c) => c.fault === 'disconnect:INSTALL_CHAIN'));
    expect(stageMs(gone, 'install')).toBeLessThan(2000);
    expect(gone.error!.message).toMatch(/went away \(disconnected\)/);
  });
});

describe('a port whose device goes away', () => {
  it('is taken out of the run; the other port provisions the rest of the batch', async () => {
    const out = testDir('link-disconnect');
    const r = await runStation(['batch', '--simulate', '2', '--count', '4', '--out', out, '--sim-faults', '0=disconnect:GET_CSR']);
    expect(r.code).toBe(1);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.counts).toMatchObject({ total: 4, passed: 3, failed: 1 });
    const gone = report.devices.filter((d) => d.port.endsWith('/port0'));
    expect(gone).toHaveLength(1);
    expect(gone[0]!.error).toMatchObject({ code: 'TRANSPORT_DISCONNECTED', stage: 'obtain-key' });
    expect(report.devices.filter((d) => d.port.endsWith('/port1')).map((d) => d.status)).toEqual(['passed', 'passed', 'passed']);
  });
});

describe('a port whose devices time out after HELLO', () => {
  it('goes on to the next device, which fails the same way', async () => {
    const out = testDir('link-refail');
    const r = await runStation(['batch', '--simulate', '1', '--count', '2', '--out', out, '--sim-faults', '0=wrong-seq:INSTALL_CHAIN']);
    expect(r.code).toBe(1);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.devices.map((d) => [d.error?.code, d.error?.stage])).toEqual([
      ['DEVICE_TIMEOUT', 'install'],
      ['DEVICE_TIMEOUT', 'install'],
    ]);
    expect(new Set(report.devices.map((d) => d.hardwareId)).size).toBe(2);
  });
});

describe('a bad fault spec', () => {
  it('stops the run before any device with a usage message', async () => {
    const out = testDir('link-badspec');
    const r = await runStation(['batch', '--simulate', '1', '--out', out, '--sim-faults', '0=delay:IDENTIFY']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SIMULATOR_START_FAILED');
    expect(r.stderr).toContain('expected delay:COMMAND:MS');
  });
});
