/**
 * The whole path with real parts: SoftHSM CA, station-sim on socat PTYs with SE tokens in
 * SoftHSM, SQLite, PNG/ZPL labels; certificates checked by openssl, labels by zbarimg.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { X509Certificate } from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { DppUri } from '../../src/core/dpp-uri';
import { verifyAuditChain } from '../../src/manufacturer-db/audit-chain';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';
import { openssl, zbarDecode } from '../helpers/tools';

const OID_SERIAL_NUMBER = '2.5.4.5';
const OID_MASA_URL = '1.3.6.1.5.5.7.1.32';
const OID_HW_MODULE_NAME = '1.3.6.1.5.5.7.8.4';

describe('station batch --simulate, secure-element-keygen', () => {
  let out: string;
  let report: RunReport;
  let exitCode: number | null;
  let stderr: string;

  beforeAll(async () => {
    out = testDir('batch-m2');
    const r = await runStation(['batch', '--simulate', '3', '--count', '5', '--method', 'secure-element-keygen', '--out', out]);
    exitCode = r.code;
    stderr = r.stderr;
    report = validateReport(join(out, 'report.json')) as RunReport;
  });

  it('passes every device and exits 0', () => {
    expect(stderr).toContain('5/5 passed');
    expect(exitCode).toBe(0);
    expect(report.counts).toEqual({ total: 5, passed: 5, failed: 0, labelPending: 0 });
    for (const d of report.devices) {
      expect(d.status).toBe('passed');
      expect(d.keyOrigin).toBe('secure-element');
      expect(d.error).toBeNull();
      expect(d.stages.map((s) => s.name)).toEqual(['connect', 'identify', 'assign', 'obtain-key', 'issue', 'install', 'verify', 'record', 'lock', 'label', 'queue-sync']);
      expect(d.sync).toEqual({ masa: 'disabled', supplyChain: 'disabled' });
    }
  });

  it('assigns distinct serials from the work order range', () => {
    const serials = report.devices.map((d) => d.serial).sort();
    expect(serials).toEqual(['DEMO-000001', 'DEMO-000002', 'DEMO-000003', 'DEMO-000004', 'DEMO-000005']);
  });

  it('issues IDevIDs that openssl verifies against the chain, with the 802.1AR/BRSKI profile', () => {
    const chainPem = readFileSync(join(out, report.devices[0]!.chainPath!), 'utf8');
    const [issuingPem, rootPem] = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
    writeFileSync(join(out, 'root.pem'), rootPem!);
    writeFileSync(join(out, 'issuing.pem'), issuingPem!);
    for (const d of report.devices) {
      const certPath = join(out, d.certificatePath!);
      const v = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(out, 'root.pem'), '-untrusted', join(out, 'issuing.pem'), certPath]);
      expect(v.out).toContain(': OK');
      expect(v.code).toBe(0);

      const cert = new X509Certificate(readFileSync(certPath, 'utf8'));
      const serialAttr = cert.subjectName.getField(OID_SERIAL_NUMBER);
      expect(serialAttr).toEqual([d.serial]);
      const masa = cert.getExtension(OID_MASA_URL);
      expect(masa).not.toBeNull();
      expect(masa!.critical).toBe(false);
      // IA5String https://masa.example.com:9443
      expect(Buffer.from(masa!.value).toString('latin1')).toContain('https://masa.example.com:9443');
      expect(Buffer.from(masa!.value)[0]).toBe(0x16);
      expect(cert.notAfter.toISOString()).toBe('9999-12-31T23:59:59.000Z');
      const text = openssl(['x509', '-in', certPath, '-noout', '-text']).out;
      expect(text).toContain(`othername: ${OID_HW_MODULE_NAME}`);
      expect(text).toMatch(/Key Usage: critical\s+Digital Signature/);
      expect(text).not.toContain('CA:TRUE');
      expect(text).toContain('Authority Key Identifier');
      expect(text).toContain('Subject Key Identifier');
    }
  });

  it('builds DPP URIs over the certified key, and labels that scan to exactly that URI', () => {
    const db = new BetterSqlite3(join(out, 'data', 'station.db'), { readonly: true });
    try {
      for (const d of report.devices) {
        const row = db.prepare('SELECT dpp_uri, status, label_state FROM devices WHERE serial = ?').get(d.serial) as { dpp_uri: string; status: string; label_state: string };
        expect(row.status).toBe('passed');
        expect(row.label_state).toBe('printed');
        expect(row.dpp_uri).toBe(d.dppUri);
        const uri = DppUri.parse(row.dpp_uri);
        expect(uri.info).toBe(d.serial);
        expect(uri.mac).toBe(d.macs[0]);
        const cert = new X509Certificate(readFileSync(join(out, d.certificatePath!), 'utf8'));
        const certKey = Buffer.from(cert.publicKey.rawData);
        expect(DppUri.build({ publicKeySpki: certKey }).publicKeySpki.equals(uri.publicKeySpki)).toBe(true);
        expect(zbarDecode(join(out, d.labelPngPath!))).toBe(row.dpp_uri);
        const zpl = readFileSync(join(out, d.labelZplPath!), 'utf8');
        expect(zpl).toContain(`A,${row.dpp_uri}^FS`);
      }
    } finally {
      db.close();
    }
  });

  it('records certificates, stages and an intact audit chain', () => {
    const db = new BetterSqlite3(join(out, 'data', 'station.db'), { readonly: true });
    try {
      expect((db.prepare("SELECT COUNT(*) AS n FROM certificates WHERE status = 'active'").get() as { n: number }).n).toBe(5);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const audit = verifyAuditChain(db);
      expect(audit.ok).toBe(true);
      expect(audit.events).toBeGreaterThan(5 * 4);
    } finally {
      db.close();
    }
  });

  // Where the SE key lives (generated on the SE token: local, sensitive, never extractable) is
  // checked on the simulator's SE itself: test/integration/simulated-secure-element.test.ts.

  it('continues the serial range from the database on a second run', async () => {
    const out2 = join(out, 'second');
    const r = await runStation(['--data-dir', join(out, 'data'), 'batch', '--simulate', '2', '--out', out2]);
    expect(r.code).toBe(0);
    const second = validateReport(join(out2, 'report.json')) as RunReport;
    expect(second.devices.map((d) => d.serial).sort()).toEqual(['DEMO-000006', 'DEMO-000007']);
  });
});
