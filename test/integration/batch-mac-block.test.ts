/**
 * A product whose MACs come from the station's MAC block (macSource block), through the real
 * CLI: import a block (`station db import-blocks`), provision with the simulator, and check that
 * the report's MACs, the DPP URIs' M: and the labels carry the block's addresses in order, that
 * `station db blocks` shows the use, that a second run (method 3, prepared keys) continues the
 * block, that an overlapping import is refused, that a device with burned-in MACs fails with
 * DEVICE_MAC_FIXED, and that a used-up block stops the line with MAC_BLOCK_EXHAUSTED.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DppUri } from '../../src/core/dpp-uri';
import type { DeviceReport, RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';

const BLOCK = { kind: 'mac', stationId: 'station-1', first: '02:00:5e:10:00:00', last: '02:00:5e:10:00:0b', product: 'demo-sensor' };
const mac = (n: number) => `02005e1000${n.toString(16).padStart(2, '0')}`;
const bySerial = (a: DeviceReport, b: DeviceReport) => (a.serial ?? '').localeCompare(b.serial ?? '');

interface MacBlockRow {
  first: string;
  last: string;
  next: string;
  remaining: number;
}

describe('station batch with MACs from the station block', () => {
  let dir: string;
  let data: string;
  let config: string;
  const station = (...args: string[]) => runStation(['--config', config, '--data-dir', data, ...args]);
  const macBlocks = async (): Promise<MacBlockRow[]> => {
    const r = await station('db', 'blocks', '--json');
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as { mac: MacBlockRow[] }).mac;
  };

  beforeAll(async () => {
    dir = testDir('mac-block');
    data = join(dir, 'data');
    config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ products: { 'demo-sensor': { macSource: { kind: 'block', count: 2 } } } }));
    expect((await runStation(['--data-dir', data, 'pki', 'init'])).code).toBe(0);
    writeFileSync(join(dir, 'blocks.json'), JSON.stringify([BLOCK]));
    const imported = await station('db', 'import-blocks', join(dir, 'blocks.json'));
    expect(imported.stderr).toBe('');
    expect(imported.stdout).toContain('imported 0 serial block(s) and 1 MAC block(s)');
  });

  it('gives each device two consecutive MACs from the block in serial order: report, DPP URI M:, label, db blocks', async () => {
    const out = join(dir, 'run1');
    const r = await station('batch', '--simulate', '2', '--count', '3', '--method', 'on-device-keygen', '--out', out);
    expect(r.stderr).toContain('3/3 passed');
    expect(r.code).toBe(0);
    const devices = (validateReport(join(out, 'report.json')) as RunReport).devices.sort(bySerial);
    expect(devices.map((d) => d.serial)).toEqual(['DEVK-000001', 'DEVK-000002', 'DEVK-000003']);
    devices.forEach((d, i) => {
      expect(d.status).toBe('passed');
      expect(d.macs).toEqual([mac(2 * i), mac(2 * i + 1)]);
      expect(DppUri.parse(d.dppUri!).mac).toBe(mac(2 * i));
      const zpl = readFileSync(join(out, d.labelZplPath!), 'latin1');
      expect(zpl).toContain(`MAC 02:00:5e:10:00:0${2 * i}`);
    });
    expect(await macBlocks()).toEqual([expect.objectContaining({ first: mac(0), last: mac(11), next: mac(6), remaining: 6 })]);
  });

  it('refuses a block that overlaps one already known, and imports nothing', async () => {
    writeFileSync(join(dir, 'overlap.json'), JSON.stringify([{ ...BLOCK, stationId: 'station-2', first: '02:00:5e:10:00:08', last: '02:00:5e:10:00:ff' }]));
    const r = await station('db', 'import-blocks', join(dir, 'overlap.json'));
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('BLOCK_OVERLAP');
    expect(await macBlocks()).toHaveLength(1);
  });

  it('a second run (method 3, prepared keys) continues the block; a device with burned-in MACs fails DEVICE_MAC_FIXED at assign and burns its MACs', async () => {
    expect((await station('prepare', '--work-order', 'WO-DEMO-INJECT', '--count', '2')).code).toBe(0);
    const out = join(dir, 'run2');
    const r = await station('batch', '--simulate', '2', '--count', '2', '--method', 'factory-injected-key', '--sim-faults', '1=mac-fixed', '--out', out);
    expect(r.code).toBe(1);
    const devices = (validateReport(join(out, 'report.json')) as RunReport).devices;
    const passed = devices.find((d) => d.status === 'passed')!;
    const fixed = devices.find((d) => d.status === 'failed')!;
    expect(passed.preparedKeyId).toBeTruthy();
    expect(DppUri.parse(passed.dppUri!).mac).toBe(passed.macs[0]);
    expect(fixed.error).toMatchObject({ code: 'DEVICE_MAC_FIXED', stage: 'assign' });
    expect(fixed.error!.message).toContain('burned in');
    expect(fixed.serial).toMatch(/^INJ-/);
    expect(fixed.certificatePath).toBeNull();
    // the two devices took 06..09 between them, two consecutive each
    expect([...passed.macs, ...fixed.macs].sort()).toEqual([mac(6), mac(7), mac(8), mac(9)]);
    for (const d of [passed, fixed]) expect(parseInt(d.macs[1]!, 16) - parseInt(d.macs[0]!, 16)).toBe(1);
    expect((await macBlocks())[0]).toMatchObject({ next: mac(10), remaining: 2 });
  });

  it('a used-up block fails the next device MAC_BLOCK_EXHAUSTED before a serial is used and stops the line (exit 4)', async () => {
    const out = join(dir, 'run3');
    const r = await station('batch', '--simulate', '2', '--count', '4', '--method', 'on-device-keygen', '--out', out);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('MAC_BLOCK_EXHAUSTED');
    expect(r.stderr).toContain('02:00:5e:10:00:00..02:00:5e:10:00:0b (product demo-sensor) of station station-1 has no 2 consecutive addresses left');
    const report = validateReport(join(out, 'report.json')) as RunReport;
    const passed = report.devices.filter((d) => d.status === 'passed');
    const failed = report.devices.filter((d) => d.status === 'failed');
    expect(passed.map((d) => d.macs)).toEqual([[mac(10), mac(11)]]);
    expect(failed.length).toBeGreaterThan(0);
    for (const d of failed) {
      expect(d.error).toMatchObject({ code: 'MAC_BLOCK_EXHAUSTED', stage: 'assign' });
      expect(d.serial).toBeNull();
    }
    expect(report.devices.length).toBeLessThan(4);
    expect((await macBlocks())[0]).toMatchObject({ next: mac(12), remaining: 0 });
  });
});
