/**
 * `station profile lint` as a user runs it: on every certificate a simulated batch issues
 * (clean), and on OpenSSL-made fixtures (exit 1 with the fault's code; exit 2 for usage).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { REPO, runStation, testDir } from '../helpers/station-cli';

describe('station profile lint', () => {
  let out: string;
  let report: RunReport;

  beforeAll(async () => {
    out = testDir('profile-lint');
    const r = await runStation(['batch', '--simulate', '2', '--out', out]);
    expect(r.stderr).toContain('2/2 passed');
    expect(r.code).toBe(0);
    report = validateReport(join(out, 'report.json')) as RunReport;
  });

  it('finds every certificate the station issued clean against the demo profile', async () => {
    const certs = readdirSync(join(out, 'certs')).filter((f) => f.endsWith('.pem') && f !== 'idevid-chain.pem');
    expect(certs.sort()).toEqual(report.devices.map((d) => `${d.serial}.pem`).sort());
    const r = await runStation(['profile', 'lint', '--json', '--profile', 'demo-sensor', ...certs.map((c) => join(out, 'certs', c))]);
    expect(r.stderr).toBe('');
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; ok: boolean; findings: unknown[]; profile: string });
    expect(results).toHaveLength(2);
    for (const res of results) expect(res).toMatchObject({ ok: true, findings: [], profile: 'demo-sensor' });
    expect(r.code).toBe(0);
  });

  it('journals each issuance: intent before, certificate after, none left pending', () => {
    const db = new BetterSqlite3(join(out, 'data', 'station.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT i.device_serial, i.state, c.serial_hex FROM issuance_intents i LEFT JOIN certificates c ON c.serial_hex = i.certificate_serial ORDER BY i.device_serial').all() as {
        device_serial: string;
        state: string;
        serial_hex: string | null;
      }[];
      expect(rows.map((r) => [r.device_serial, r.state, r.serial_hex !== null])).toEqual(report.devices.map((d) => [d.serial, 'issued', true]).sort());
    } finally {
      db.close();
    }
  });

  it('exits 1 with the fault codes for a faulty certificate, 0 for a correct one made by OpenSSL', async () => {
    const fixtures = join(REPO, 'fixtures/certs');
    const bad = await runStation(['profile', 'lint', join(fixtures, 'masa-utf8string.pem'), join(fixtures, 'correct.pem')]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/masa-utf8string\.pem: FAULTS \(profile demo-sensor\)\n\s+FAULT\s+LINT_MASA_URL_NOT_IA5: /);
    expect(bad.stdout).toContain('correct.pem: OK (profile demo-sensor)');
    const good = await runStation(['profile', 'lint', join(fixtures, 'correct.pem')]);
    expect(good.code).toBe(0);
  });

  it('exits 2 for an unknown product or an unreadable file', async () => {
    const unknown = await runStation(['profile', 'lint', '--profile', 'no-such-product', join(REPO, 'fixtures/certs/correct.pem')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('PRODUCT_UNKNOWN');
    const missing = await runStation(['profile', 'lint', join(out, 'nope.pem')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('LINT_FILE_UNREADABLE');
  });
});
