/**
 * Crash safety (issue 9): for every method and every kill point of the run model (generated from
 * the stage list, src/station/run/kill-points.ts), the station is killed with SIGKILL while the
 * first device is at that point, then restarted with `--resume`; afterwards:
 *
 * - every device of the run ended passed (record and certificate durable, label printed or
 *   pending) or failed with a code and a disposition;
 * - no certificate without a device record, and no active certificate on a failed device;
 * - no serial or MAC used twice (the schema's keys) and no public key certified twice;
 * - method 3: no key left half-way (`preparing`), no consumed or burned key that still holds a
 *   blob, no key reserved for a device that passed with another;
 * - `station audit verify` passes (hash chain, numbering, record signatures);
 * - with the reference services (method 2's matrix, where the sync path is the same for every
 *   method): each service stores every record of the station exactly once.
 *
 * `start` points only, plus the very last `end`: a stage's `end` and the next stage's `start`
 * are separated by no durable write (device-run.ts), so they are the same crash. Cycles run three
 * at a time: each is two short station processes against their own simulator.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { MethodId } from '../../src/core/method-id';
import { METHOD_IDS } from '../../src/core/method-id';
import { killPoints, type KillPoint } from '../../src/station/run/kill-points';
import { STAGES } from '../../src/station/run/stages';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { cleanEnv, runStation, testDir } from '../helpers/station-cli';

const POINTS: KillPoint[] = [...killPoints().filter((p) => p.endsWith(':start')), `${STAGES[STAGES.length - 1]!}:end` as KillPoint];
const WITH_SERVICES: MethodId = 'secure-element-keygen';

/** At most `n` cycles at once (each is two station processes with a simulator). */
function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
const slot = limiter(3);

interface Row {
  [k: string]: unknown;
}

function checkDatabase(dbPath: string, runId: string): void {
  const db = new BetterSqlite3(dbPath, { readonly: true });
  try {
    const all = <T = Row>(sql: string, ...args: unknown[]) => db.prepare(sql).all(...args) as T[];
    const devices = all<{ serial: string; status: string; error_code: string | null; disposition: string | null; label_state: string }>(
      'SELECT serial, status, error_code, disposition, label_state FROM devices WHERE run_id = ?',
      runId,
    );
    expect(devices.length).toBeGreaterThan(0);
    for (const d of devices) {
      expect(['passed', 'failed'], `${d.serial} ended ${d.status}`).toContain(d.status);
      if (d.status === 'failed') {
        expect(d.error_code, `${d.serial} failed without a code`).toBeTruthy();
        expect(d.disposition, `${d.serial} failed without a disposition`).toBeTruthy();
      } else {
        expect(['printed', 'pending']).toContain(d.label_state);
      }
    }
    expect(all('SELECT c.serial_hex FROM certificates c LEFT JOIN devices d ON d.serial = c.device_serial WHERE d.serial IS NULL')).toEqual([]);
    expect(all("SELECT c.serial_hex FROM certificates c JOIN devices d ON d.serial = c.device_serial WHERE d.status = 'failed' AND c.status = 'active'")).toEqual([]);
    expect(all("SELECT public_key_sha256 FROM certificates WHERE status = 'active' GROUP BY public_key_sha256 HAVING COUNT(*) > 1")).toEqual([]);
    expect(all('SELECT serial FROM devices d WHERE status = \'passed\' AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.device_serial = d.serial AND c.status = \'active\')')).toEqual([]);
    const hasPrepared = all("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'prepared_keys'").length > 0;
    if (hasPrepared) {
      expect(all("SELECT id FROM prepared_keys WHERE state = 'preparing'")).toEqual([]);
      expect(all("SELECT id FROM prepared_keys WHERE state IN ('consumed', 'burned') AND wrapped_key IS NOT NULL")).toEqual([]);
      expect(all("SELECT k.id FROM prepared_keys k JOIN devices d ON d.serial = k.serial WHERE k.state = 'reserved' AND d.status = 'passed'")).toEqual([]);
    }
  } finally {
    db.close();
  }
}

function checkServices(dataDir: string): void {
  const station = new BetterSqlite3(join(dataDir, 'station.db'), { readonly: true });
  const keys = (station.prepare('SELECT idempotency_key AS k FROM device_records ORDER BY k').all() as { k: string }[]).map((r) => r.k);
  station.close();
  expect(keys.length).toBeGreaterThan(0);
  for (const service of ['masa', 'supply-chain']) {
    const path = join(dataDir, 'services', service, `${service}.db`);
    expect(existsSync(path), `${service} has no database`).toBe(true);
    const db = new BetterSqlite3(path, { readonly: true });
    const stored = db.prepare('SELECT idempotency_key AS k, COUNT(*) AS n FROM records GROUP BY idempotency_key ORDER BY k').all() as { k: string; n: number }[];
    db.close();
    expect(stored.map((r) => r.k), `${service} stores every record`).toEqual(keys);
    expect(stored.every((r) => r.n === 1)).toBe(true);
  }
}

describe('crash safety: SIGKILL at every kill point, then --resume', () => {
  it('covers every stage of the run model', () => {
    for (const stage of STAGES) expect(POINTS.some((p) => p.startsWith(`${stage}:`)), `no kill point for ${stage}`).toBe(true);
  });

  for (const method of METHOD_IDS) {
    describe.concurrent(method, () => {
      for (const point of POINTS) {
        it(`killed at ${point}`, () =>
          slot(async () => {
            const out = join(testDir(`crash-${method}-${point.replace(':', '-')}`), 'out');
            const services = method === WITH_SERVICES ? ['--with-services'] : [];
            const common = ['batch', '--simulate', '1', '--count', '2', '--method', method, '--out', out, ...services];
            const killed = await runStation(common, { env: cleanEnv({ STATION_KILL_AT: point }) });
            expect(killed.code, `the station was not killed at ${point}: ${killed.stderr}`).toBeNull();

            const resumed = await runStation([...common, '--resume', ...(services.length ? ['--wait-sync', '60'] : [])]);
            expect([0, 1], resumed.stderr).toContain(resumed.code);
            const report = validateReport(join(out, 'report.json')) as RunReport;
            expect(report.counts.total).toBe(2);
            for (const d of report.devices) {
              if (d.status === 'failed') {
                expect(d.error?.code, JSON.stringify(d.error)).toBeTruthy();
                expect(d.disposition).toBeTruthy();
              }
            }
            // the device after the crash is a fresh one and passes
            expect(report.counts.passed).toBeGreaterThanOrEqual(1);
            checkDatabase(join(out, 'data', 'station.db'), report.runId);

            const audit = await runStation(['--data-dir', join(out, 'data'), 'audit', 'verify']);
            expect(audit.code, audit.stdout + audit.stderr).toBe(0);
            if (services.length) checkServices(join(out, 'data'));
            // the killed run's log is the only trace of the kill: nothing secret in it (the scan test covers the rest)
            expect(readFileSync(join(out, 'station.log'), 'utf8')).not.toMatch(/-----BEGIN (EC )?PRIVATE KEY-----/);
          }), 120_000);
      }
    });
  }
});
