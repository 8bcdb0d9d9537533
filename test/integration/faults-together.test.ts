/**
 * Faults of the factory's surroundings (issue 9): the database's disk fills up mid-batch (a small
 * tmpfs), and the printer and both services are down at once. Each gives a clear error, the line
 * does what it can, and nothing committed is lost: after the fault is gone the audit chain
 * verifies, labels print, the outbox drains, and serials continue without reuse.
 *
 * The tmpfs needs root (CI runs as root); without it the test fails with the reason.
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/station/run/report';
import { startReferenceServices, type ReferenceServices } from '../../src/services/launcher';
import { loadConfig } from '../../src/station/cli/load-config';
import { OutboxSyncStatus } from '../../src/station/sync/outbox-sync-status';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function serialsOf(dbPath: string): string[] {
  const db = new BetterSqlite3(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT serial FROM devices ORDER BY serial').all() as { serial: string }[]).map((r) => r.serial);
  } finally {
    db.close();
  }
}

describe('the database disk fills up mid-batch', () => {
  const base = testDir('disk-full');
  const mnt = join(base, 'tmpfs');
  let mounted = false;

  afterAll(() => {
    if (mounted) execFileSync('umount', ['-l', mnt]);
  });

  it('stops with DB_DISK_FULL (exit 4), keeps every committed record, and goes on once space is free', async () => {
    mkdirSync(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`this test needs a small tmpfs (mount -t tmpfs, as root): ${(err as Error).message}`);
    }
    mounted = true;
    const data = join(mnt, 'data');
    const station = (args: string[]) => runStation(['--data-dir', data, ...args]);

    const first = await station(['batch', '--simulate', '1', '--count', '2', '--out', join(base, 'out1')]);
    expect(first.code, first.stderr).toBe(0);
    const before = serialsOf(join(data, 'station.db'));

    // leave a few KiB: the next records cannot be written
    const free = Number(statfsSync(mnt).bavail) * Number(statfsSync(mnt).bsize);
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, free - 24 * 1024)));
    const full = await station(['batch', '--simulate', '2', '--count', '40', '--out', join(base, 'out2')]);
    expect(full.code, full.stderr).toBe(4);
    expect(full.stderr).toContain('DB_DISK_FULL');
    expect(full.stderr).toMatch(/disk is full/);

    rmSync(filler);
    // everything committed before the fault is still there and the chain verifies
    const after = serialsOf(join(data, 'station.db'));
    for (const s of before) expect(after).toContain(s);
    const audit = await station(['audit', 'verify']);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);

    const again = await station(['batch', '--simulate', '1', '--count', '1', '--out', join(base, 'out3')]);
    expect(again.code, again.stderr).toBe(0);
    const report = validateReport(join(base, 'out3', 'report.json')) as RunReport;
    const serial = report.devices[0]!.serial!;
    expect(after).not.toContain(serial);
  }, 120_000);
});

describe('the printer and both services down at once', () => {
  let services: ReferenceServices | undefined;
  afterAll(async () => {
    await services?.stop();
  });

  it('passes every device with its label pending and its sync pending; later the labels print and the outbox drains', async () => {
    const dir = testDir('all-down');
    const data = join(dir, 'data');
    const init = await runStation(['--data-dir', data, 'pki', 'init']);
    expect(init.code, init.stderr).toBe(0);
    // the services' addresses are known, but nothing listens there yet
    const [masaPort, scPort, printerPort] = [await closedPort(), await closedPort(), await closedPort()];
    const servicesDir = join(dir, 'services');
    services = await startReferenceServices({ dir: servicesDir, stationCaCertificatePath: join(data, 'pki', 'station-ca.pem') });
    const serverCa = services.serverCaPath;
    await services.stop();
    services = undefined;
    const config = join(dir, 'station.json');
    const writeConfig = (masa: string, sc: string) =>
      writeFileSync(
        config,
        JSON.stringify({
          sync: { masa: { url: masa, serverCaCertificate: serverCa }, supplyChain: { url: sc, serverCaCertificate: serverCa }, retry: { initialMs: 50, maxMs: 500 } },
        }),
      );
    writeConfig(`https://127.0.0.1:${masaPort}`, `https://127.0.0.1:${scPort}`);
    const out = join(dir, 'out');
    const run = await runStation(['--config', config, '--data-dir', data, 'batch', '--simulate', '2', '--count', '3', '--out', out, '--printer', `tcp://127.0.0.1:${printerPort}`]);
    expect(run.code, run.stderr).toBe(0);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.counts).toMatchObject({ total: 3, passed: 3, labelPending: 3 });
    for (const d of report.devices) {
      expect(d.label.state).toBe('pending');
      expect(d.label.reason).toMatch(/PRINTER_/);
      expect(d.sync).toEqual({ masa: 'pending', supplyChain: 'pending' });
    }

    // the GUI's sync panel sees the backlog: 3 records for each of the 2 targets
    const panel = new OutboxSyncStatus({ config: loadConfig(config), databasePath: join(data, 'station.db') });
    const waiting = panel.overview();
    expect(waiting.wired).toBe(true);
    expect(waiting.backlog).toMatchObject({ pending: 6, deadLettered: 0 });
    expect(waiting.services.map((x) => x.name)).toEqual(['masa', 'supply-chain']);

    // the services come back (at new addresses: the config follows), and a printer (a file)
    services = await startReferenceServices({ dir: servicesDir, stationCaCertificatePath: join(data, 'pki', 'station-ca.pem') });
    writeConfig(services.masaUrl, services.supplyChainUrl);
    const drain = await runStation(['--config', config, '--data-dir', data, 'sync', 'drain']);
    expect(drain.code, drain.stdout + drain.stderr).toBe(0);
    const status = await runStation(['--config', config, '--data-dir', data, 'sync', 'status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const targets = (JSON.parse(status.stdout) as { targets: { target: string; pending: number; delivered: number; deadLettered: number }[] }).targets;
    expect(targets.map((t) => [t.target, t.pending, t.delivered, t.deadLettered])).toEqual([
      ['masa', 0, 3, 0],
      ['supply-chain', 0, 3, 0],
    ]);
    const drained = panel.overview();
    expect(drained.backlog).toEqual({ pending: 0, deadLettered: 0, oldestPendingAgeS: null });
    expect(drained.services.map((x) => x.state)).toEqual(['up', 'up']);
    const labels = join(dir, 'printed');
    const print = await runStation(['--config', config, '--data-dir', data, 'label', 'print', '--printer', `file:${labels}`]);
    expect(print.code, print.stderr).toBe(0);
    expect(print.stderr).toContain('3 printed, 0 still pending');
    expect(existsSync(labels)).toBe(true);
    const masaDb = new BetterSqlite3(join(servicesDir, 'masa', 'masa.db'), { readonly: true });
    const stored = masaDb.prepare('SELECT COUNT(*) AS n FROM records').get() as { n: number };
    masaDb.close();
    expect(stored.n).toBe(3);
    expect(readFileSync(join(out, 'station.log'), 'utf8')).toMatch(/PRINTER_/);
  }, 120_000);
});
