/**
 * Method 3 end to end through the real `station` CLI: SoftHSM CA and KEK in the PKCS#11 worker,
 * station-sim devices on socat PTYs, SQLite; certificates checked by openssl.
 *
 * - `station batch --simulate 3 --method factory-injected-key` with no other setup (the station
 *   prepares the keys the run needs);
 * - `station prepare`, then a batch that takes exactly those keys; afterwards the database files
 *   hold none of their wrapped blobs (they did before the run: the search is meaningful);
 * - `--inject at-station`;
 * - a device answering the challenge with another key: CHALLENGE_FAILED, its key stays reserved
 *   for it and is never offered to another device.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/manufacturer-db/audit-chain';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

const STAGES = ['connect', 'identify', 'assign', 'obtain-key', 'issue', 'install', 'verify', 'record', 'lock', 'label', 'queue-sync'];

interface KeyRow {
  id: string;
  serial: string;
  origin: string;
  state: string;
  wrapped_key: Buffer | null;
  reserved_for: string | null;
  injected_at: string | null;
}

function keyRows(dataDir: string): KeyRow[] {
  const db = new BetterSqlite3(join(dataDir, 'station.db'), { readonly: true });
  try {
    return db.prepare('SELECT id, serial, origin, state, wrapped_key, reserved_for, injected_at FROM prepared_keys ORDER BY serial').all() as KeyRow[];
  } finally {
    db.close();
  }
}

/** Every byte the database keeps on disk: the main file, and the write-ahead log and journal when present. */
function databaseBytes(dataDir: string): Buffer {
  const files = ['station.db', 'station.db-wal', 'station.db-journal'].map((f) => join(dataDir, f)).filter((p) => existsSync(p));
  return Buffer.concat(files.map((p) => readFileSync(p)));
}

function verifyWithOpenssl(out: string, report: RunReport): void {
  const chainPem = readFileSync(join(out, report.devices[0]!.chainPath!), 'utf8');
  const [issuingPem, rootPem] = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
  writeFileSync(join(out, 'root.pem'), rootPem!);
  writeFileSync(join(out, 'issuing.pem'), issuingPem!);
  for (const d of report.devices) {
    const v = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(out, 'root.pem'), '-untrusted', join(out, 'issuing.pem'), join(out, d.certificatePath!)]);
    expect(v.out).toContain(': OK');
    expect(v.code).toBe(0);
    const subject = openssl(['x509', '-in', join(out, d.certificatePath!), '-noout', '-subject', '-nameopt', 'oid']).out;
    expect(subject).toContain(`2.5.4.5=${d.serial}`);
  }
}

describe('station batch --simulate, factory-injected-key', () => {
  let out: string;
  let data: string;
  let report: RunReport;
  let first: { code: number | null; stderr: string };

  beforeAll(async () => {
    out = testDir('batch-m3');
    data = join(out, 'data');
    const r = await runStation(['batch', '--simulate', '3', '--count', '4', '--method', 'factory-injected-key', '--out', out]);
    first = { code: r.code, stderr: r.stderr };
    report = validateReport(join(out, 'report.json')) as RunReport;
  });

  it('passes every device with no other setup: keys prepared by the station, keyOrigin hsm, one prepared key each', () => {
    expect(first.stderr).toContain('4/4 passed');
    expect(first.code).toBe(0);
    expect(report.workOrder).toBe('WO-DEMO-INJECT');
    expect(report.counts).toEqual({ total: 4, passed: 4, failed: 0, labelPending: 0 });
    for (const d of report.devices) {
      expect(d).toMatchObject({ status: 'passed', method: 'factory-injected-key', keyOrigin: 'hsm', error: null });
      expect(d.stages.map((s) => s.name)).toEqual(STAGES);
      expect(d.serial).toMatch(/^INJ-\d{6}$/);
    }
    const ids = report.devices.map((d) => d.preparedKeyId);
    expect(new Set(ids).size).toBe(4);
    const rows = keyRows(data);
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row).toMatchObject({ origin: 'prepared', state: 'consumed', wrapped_key: null });
      expect(ids).toContain(row.id);
      expect(report.devices.find((d) => d.preparedKeyId === row.id)!.serial).toBe(row.serial);
    }
  });

  it('issues IDevIDs that openssl verifies against the chain', () => {
    verifyWithOpenssl(out, report);
  });

  it('keeps an intact audit chain with every key\'s life in it', () => {
    const db = new BetterSqlite3(join(data, 'station.db'), { readonly: true });
    try {
      expect(verifyAuditChain(db).ok).toBe(true);
      const types = (db.prepare("SELECT type FROM audit_events WHERE type LIKE 'prepared-key%'").all() as { type: string }[]).map((r) => r.type);
      expect(types.filter((t) => t === 'prepared-key.reserved')).toHaveLength(4);
      expect(types.filter((t) => t === 'prepared-key.injecting')).toHaveLength(4);
      expect(types.filter((t) => t === 'prepared-key.consumed')).toHaveLength(4);
    } finally {
      db.close();
    }
  });

  it('station prepare makes keys ahead; a run takes exactly them, and no copy of their blobs is left in the database files', async () => {
    const prep = await runStation(['--data-dir', data, 'prepare', '--work-order', 'WO-DEMO-INJECT', '--count', '3']);
    expect(prep.stderr).toBe('');
    expect(prep.code).toBe(0);
    expect(prep.stdout).toContain('prepared 3 key(s) for WO-DEMO-INJECT (INJ-000005..INJ-000007)');
    expect(prep.stdout).toContain('available now: 3');
    const prepared = keyRows(data).filter((r) => r.state === 'available');
    expect(prepared.map((r) => r.serial)).toEqual(['INJ-000005', 'INJ-000006', 'INJ-000007']);
    const blobs = prepared.map((r) => r.wrapped_key!);
    for (const b of blobs) expect(b).toHaveLength(80);
    // Positive control: the search finds each blob while it rests in the database.
    const before = databaseBytes(data);
    for (const b of blobs) expect(before.includes(b)).toBe(true);

    const out2 = join(out, 'second');
    const r = await runStation(['--data-dir', data, 'batch', '--simulate', '3', '--method', 'factory-injected-key', '--out', out2]);
    expect(r.code).toBe(0);
    const second = validateReport(join(out2, 'report.json')) as RunReport;
    expect(second.devices.map((d) => d.serial).sort()).toEqual(['INJ-000005', 'INJ-000006', 'INJ-000007']);
    expect(second.devices.map((d) => d.preparedKeyId).sort()).toEqual(prepared.map((p) => p.id).sort());
    verifyWithOpenssl(out2, second);

    expect(keyRows(data).filter((row) => blobs.some((_, i) => prepared[i]!.id === row.id)).map((row) => row.state)).toEqual(['consumed', 'consumed', 'consumed']);
    const after = databaseBytes(data);
    for (const b of blobs) {
      expect(after.includes(b)).toBe(false);
      // no half of a blob either (a page boundary or a partial overwrite)
      expect(after.includes(b.subarray(0, 40))).toBe(false);
      expect(after.includes(b.subarray(40))).toBe(false);
    }
  });

  it('--inject at-station: the HSM makes each key during the run and the issue stage issues', async () => {
    const out3 = join(out, 'at-station');
    const r = await runStation(['--data-dir', data, 'batch', '--simulate', '2', '--method', 'factory-injected-key', '--inject', 'at-station', '--out', out3]);
    expect(r.code).toBe(0);
    const third = validateReport(join(out3, 'report.json')) as RunReport;
    expect(third.counts.passed).toBe(2);
    verifyWithOpenssl(out3, third);
    const rows = keyRows(data).filter((row) => third.devices.some((d) => d.preparedKeyId === row.id));
    expect(rows.map((row) => [row.origin, row.state, row.wrapped_key])).toEqual([
      ['at-station', 'consumed', null],
      ['at-station', 'consumed', null],
    ]);
  });

  it('a device answering the challenge with another key fails with CHALLENGE_FAILED; its key stays reserved for it, never offered again', async () => {
    const out4 = join(out, 'wrong-key');
    const r = await runStation(['--data-dir', data, 'batch', '--simulate', '1', '--method', 'factory-injected-key', '--sim-faults', '0=challenge-wrong-key', '--out', out4]);
    expect(r.code).toBe(1);
    const bad = validateReport(join(out4, 'report.json')) as RunReport;
    const d = bad.devices[0]!;
    expect(d.error).toMatchObject({ code: 'CHALLENGE_FAILED', stage: 'verify' });
    expect(d.disposition).toBe('rework');
    const row = keyRows(data).find((k) => k.id === d.preparedKeyId)!;
    expect(row).toMatchObject({ state: 'reserved', injected_at: expect.any(String) });
    expect(row.reserved_for).toMatch(/^[0-9a-f]{16}$/);
    expect(row.wrapped_key).toHaveLength(80);

    // The next run prepares and takes other keys; the reserved one is not among them.
    const out5 = join(out, 'after');
    const next = await runStation(['--data-dir', data, 'batch', '--simulate', '2', '--method', 'factory-injected-key', '--out', out5]);
    expect(next.code).toBe(0);
    const after = validateReport(join(out5, 'report.json')) as RunReport;
    expect(after.devices.map((x) => x.preparedKeyId)).not.toContain(d.preparedKeyId);
    expect(keyRows(data).find((k) => k.id === d.preparedKeyId)!.state).toBe('reserved');
    // every key taken by one device only
    const db = new BetterSqlite3(join(data, 'station.db'), { readonly: true });
    try {
      const reserved = db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'prepared-key.reserved'").get() as { n: number };
      const distinct = db.prepare("SELECT COUNT(DISTINCT json_extract(data, '$.preparedKeyId')) AS n FROM audit_events WHERE type = 'prepared-key.reserved'").get() as { n: number };
      expect(distinct.n).toBe(reserved.n);
    } finally {
      db.close();
    }
  });

  it('station prepare refuses a work order of another method (exit 2)', async () => {
    const r = await runStation(['--data-dir', data, 'prepare', '--work-order', 'WO-DEMO-1', '--count', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('METHOD_MISMATCH');
  });
});
