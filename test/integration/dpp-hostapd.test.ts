/**
 * Every method's DPP URI, as the station built it in a real run, read by Debian's hostapd
 * (driver=none, a control socket in a temp dir): DPP_QR_CODE accepts it, and DPP_BOOTSTRAP_INFO
 * reports pkhash = SHA-256 of our K: bytes (the DER SubjectPublicKeyInfo with the compressed
 * point) and mac_addr = our M:. hostapd is the independent parser here: if it is missing, the
 * test fails with the reason (scripts/setup.sh installs it).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DppUri } from '../../src/core/dpp-uri';
import { METHOD_IDS } from '../../src/core/method-id';
import type { RunReport } from '../../src/station/run/report';
import { runStation, testDir } from '../helpers/station-cli';

const HOSTAPD = '/usr/sbin/hostapd';
const HOSTAPD_CLI = '/usr/sbin/hostapd_cli';

describe('DPP URIs of every method, parsed by hostapd', () => {
  let dir: string;
  let hostapd: ChildProcess | undefined;
  const ctrl = () => join(dir, 'ctrl');

  const hostapdCommand = (command: string): string =>
    execFileSync(HOSTAPD_CLI, ['-p', ctrl(), '-i', 'dpp0', 'raw', command], { encoding: 'utf8', timeout: 5000 }).trim();

  beforeAll(async () => {
    for (const bin of [HOSTAPD, HOSTAPD_CLI]) {
      if (!existsSync(bin)) throw new Error(`${bin} is missing: install Debian's hostapd (scripts/setup.sh does)`);
    }
    dir = testDir('dpp-hostapd');
    writeFileSync(join(dir, 'hostapd.conf'), `driver=none\nctrl_interface=${ctrl()}\ninterface=dpp0\n`);
    hostapd = spawn(HOSTAPD, [join(dir, 'hostapd.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    hostapd.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    const start = Date.now();
    while (!existsSync(join(ctrl(), 'dpp0'))) {
      if (hostapd.exitCode !== null || Date.now() - start > 5000) throw new Error(`hostapd did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(hostapdCommand('PING')).toBe('PONG');
  });

  afterAll(() => {
    hostapd?.kill('SIGTERM');
  });

  it.each(METHOD_IDS)('%s: hostapd accepts the URI, its pkhash is SHA-256 of K: and its mac_addr is M:', async (method) => {
    const out = join(dir, method);
    mkdirSync(out, { recursive: true });
    const r = await runStation(['batch', '--simulate', '1', '--method', method, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RunReport;
    const uri = report.devices[0]!.dppUri!;
    const parsed = DppUri.parse(uri);

    const id = hostapdCommand(`DPP_QR_CODE ${uri}`);
    expect(id, `hostapd refused ${uri}`).toMatch(/^\d+$/);
    const info = Object.fromEntries(
      hostapdCommand(`DPP_BOOTSTRAP_INFO ${id}`)
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
    const kBytes = Buffer.from(/;K:([^;]+);/.exec(uri)![1]!, 'base64');
    expect(kBytes[kBytes.length - 33]).toBeOneOf([0x02, 0x03]); // the compressed point
    expect(info.pkhash).toBe(createHash('sha256').update(kBytes).digest('hex'));
    const mac = /;M:([0-9a-f]{12});/.exec(uri)![1]!;
    expect(info.mac_addr).toBe(mac.match(/../g)!.join(':'));
    expect(info.type).toBe('QRCODE');
    expect(info.curve).toBe('prime256v1');
    expect(parsed.toString()).toBe(uri);
  });
});
