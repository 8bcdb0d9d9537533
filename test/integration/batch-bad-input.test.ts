/**
 * Bad input from devices: each bad device fails with a precise code, message and stage, no
 * certificate is issued for it (or the one issued is voided), and the rest of the batch goes on.
 */
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DeviceReport, RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';

describe('station batch with faulty simulated devices', () => {
  let out: string;
  let report: RunReport;
  let code: number | null;
  const byPort = (i: number): DeviceReport => {
    const d = report.devices.find((x) => x.port.endsWith(`/port${i}`));
    if (!d) throw new Error(`no device on port ${i}`);
    return d;
  };

  beforeAll(async () => {
    out = testDir('batch-faults');
    const r = await runStation([
      'batch',
      '--simulate',
      '6',
      '--out',
      out,
      '--sim-faults',
      '0=silent,1=csr-bad-signature,2=csr-wrong-serial,3=challenge-wrong-key,4=readback-corrupt',
    ]);
    code = r.code;
    report = validateReport(join(out, 'report.json')) as RunReport;
  });

  it('exits 1 and passes the healthy device', () => {
    expect(code).toBe(1);
    expect(report.counts).toMatchObject({ total: 6, passed: 1, failed: 5 });
    expect(byPort(5).status).toBe('passed');
  });

  it('a device that does not answer times out naming its port, before any serial is used', () => {
    const d = byPort(0);
    expect(d.status).toBe('failed');
    expect(d.serial).toBeNull();
    expect(d.error).toMatchObject({ code: 'DEVICE_TIMEOUT', stage: 'connect' });
    expect(d.error!.message).toContain(d.port);
    expect(d.error!.message).toContain('HELLO');
  });

  it('a CSR whose signature does not verify fails at obtain-key', () => {
    const d = byPort(1);
    expect(d.error).toMatchObject({ code: 'CSR_SIGNATURE_INVALID', stage: 'obtain-key' });
    expect(d.certificatePath).toBeNull();
    expect(d.disposition).toBe('rework');
  });

  it('a CSR for another serial fails at obtain-key and names both serials', () => {
    const d = byPort(2);
    expect(d.error).toMatchObject({ code: 'CSR_SERIAL_MISMATCH', stage: 'obtain-key' });
    expect(d.error!.message).toContain(`${d.serial}X`);
    expect(d.error!.message).toContain(d.serial!);
  });

  it('a device that cannot prove possession fails at verify, and its certificate is voided', () => {
    const d = byPort(3);
    expect(d.error).toMatchObject({ code: 'CHALLENGE_FAILED', stage: 'verify' });
    const d4 = byPort(4);
    expect(d4.error).toMatchObject({ code: 'READBACK_MISMATCH', stage: 'verify' });
  });

  it('keeps a record of every device that got a serial, and issues no certificate for bad CSRs', () => {
    const db = new BetterSqlite3(join(out, 'data', 'station.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT serial, status, error_code, error_stage FROM devices ORDER BY serial').all() as {
        serial: string;
        status: string;
        error_code: string | null;
      }[];
      expect(rows).toHaveLength(5); // the silent device never got a serial
      for (const i of [1, 2, 3, 4]) {
        const d = byPort(i);
        const row = rows.find((r) => r.serial === d.serial)!;
        expect(row).toMatchObject({ status: 'failed', error_code: d.error!.code });
      }
      const certs = db.prepare('SELECT device_serial, status FROM certificates ORDER BY device_serial').all() as { device_serial: string; status: string }[];
      const bySerial = new Map(certs.map((c) => [c.device_serial, c.status]));
      expect(bySerial.has(byPort(1).serial!)).toBe(false);
      expect(bySerial.has(byPort(2).serial!)).toBe(false);
      expect(bySerial.get(byPort(3).serial!)).toBe('void');
      expect(bySerial.get(byPort(4).serial!)).toBe('void');
      expect(bySerial.get(byPort(5).serial!)).toBe('active');
    } finally {
      db.close();
    }
  });
});

describe('a port whose devices keep failing', () => {
  it('presents a fresh device after each failure, so every device fails for its own reason', async () => {
    const out = testDir('batch-refail');
    const r = await runStation(['batch', '--simulate', '1', '--count', '3', '--out', out, '--sim-faults', '0=csr-wrong-serial']);
    expect(r.code).toBe(1);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.devices.map((d) => d.error?.code)).toEqual(['CSR_SERIAL_MISMATCH', 'CSR_SERIAL_MISMATCH', 'CSR_SERIAL_MISMATCH']);
    expect(new Set(report.devices.map((d) => d.hardwareId)).size).toBe(3);
    expect(r.stderr).toMatch(/\[3\/3\] DEMO-\d{6} on .*: FAILED in \d+ ms CSR_SERIAL_MISMATCH at obtain-key/);
  });
});
