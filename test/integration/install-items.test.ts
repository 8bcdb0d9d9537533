/**
 * The install stage's extra items (SP 1800-36B 4.1 step 4): the product's MASA trust anchor, MUD
 * URL and application bootstrap info are written to the device and read back in verify; a
 * device that reads back another MUD URL fails READBACK_MISMATCH naming the item; a firmware
 * outside the product's range is refused at identify; a missing trust anchor file is a
 * configuration error before any device is touched.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';

describe('install items and product checks', () => {
  let dir: string;
  let anchor: string;

  beforeAll(() => {
    dir = testDir('install-items');
    anchor = join(dir, 'masa-anchor.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'masa-key.pem'), '-out', anchor, '-subj', '/CN=Test MASA', '-days', '30'], { stdio: 'ignore' });
  });

  const config = (product: Record<string, unknown>) => {
    const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify({ products: { 'demo-sensor': product } }));
    return path;
  };

  it('installs and reads back the MASA trust anchor, MUD URL and bootstrap info; a tampered MUD URL read back fails', async () => {
    const out = join(dir, 'run');
    const cfg = config({ install: { masaTrustAnchor: anchor, mudUrl: 'https://mud.example.com/x.json', appBootstrap: 'tenant=t1' } });
    const r = await runStation(['--config', cfg, 'batch', '--simulate', '2', '--out', out, '--sim-faults', '1=readback-corrupt-mud']);
    expect(r.code).toBe(1);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    const ok = report.devices.find((d) => d.port.endsWith('/port0'))!;
    const bad = report.devices.find((d) => d.port.endsWith('/port1'))!;
    expect(ok.status).toBe('passed');
    expect(bad.error).toMatchObject({ code: 'READBACK_MISMATCH', stage: 'verify' });
    expect(bad.error!.message).toContain('MUD URL');
  });

  it('refuses a firmware older than the product accepts, at identify, before a serial is used', async () => {
    const out = join(dir, 'fw');
    const r = await runStation(['--config', config({ firmware: { min: '2.0' } }), 'batch', '--simulate', '1', '--out', out]);
    expect(r.code).toBe(1);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.devices[0]!.serial).toBeNull();
    expect(report.devices[0]!.error).toMatchObject({ code: 'DEVICE_FIRMWARE_UNSUPPORTED', stage: 'identify' });
    expect(report.devices[0]!.error!.message).toContain('older than 2.0');
  });

  it('a missing MASA trust anchor file stops the run before any device (exit 2)', async () => {
    const r = await runStation(['--config', config({ install: { masaTrustAnchor: join(dir, 'nope.pem') } }), 'batch', '--simulate', '1', '--out', join(dir, 'missing')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('INSTALL_ITEM_MISSING');
  });
});
