/**
 * Method 1 (on-device keygen) through the real binary: SoftHSM CA, station-sim on socat PTYs
 * (no SE: each device makes a software key with its own RNG), SQLite, PNG/ZPL labels; the
 * record comes from the device's report cross-checked with the issuance journal.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { X509Certificate } from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { DppUri } from '../../src/core/dpp-uri';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';
import { openssl, zbarDecode } from '../helpers/tools';

describe('station batch --simulate --work-order WO-DEMO-DEVKEY (on-device-keygen)', () => {
  let out: string;
  let report: RunReport;
  let exitCode: number | null;
  let stderr: string;

  beforeAll(async () => {
    out = testDir('batch-m1');
    const r = await runStation(['batch', '--simulate', '2', '--count', '3', '--work-order', 'WO-DEMO-DEVKEY', '--out', out]);
    exitCode = r.code;
    stderr = r.stderr;
    report = validateReport(join(out, 'report.json')) as RunReport;
  });

  it('passes every device with keyOrigin device-rng and exits 0', () => {
    expect(stderr).toContain('3/3 passed');
    expect(exitCode).toBe(0);
    expect(report.workOrder).toBe('WO-DEMO-DEVKEY');
    expect(report.method).toBe('on-device-keygen');
    expect(report.counts).toEqual({ total: 3, passed: 3, failed: 0, labelPending: 0 });
    for (const d of report.devices) {
      expect(d.status).toBe('passed');
      expect(d.method).toBe('on-device-keygen');
      expect(d.keyOrigin).toBe('device-rng');
      expect(d.error).toBeNull();
      expect(d.stages.map((s) => s.name)).toEqual(['connect', 'identify', 'assign', 'obtain-key', 'issue', 'install', 'verify', 'record', 'lock', 'label', 'queue-sync']);
    }
    expect(report.devices.map((d) => d.serial).sort()).toEqual(['DEVK-000001', 'DEVK-000002', 'DEVK-000003']);
  });

  it('issues IDevIDs that openssl verifies against the chain (-x509_strict -purpose sslclient)', () => {
    const chainPem = readFileSync(join(out, report.devices[0]!.chainPath!), 'utf8');
    const [issuingPem, rootPem] = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
    writeFileSync(join(out, 'root.pem'), rootPem!);
    writeFileSync(join(out, 'issuing.pem'), issuingPem!);
    const keys = new Set<string>();
    for (const d of report.devices) {
      const certPath = join(out, d.certificatePath!);
      const v = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(out, 'root.pem'), '-untrusted', join(out, 'issuing.pem'), certPath]);
      expect(v.out).toContain(': OK');
      expect(v.code).toBe(0);
      const cert = new X509Certificate(readFileSync(certPath, 'utf8'));
      expect(cert.subjectName.getField('2.5.4.5')).toEqual([d.serial]);
      keys.add(Buffer.from(cert.publicKey.rawData).toString('hex'));
    }
    expect(keys.size).toBe(3); // every device made its own key
  });

  it('records the device report in the DB (key_origin device-rng), matching the journal, and labels scan to the DPP URI', () => {
    const db = new BetterSqlite3(join(out, 'data', 'station.db'), { readonly: true });
    try {
      for (const d of report.devices) {
        const row = db
          .prepare('SELECT d.key_origin, d.status, d.label_state, d.dpp_uri, d.public_key_spki, c.der, c.status AS cert_status FROM devices d JOIN certificates c ON c.serial_hex = d.certificate_serial WHERE d.serial = ?')
          .get(d.serial) as { key_origin: string; status: string; label_state: string; dpp_uri: string; public_key_spki: Buffer; der: Buffer; cert_status: string };
        expect(row.key_origin).toBe('device-rng');
        expect(row.status).toBe('passed');
        expect(row.label_state).toBe('printed');
        expect(row.cert_status).toBe('active');
        expect(row.dpp_uri).toBe(d.dppUri);
        const cert = new X509Certificate(readFileSync(join(out, d.certificatePath!), 'utf8'));
        expect(Buffer.from(cert.rawData).equals(row.der)).toBe(true);
        expect(Buffer.from(cert.publicKey.rawData).equals(row.public_key_spki)).toBe(true);
        const uri = DppUri.parse(row.dpp_uri);
        expect(uri.info).toBe(d.serial);
        expect(uri.mac).toBe(d.macs[0]);
        expect(DppUri.build({ publicKeySpki: row.public_key_spki }).publicKeySpki.equals(uri.publicKeySpki)).toBe(true);
        expect(zbarDecode(join(out, d.labelPngPath!))).toBe(row.dpp_uri);
      }
    } finally {
      db.close();
    }
  });
});
