/**
 * Records + sync end to end through the `station` CLI (docs/records-and-sync.md): a batch with
 * both sync targets configured but down keeps provisioning and drains later, each service storing
 * one copy of every record; --wait-sync; retiring a device queues its signed void; exports
 * (json, csv, pem verified by openssl, aws lines, jws read back by the SE manifest verifier);
 * db backup restored and verified; audit verify finds a tampered event and a gap.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpsRecordSink } from '../../src/bench/https-record-sink';
import { makeTlsTestPki } from '../../src/bench/tls-test-pki';
import { verifySeManifest } from '../../src/core/se-manifest';
import { fromPem } from '../../src/hsm/ca/x509-builder';
import { openssl } from '../helpers/tools';
import { runStation, testDir } from '../helpers/station-cli';

const dir = testDir('records-sync');
const data = join(dir, 'data');
const cfgPath = join(dir, 'station.json');
let masa: HttpsRecordSink;
let supply: HttpsRecordSink;
const ports = { masa: 0, supply: 0 };

const station = (args: string[]) => runStation(['--config', cfgPath, '--data-dir', data, ...args]);

function sinks(): [HttpsRecordSink, HttpsRecordSink] {
  const tls = join(dir, 'tls');
  const o = { caCert: join(data, 'pki', 'station-ca.pem'), serverCert: join(tls, 'server.pem'), serverKey: join(tls, 'server-key.pem') };
  return [new HttpsRecordSink(o), new HttpsRecordSink(o)];
}

beforeAll(async () => {
  const pkiInit = await runStation(['--data-dir', data, 'pki', 'init']);
  expect(pkiInit.code, pkiInit.stderr).toBe(0);
  const tls = makeTlsTestPki(join(dir, 'tls'));
  [masa, supply] = sinks();
  ports.masa = Number(new URL(await masa.start()).port);
  ports.supply = Number(new URL(await supply.start()).port);
  await masa.stop();
  await supply.stop(); // both services down for the batch
  writeFileSync(
    cfgPath,
    JSON.stringify({
      sync: {
        masa: { url: `https://127.0.0.1:${ports.masa}`, serverCaCertificate: tls.caCert },
        supplyChain: { url: `https://127.0.0.1:${ports.supply}`, serverCaCertificate: tls.caCert },
        retry: { initialMs: 50, maxMs: 200 },
        requestTimeoutMs: 3000,
        pauseProbeMs: 200,
      },
    }),
  );
}, 60_000);

afterAll(async () => {
  await masa?.stop();
  await supply?.stop();
});

describe('records and sync through the station CLI', () => {
  it('services down: the line keeps provisioning; the outbox drains later and each service stores every record once', async () => {
    const batch = await station(['batch', '--simulate', '2', '--count', '3', '--out', join(dir, 'out')]);
    expect(batch.code, batch.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as { devices: { serial: string; status: string; sync: Record<string, string> }[] };
    expect(report.devices.map((d) => d.status)).toEqual(['passed', 'passed', 'passed']);
    for (const d of report.devices) expect(d.sync).toEqual({ masa: 'pending', supplyChain: 'pending' });
    const pending = JSON.parse((await station(['sync', 'status', '--json'])).stdout) as { targets: { target: string; pending: number; oldestPendingAgeMs: number }[] };
    expect(pending.targets.map((t) => [t.target, t.pending])).toEqual([['masa', 3], ['supply-chain', 3]]);
    expect(pending.targets[0]!.oldestPendingAgeMs).toBeGreaterThan(0);

    await masa.start(ports.masa);
    await supply.start(ports.supply);
    const drain = await station(['sync', 'drain', '--timeout', '30']);
    expect(drain.code, drain.stderr).toBe(0);
    for (const sink of [masa, supply]) {
      expect([...sink.stored.keys()].sort()).toEqual(report.devices.map((d) => `station-1:${d.serial}:1`).sort());
      for (const payload of sink.stored.values()) expect(JSON.parse(payload)).toMatchObject({ schema: 'device-record-v1', stationId: 'station-1', status: 'active', keyOrigin: 'secure-element' });
    }
    const status = await station(['sync', 'status']);
    expect(status.stdout).toMatch(/masa\s+active\s+pending 0, delivered 3/);
  }, 120_000);

  it('--wait-sync waits for the drain: the report says delivered and the run exits 0', async () => {
    const batch = await station(['batch', '--simulate', '1', '--count', '1', '--out', join(dir, 'out2'), '--wait-sync', '30']);
    expect(batch.code, batch.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'out2', 'report.json'), 'utf8')) as { devices: { serial: string; sync: Record<string, string> }[] };
    expect(report.devices[0]!.sync).toEqual({ masa: 'delivered', supplyChain: 'delivered' });
    expect(masa.stored.has(`station-1:${report.devices[0]!.serial}:1`)).toBe(true);
  }, 120_000);

  it('retiring a device voids its certificate and syncs a signed void record; audited', async () => {
    const retire = await station(['device', 'retire', '--serial', 'DEMO-000001', '--reason', 'returned by customer', '--operator', 'qa']);
    expect(retire.code, retire.stderr).toBe(0);
    expect((await station(['sync', 'drain', '--timeout', '30'])).code).toBe(0);
    for (const sink of [masa, supply]) expect(JSON.parse(sink.stored.get('station-1:DEMO-000001:2')!)).toMatchObject({ status: 'void', sequence: 2, voidReason: 'retired: returned by customer' });
    const again = await station(['device', 'retire', '--serial', 'DEMO-000001', '--reason', 'twice']);
    expect(again.code).toBe(4);
    expect(again.stderr).toContain('DEVICE_NOT_ACTIVE');
  }, 60_000);

  it('exports the active devices as json, csv, a PEM bundle openssl verifies, AWS bulk lines and a signed JWS manifest', async () => {
    const exp = async (format: string) => {
      const r = await station(['export', '--work-order', 'WO-DEMO-1', '--format', format]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const json = JSON.parse(await exp('json')) as { serial: string; dppUri: string }[];
    expect(json.map((d) => d.serial)).toEqual(['DEMO-000002', 'DEMO-000003', 'DEMO-000004']); // 000001 is retired
    const csv = (await exp('csv')).trim().split('\r\n');
    expect(csv[0]).toBe('serial,work_order,owner,model,mac,dpp_uri,certificate_serial,se_serial');
    expect(csv.slice(1).map((l) => l.match(/"(DPP:[^"]*)"/)?.[1])).toEqual(json.map((d) => d.dppUri));
    const pem = await exp('pem');
    const certs = fromPem(pem);
    expect(certs.length).toBe(3);
    const pemDir = join(dir, 'pem');
    mkdirSync(pemDir, { recursive: true });
    certs.forEach((der, i) => {
      const f = join(pemDir, `${i}.pem`);
      writeFileSync(f, `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`);
      const v = openssl(['verify', '-x509_strict', '-CAfile', join(data, 'pki', 'root-ca.pem'), '-untrusted', join(data, 'pki', 'issuing-ca.pem'), f]);
      expect(v.out, v.out).toContain(': OK');
    });
    const aws = (await exp('aws')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    expect(aws.map((l) => [l.ThingName, l.SerialNumber])).toEqual(json.map((d) => [d.serial, d.serial]));
    expect(aws[0]!.CertificatePem).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    const jws = await exp('jws');
    const verified = verifySeManifest(jws, {
      signerCertificates: fromPem(readFileSync(join(data, 'pki', 'station-identity.pem'), 'utf8')),
      vendorCaCertificates: fromPem(readFileSync(join(data, 'pki', 'root-ca.pem'), 'utf8')),
    });
    expect(verified.entries.length).toBe(3);
    expect(verified.entries[0]!.certificateDer.equals(certs[0]!)).toBe(true);
    const payload = JSON.parse(Buffer.from((JSON.parse(jws) as { payload: string }[])[0]!.payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(payload).toMatchObject({ serialNumber: 'DEMO-000002', dppUri: json[0]!.dppUri });
  }, 60_000);

  it('db backup restores to a database that passes audit verify; a tampered event and a gap are found and named', async () => {
    const backup = join(dir, 'backup.db');
    const b = await station(['db', 'backup', backup]);
    expect(b.code, b.stderr).toBe(0);
    const restore = (name: string) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      copyFileSync(backup, join(d, 'station.db'));
      return d;
    };
    const verify = (d: string) => runStation(['--config', cfgPath, '--data-dir', d, 'audit', 'verify']);
    const ok = await verify(restore('restored'));
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/audit chain OK: \d+ event/);
    expect(ok.stdout).toMatch(/device records OK: 5 record\(s\), all signed/);

    const tampered = restore('tampered');
    let db = new BetterSqlite3(join(tampered, 'station.db'));
    db.exec('DROP TRIGGER audit_events_no_update');
    db.prepare("UPDATE audit_events SET data = '{\"forged\":true}' WHERE seq = 5").run();
    db.close();
    const t = await verify(tampered);
    expect(t.code).toBe(4);
    expect(t.stdout).toContain('BROKEN at event 5: hash does not match the event content');

    const gap = restore('gap');
    db = new BetterSqlite3(join(gap, 'station.db'));
    db.exec('DROP TRIGGER audit_events_no_delete');
    db.prepare('DELETE FROM audit_events WHERE seq = 7').run();
    db.close();
    const g = await verify(gap);
    expect(g.code).toBe(4);
    expect(g.stdout).toContain('BROKEN at event 8: expected event 7, found 8');

    const record = restore('record');
    db = new BetterSqlite3(join(record, 'station.db'));
    db.exec('DROP TRIGGER device_records_no_update');
    db.prepare("UPDATE device_records SET payload = replace(payload, '\"owner\":null', '\"owner\":\"mallory\"') WHERE id = 1").run();
    db.close();
    const r = await verify(record);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/device record BROKEN: record 1 .*signature does not verify/);
  }, 60_000);
});
