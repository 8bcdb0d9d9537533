/**
 * StationApiService over a real station (SoftHSM token from `pki init`, SQLite file): sessions
 * and roles (every refusal of a supervisor action audited), validation of every command, the
 * session ending after inactivity, and the HSM PIN typed at the GUI reaching the PKCS#11 worker
 * without being stored or logged.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../src/core/config';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteUserStore } from '../../src/manufacturer-db/user-store';
import { StationApiService, type ApiConnection, type CallReply } from '../../src/station/api/station-api-service';
import type { StationEvent } from '../../src/station/contract/station-api';
import { createFileLogger } from '../../src/station/pino-logger';
import { createStation, databasePath } from '../../src/station/station';
import { testDir } from '../helpers/station-cli';

let dir: string;
let dataDir: string;
let hsmPin: string;
let service: StationApiService;
let now = Date.parse('2026-01-05T08:00:00Z');
const IDLE_MS = 60_000;

function client(): { conn: ApiConnection; events: StationEvent[]; call: (command: string, args?: unknown) => Promise<CallReply> } {
  const events: StationEvent[] = [];
  const conn = service.connect({ label: 'test', send: (e) => events.push(e) });
  return { conn, events, call: (command, args = {}) => conn.call(command, args) };
}

function auditTypes(): { type: string; data: string }[] {
  const db = openDatabase(databasePath(dataDir));
  try {
    return db.prepare('SELECT type, data FROM audit_events ORDER BY seq').all() as { type: string; data: string }[];
  } finally {
    db.close();
  }
}

describe('StationApiService', () => {
  beforeAll(async () => {
    dir = testDir('api');
    dataDir = join(dir, 'data');
    process.env.SOFTHSM2_CONF = join(dataDir, 'softhsm2.conf');
    delete process.env.STATION_HSM_PIN;
    await createStation(parseStationConfig(defaultStationConfig(), 'defaults'), { dataDir, log: createFileLogger(join(dir, 'pki.log'), {}) }).pkiInit();
    hsmPin = readFileSync(join(dataDir, 'hsm-pin'), 'utf8').trim();
    // the GUI's station has no PIN source it can read: the operator must type the PIN
    const config = parseStationConfig({ ...defaultStationConfig(), hsm: { ...defaultStationConfig().hsm, pin: { env: 'GUI_TEST_UNSET_HSM_PIN' } } }, 'test');
    const log = createFileLogger(join(dir, 'station.log'), {});
    const station = createStation(config, { dataDir, log });
    service = await StationApiService.start({ station, log, outDir: dir, idleTimeoutMs: IDLE_MS, now: () => new Date(now) });
  });

  afterAll(() => service?.stop());

  it('asks for users first, then refuses everything but sign-in until one signs in', async () => {
    const c = client();
    expect(await c.call('signIn', { username: 'olive', pin: '2468' })).toMatchObject({ ok: false, error: { code: 'NO_USERS' } });
    const db = openDatabase(databasePath(dataDir));
    const users = new SqliteUserStore(db, 'station-1', { hashParams: { N: 1024, r: 8, p: 1, keyLen: 32 } });
    await users.addUser({ username: 'olive', role: 'operator', pin: '2468', by: 'test' });
    await users.addUser({ username: 'sam', role: 'supervisor', pin: '97531', by: 'test' });
    db.close();
    expect(await c.call('status')).toMatchObject({ ok: false, error: { code: 'SIGN_IN_REQUIRED' } });
    expect(await c.call('signIn', { username: 'olive', pin: '1111' })).toMatchObject({ ok: false, error: { code: 'SIGN_IN_FAILED', message: expect.stringContaining('4 attempts left') } });
    expect(await c.call('signIn', { username: 'olive', pin: '2468' })).toMatchObject({ ok: true, value: { username: 'olive', role: 'operator', idleTimeoutS: 60 } });
    expect(await c.call('status')).toMatchObject({ ok: true, value: { hsm: { state: 'pin-required' }, workOrder: null } });
  });

  it('validates every message against its schema and names the bad field, never echoing a PIN', async () => {
    const c = client();
    expect(await c.call('signIn', { username: 'olive', pin: '12' })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('pin') } });
    expect(await c.call('signIn', { username: 'olive', pin: '2468', admin: true })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(await c.call('dropTables', {})).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', message: 'Unknown command "dropTables".' } });
    expect(await c.call('getDevice', { serial: "x'; DROP TABLE devices; --" })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    const r = await c.call('enterHsmPin', { pin: 'abc' });
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('abc');
  });

  it('lets an operator pick the first work order but not change it, nor reprint, rework or retire; each refusal is audited', async () => {
    const op = client();
    await op.call('signIn', { username: 'olive', pin: '2468' });
    expect(await op.call('selectWorkOrder', { workOrderId: 'WO-DEMO-1' })).toMatchObject({ ok: true, value: { workOrder: { id: 'WO-DEMO-1', serialFirst: 'DEMO-000001' } } });
    expect(await op.call('selectWorkOrder', { workOrderId: 'WO-DEMO-DEVKEY' })).toMatchObject({ ok: false, error: { code: 'SUPERVISOR_REQUIRED', message: 'Only a supervisor can change the work order. Ask a supervisor to sign in.' } });
    for (const [command, args] of [
      ['reprintLabel', { serial: 'DEMO-000001', reason: 'torn label' }],
      ['reworkDevice', { serial: 'DEMO-000001', reason: 'bent pin' }],
      ['retireSerial', { serial: 'DEMO-000001', reason: 'dropped' }],
    ] as const) {
      expect(await op.call(command, args)).toMatchObject({ ok: false, error: { code: 'SUPERVISOR_REQUIRED' } });
    }
    const denied = auditTypes().filter((e) => e.type === 'access.denied').map((e) => JSON.parse(e.data) as { command: string; username: string });
    expect(denied.map((d) => d.command)).toEqual(['selectWorkOrder', 'reprintLabel', 'reworkDevice', 'retireSerial']);
    const sup = client();
    await sup.call('signIn', { username: 'sam', pin: '97531' });
    expect(await sup.call('selectWorkOrder', { workOrderId: 'WO-DEMO-DEVKEY' })).toMatchObject({ ok: true, value: { workOrder: { id: 'WO-DEMO-DEVKEY' } } });
    expect(await sup.call('reprintLabel', { serial: 'DEMO-000001', reason: 'torn label' })).toMatchObject({ ok: false, error: { code: 'DEVICE_UNKNOWN' } });
    const changed = auditTypes().find((e) => e.type === 'work-order.changed');
    expect(JSON.parse(changed!.data)).toMatchObject({ workOrder: 'WO-DEMO-DEVKEY', previous: 'WO-DEMO-1', by: 'sam', role: 'supervisor' });
    expect(op.events.some((e) => e.type === 'work-order.selected')).toBe(true);
  });

  it('ends a session after the idle time; screens refreshing on their own do not keep it alive', async () => {
    const c = client();
    await c.call('signIn', { username: 'olive', pin: '2468' });
    now += IDLE_MS / 2;
    expect((await c.call('status')).ok).toBe(true); // passive: does not count as activity
    now += IDLE_MS / 2 + 1;
    expect(await c.call('listWorkOrders')).toMatchObject({ ok: false, error: { code: 'SIGN_IN_REQUIRED' } });
    expect(c.events).toContainEqual({ type: 'session.ended', reason: 'inactivity' });
    expect(auditTypes().some((e) => e.type === 'user.session-expired')).toBe(true);
  });

  it('takes the HSM PIN typed at the GUI to the PKCS#11 worker only: a wrong one is refused, the right one unlocks, neither is logged or stored', async () => {
    const c = client();
    await c.call('signIn', { username: 'olive', pin: '2468' });
    expect(await c.call('startRun', {})).toMatchObject({ ok: false, error: { code: 'HSM_NOT_READY', message: expect.stringContaining('enter its PIN') } });
    expect(await c.call('enterHsmPin', { pin: 'wrong-pin-1234' })).toMatchObject({ ok: false, error: { code: 'HSM_LOGIN_FAILED' } });
    expect(await c.call('enterHsmPin', { pin: hsmPin })).toMatchObject({ ok: true, value: { state: 'ready' } });
    expect(c.events).toContainEqual(expect.objectContaining({ type: 'hsm.changed', hsm: expect.objectContaining({ state: 'ready' }) }));
    expect(await c.call('enterHsmPin', { pin: hsmPin })).toMatchObject({ ok: false, error: { code: 'HSM_READY' } });
    const audit = auditTypes();
    expect(audit.map((e) => e.type)).toEqual(expect.arrayContaining(['hsm.unlock-failed', 'hsm.unlocked']));
    const everything = readFileSync(join(dir, 'station.log'), 'utf8') + JSON.stringify(audit) + readFileSync(databasePath(dataDir)).toString('latin1');
    expect(everything).not.toContain(hsmPin);
    expect(everything).not.toContain('wrong-pin-1234');
  });
});
