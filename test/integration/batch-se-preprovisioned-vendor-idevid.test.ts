/**
 * Method 4 with `sePreprovisioned: { issueIdevid: false }` through the real CLI: the SE vendor's
 * certificate (from the imported manifest) is the device's IDevID. A passed device has the vendor
 * certificate and chain installed, recorded as its certificate and in its signed record, and
 * openssl verifies the installed chain against the simulated vendor CA; a device that answers
 * the challenge with another key fails, and every failure after the vendor certificate was
 * recorded voids it; the reworked devices' SEs (the same vendor certificates) are recorded again
 * under their new serials.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { DppUri } from '../../src/core/dpp-uri';
import { p256PointFromSpki, p256SpkiFromPoint } from '../../src/core/ec-public-key';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

function pemToDer(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/g)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

interface CertRow {
  serial_hex: string;
  device_serial: string;
  der: Buffer;
  status: string;
}

function db<T>(dataDir: string, fn: (d: BetterSqlite3.Database) => T): T {
  const d = new BetterSqlite3(join(dataDir, 'station.db'), { readonly: true });
  try {
    return fn(d);
  } finally {
    d.close();
  }
}

describe('station batch --simulate, se-preprovisioned keeping the vendor certificate as the IDevID', () => {
  let out: string;
  let dataDir: string;
  let config: string;
  let report: RunReport;
  let code: number | null;

  beforeAll(async () => {
    out = testDir('batch-m4-vendor');
    dataDir = join(out, 'data');
    config = join(out, 'config.json');
    writeFileSync(config, JSON.stringify({ products: { 'demo-sensor': { sePreprovisioned: { issueIdevid: false } } } }));
    const init = await runStation(['--data-dir', dataDir, 'pki', 'init']); // the station identity signs the records
    expect(init.code, init.stderr).toBe(0);
    const r = await runStation(['--config', config, '--data-dir', dataDir, 'batch', '--simulate', '3', '--count', '3', '--method', 'se-preprovisioned', '--sim-faults', '1=challenge-wrong-key,2=readback-corrupt', '--out', out]);
    code = r.code;
    report = validateReport(join(out, 'report.json')) as RunReport;
  }, 60_000);

  it('passes a device with the vendor certificate installed as its IDevID, its chain verified by openssl against the vendor CA', () => {
    expect(code).toBe(1);
    const passed = report.devices.filter((d) => d.status === 'passed');
    expect(passed).toHaveLength(1);
    const d = passed[0]!;
    expect(d.keyOrigin).toBe('se-vendor');
    expect(d.certificatePath).toBe(`certs/${d.serial}.pem`);
    expect(d.chainPath).toBe(`certs/${d.serial}.idevid-chain.pem`);
    const leafPem = readFileSync(join(out, d.certificatePath!), 'utf8');
    // the IDevID is the vendor's certificate of the SE key, byte for byte, and the chain is the vendor's
    expect(leafPem).toBe(readFileSync(join(out, d.seCertificatePath!), 'utf8'));
    expect(readFileSync(join(out, d.chainPath!), 'utf8')).toBe(readFileSync(join(out, d.seChainPath!), 'utf8'));
    const v = openssl(['verify', '-x509_strict', '-CAfile', join(dataDir, 'sim', 'vendor', 'se-vendor-ca.pem'), '-untrusted', join(out, d.chainPath!), join(out, d.certificatePath!)]);
    expect(v.out).toContain(': OK');
    expect(v.code).toBe(0);
    // the DPP URI carries the SE key
    const leafDer = pemToDer(leafPem)[0]!;
    const seKey = p256SpkiFromPoint(p256PointFromSpki(new X509Certificate(leafDer).publicKey.export({ format: 'der', type: 'spki' })));
    expect(p256SpkiFromPoint(p256PointFromSpki(DppUri.parse(d.dppUri!).publicKeySpki)).equals(seKey)).toBe(true);
    // recorded as the device's certificate, audited with its issuer, in the signed record as idevid
    db(dataDir, (s) => {
      const cert = s.prepare('SELECT serial_hex, device_serial, der, status FROM certificates WHERE device_serial = ?').get(d.serial) as CertRow;
      expect(cert.status).toBe('active');
      expect(cert.der.equals(leafDer)).toBe(true);
      const event = s.prepare("SELECT data FROM audit_events WHERE type = 'certificate.recorded-external' AND serial = ?").get(d.serial) as { data: string };
      expect(JSON.parse(event.data)).toMatchObject({ certificateSerial: cert.serial_hex, issuer: 'O=Simulated SE Vendor, CN=Simulated SE Vendor CA' });
      expect(s.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'certificate.issued'").get()).toEqual({ n: 0 });
      const record = s.prepare('SELECT payload, signature FROM device_records WHERE serial = ?').get(d.serial) as { payload: string; signature: string | null };
      expect(record.signature).toBeTruthy();
      const payload = JSON.parse(record.payload) as { idevid: string; certificateSerial: string; status: string; seSerial: string };
      expect(payload).toMatchObject({ idevid: leafDer.toString('base64'), certificateSerial: cert.serial_hex.replace(/^0+/, ''), status: 'active', seSerial: d.seSerial });
    });
  });

  it('fails a device that answers the challenge with another key, and voids the vendor certificate of every device that failed after it was recorded', () => {
    const failed = report.devices.filter((d) => d.status === 'failed');
    expect(failed.map((d) => d.error?.code).sort()).toEqual(['CHALLENGE_FAILED', 'READBACK_MISMATCH']);
    for (const d of failed) {
      expect(d.error!.stage).toBe('verify');
      expect(d.certificatePath).toBe(`certs/${d.serial}.pem`);
      db(dataDir, (s) => {
        const cert = s.prepare('SELECT status FROM certificates WHERE device_serial = ?').get(d.serial) as { status: string };
        expect(cert.status).toBe('void');
        const voidRecord = s.prepare('SELECT payload, signature FROM device_records WHERE serial = ?').get(d.serial) as { payload: string; signature: string | null };
        expect(voidRecord.signature).toBeTruthy();
        expect(JSON.parse(voidRecord.payload)).toMatchObject({ status: 'void', voidReason: expect.stringContaining(d.error!.code) });
      });
    }
  });

  it('records the same vendor certificates again for the reworked devices, and the audit chain and every record signature verify', async () => {
    const failedSes = report.devices.filter((d) => d.status === 'failed').map((d) => d.seSerial!);
    // the failed devices come back reworked with their SEs: the simulator starts the reel over after the passed one
    const first = report.devices.find((d) => d.status === 'passed')!;
    const reel = JSON.parse(readFileSync(join(dataDir, 'sim', 'vendor', 'se-reel.json'), 'utf8')) as { ses: { serial: string }[] };
    writeFileSync(join(dataDir, 'sim', 'vendor', 'se-reel-state.json'), JSON.stringify({ next: reel.ses.findIndex((s) => s.serial === first.seSerial) + 1 }));
    const out2 = join(out, 'rework');
    const r = await runStation(['--config', config, '--data-dir', dataDir, 'batch', '--simulate', '2', '--count', '2', '--method', 'se-preprovisioned', '--out', out2]);
    expect(r.code, r.stderr).toBe(0);
    const again = validateReport(join(out2, 'report.json')) as RunReport;
    expect(again.devices.map((d) => d.status)).toEqual(['passed', 'passed']);
    expect(again.devices.map((d) => d.seSerial).sort()).toEqual([...failedSes].sort());
    db(dataDir, (s) => {
      const rows = s.prepare('SELECT serial_hex, device_serial, der, status FROM certificates ORDER BY device_serial').all() as CertRow[];
      expect(rows.map((c) => [c.device_serial, c.status])).toEqual([
        [first.serial, 'active'],
        ...again.devices.map((d) => [d.serial, 'active']).sort(),
      ]);
      const moved = s.prepare("SELECT data FROM audit_events WHERE type = 'certificate.recorded-external' AND data LIKE '%previousDevice%'").all() as { data: string }[];
      expect(moved.map((e) => (JSON.parse(e.data) as { previousDevice: string }).previousDevice).sort()).toEqual(report.devices.filter((d) => d.status === 'failed').map((d) => d.serial).sort());
    });
    const audit = await runStation(['--data-dir', dataDir, 'audit', 'verify']);
    expect(audit.stdout).toContain('device records OK: 5 record(s), all signed');
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  });
});
