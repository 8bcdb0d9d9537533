/**
 * Issuance intents (migration 3): written before the HSM signs, closed by recordIssued, closed as
 * abandoned when the device fails, and resolved at the next start when the process died in
 * between (device failed, ISSUANCE_INTERRUPTED, rework, audit event).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import type { Signer } from '../../../src/core/ports/signer';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { MIGRATIONS } from '../../../src/manufacturer-db/migrations';
import { currentSchemaVersion, migrate, openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { ISSUANCE_INTERRUPTED, SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import { makeSoftwareCa, newKeyPair, softwareSigner } from '../../helpers/test-certs';

const demo = defaultStationConfig().products['demo-sensor']!;
const wo: WorkOrder = { ...defaultStationConfig().workOrders[0]!, serial: { prefix: 'I-', width: 4, first: 1, last: 99 } };
let mac = 0;

function dbPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'intents-')), 'station.db');
}
function openStore(path: string, stationId = 'st-1'): SqliteRecordStore {
  const s = new SqliteRecordStore(openDatabase(path), stationId);
  s.ensureWorkOrder(wo);
  return s;
}
function allocate(s: SqliteRecordStore, runId = 'run-1'): string {
  return s.allocateDevice({ runId, workOrder: wo, port: '/dev/x', hardwareId: `hw-${mac}`, model: demo.model, firmwareVersion: '1', macs: [`02000001${(mac++).toString(16).padStart(4, '0')}`], method: 'secure-element-keygen' });
}
const intents = (s: SqliteRecordStore) =>
  s.db.prepare('SELECT certificate_serial, device_serial, state, resolved_at FROM issuance_intents ORDER BY created_at, certificate_serial').all() as {
    certificate_serial: string;
    device_serial: string;
    state: string;
    resolved_at: string | null;
  }[];

describe('migration 3', () => {
  it('upgrades a version-2 database, keeps its data, and indexes certificates by public key', () => {
    const path = dbPath();
    const raw = new BetterSqlite3(path);
    migrate(raw, MIGRATIONS.filter((m) => m.version <= 2));
    expect(currentSchemaVersion(raw)).toBe(2);
    raw.close();
    const v2 = new SqliteRecordStore(openDatabase(path), 'st-1'); // opening migrates to 3
    expect(currentSchemaVersion(v2.db)).toBe(Math.max(...MIGRATIONS.map((m) => m.version))); // 3 and every later one
    v2.ensureWorkOrder(wo);
    v2.startRun('run-1', wo.id);
    const serial = allocate(v2);
    expect(v2.getDevice(serial)?.status).toBe('assigned');
    const plan = v2.db.prepare("EXPLAIN QUERY PLAN SELECT device_serial FROM certificates WHERE public_key_sha256 = ? AND status = 'active'").all('x') as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toContain('certificates_public_key');
    v2.close();
  });

  it('leaves migrations 1 and 2 as shipped', () => {
    // A shipped migration never changes: its SQL is part of every database made with it.
    const digest = (v: number) => createHash('sha256').update(MIGRATIONS.find((m) => m.version === v)!.sql).digest('hex').slice(0, 16);
    expect([digest(1), digest(2)]).toEqual(['a4e89fecd768c49c', 'c37f6c633fabab4f']);
  });
});

describe('issuance intents', () => {
  it('the issuer writes the intent before signing; recordIssued closes it', async () => {
    const s = openStore(dbPath());
    s.startRun('run-1', wo.id);
    const serial = allocate(s);
    const ca = await makeSoftwareCa('Intent CA');
    const base = softwareSigner(ca.key, ca.spki);
    const seenAtSign: { state: string }[][] = [];
    const signer: Signer = { ...base, sign: async (d) => (seenAtSign.push(intents(s)), base.sign(d)) };
    const issued = await new IdevidIssuer(signer, [ca.certificate], s).issue({ spki: newKeyPair().spki, serial, model: demo.model, workOrderId: wo.id, profile: demo.idevid });
    expect(seenAtSign).toEqual([[expect.objectContaining({ certificate_serial: issued.certificateSerialHex, device_serial: serial, state: 'pending', resolved_at: null })]]);
    expect(intents(s)).toEqual([expect.objectContaining({ certificate_serial: issued.certificateSerialHex, state: 'issued', resolved_at: expect.any(String) })]);
    expect(s.getDevice(serial)).toMatchObject({ status: 'issued', certificateSerial: issued.certificateSerialHex });
    expect(s.resolveDanglingIntents()).toEqual([]);
    s.close();
  });

  it('refuses an intent for a device that is not waiting for a certificate', () => {
    const s = openStore(dbPath());
    s.startRun('run-1', wo.id);
    const serial = allocate(s);
    s.markFailed(serial, 'run-1', { code: 'DEVICE_TIMEOUT', message: 'x', stage: 'obtain-key' }, []);
    const intent = { certificateSerialHex: '01', deviceSerial: serial, workOrderId: wo.id, publicKeySha256Hex: 'aa', at: new Date() };
    expect(() => s.recordIntent(intent)).toThrow(expect.objectContaining({ code: 'DEVICE_STATE_CONFLICT' }));
    expect(() => s.recordIntent({ ...intent, deviceSerial: 'I-9999' })).toThrow(expect.objectContaining({ code: 'DEVICE_UNKNOWN' }));
    expect(intents(s)).toEqual([]);
    s.close();
  });

  it('a crash between intent and recordIssued: at the next start the device is failed (ISSUANCE_INTERRUPTED, rework) and audited', async () => {
    const path = dbPath();
    const s = openStore(path);
    s.startRun('run-1', wo.id);
    const done = allocate(s);
    const victim = allocate(s);
    const ca = await makeSoftwareCa('Crash CA');
    const base = softwareSigner(ca.key, ca.spki);
    await new IdevidIssuer(base, [ca.certificate], s).issue({ spki: newKeyPair().spki, serial: done, model: demo.model, workOrderId: wo.id, profile: demo.idevid });

    // The HSM is signing when the process dies: sign() never returns, recordIssued never runs.
    let signing!: () => void;
    const signStarted = new Promise<void>((r) => (signing = r));
    const dying: Signer = { ...base, sign: () => (signing(), new Promise<Buffer>(() => undefined)) };
    void new IdevidIssuer(dying, [ca.certificate], s).issue({ spki: newKeyPair().spki, serial: victim, model: demo.model, workOrderId: wo.id, profile: demo.idevid });
    await signStarted;
    s.db.close(); // the process is gone; only what was committed survives

    const restarted = openStore(path);
    const pendingBefore = intents(restarted).filter((i) => i.state === 'pending');
    expect(pendingBefore).toEqual([expect.objectContaining({ device_serial: victim })]);
    const resolved = restarted.resolveDanglingIntents();
    expect(resolved).toEqual([
      { deviceSerial: victim, certificateSerialHex: pendingBefore[0]!.certificate_serial, publicKeySha256Hex: expect.stringMatching(/^[0-9a-f]{64}$/), intendedAt: expect.any(String), deviceMarkedFailed: true },
    ]);
    expect(restarted.getDevice(victim)).toMatchObject({
      status: 'failed',
      disposition: 'rework',
      certificateSerial: null,
      error: { code: ISSUANCE_INTERRUPTED, stage: 'issue', message: expect.stringContaining(pendingBefore[0]!.certificate_serial) },
    });
    expect(restarted.getDevice(done)).toMatchObject({ status: 'issued', error: null });
    expect(intents(restarted).map((i) => [i.device_serial, i.state])).toEqual(
      expect.arrayContaining([
        [done, 'issued'],
        [victim, 'interrupted'],
      ]),
    );
    expect((restarted.db.prepare('SELECT COUNT(*) AS n FROM certificates WHERE device_serial = ?').get(victim) as { n: number }).n).toBe(0);
    const event = restarted.db.prepare("SELECT serial, data FROM audit_events WHERE type = 'issuance.interrupted'").get() as { serial: string; data: string };
    expect(event.serial).toBe(victim);
    expect(JSON.parse(event.data)).toMatchObject({ certificateSerial: pendingBefore[0]!.certificate_serial, code: ISSUANCE_INTERRUPTED, deviceMarkedFailed: true, disposition: 'rework' });
    expect(verifyAuditChain(restarted.db).ok).toBe(true);
    // resolved once: a second start finds nothing
    expect(restarted.resolveDanglingIntents()).toEqual([]);
    restarted.close();
  });

  it('a signing failure leaves no dangling intent: markFailed closes it as abandoned', async () => {
    const s = openStore(dbPath());
    s.startRun('run-1', wo.id);
    const serial = allocate(s);
    const ca = await makeSoftwareCa('Fail CA');
    const failing: Signer = { ...softwareSigner(ca.key, ca.spki), sign: async () => Promise.reject(new Error('CKR_DEVICE_ERROR')) };
    await expect(new IdevidIssuer(failing, [ca.certificate], s).issue({ spki: newKeyPair().spki, serial, model: demo.model, workOrderId: wo.id, profile: demo.idevid })).rejects.toMatchObject({
      code: 'CA_ISSUE_FAILED',
    });
    expect(intents(s).map((i) => i.state)).toEqual(['pending']);
    s.markFailed(serial, 'run-1', { code: 'CA_ISSUE_FAILED', message: 'x', stage: 'issue' }, []);
    expect(intents(s).map((i) => i.state)).toEqual(['abandoned']);
    const ev = s.db.prepare("SELECT data FROM audit_events WHERE type = 'device.failed'").get() as { data: string };
    expect(JSON.parse(ev.data)).toMatchObject({ intentsAbandoned: 1 });
    expect(s.resolveDanglingIntents()).toEqual([]);
    s.close();
  });

  it('closes an intent whose device already moved on without touching the device; only its own station\'s intents', () => {
    const path = dbPath();
    const s = openStore(path);
    s.startRun('run-1', wo.id);
    const failedEarlier = allocate(s);
    const otherStations = allocate(s);
    s.recordIntent({ certificateSerialHex: 'a1', deviceSerial: failedEarlier, workOrderId: wo.id, publicKeySha256Hex: 'k1', at: new Date() });
    s.recordIntent({ certificateSerialHex: 'a2', deviceSerial: otherStations, workOrderId: wo.id, publicKeySha256Hex: 'k2', at: new Date() });
    s.db.prepare("UPDATE issuance_intents SET station_id = 'st-2' WHERE certificate_serial = 'a2'").run();
    // marked failed behind the journal's back (e.g. by an older station version): intent still pending
    s.db.prepare("UPDATE devices SET status = 'failed', error_code = 'DEVICE_TIMEOUT' WHERE serial = ?").run(failedEarlier);
    expect(s.resolveDanglingIntents()).toEqual([expect.objectContaining({ deviceSerial: failedEarlier, deviceMarkedFailed: false })]);
    expect(s.getDevice(failedEarlier)).toMatchObject({ status: 'failed', error: expect.objectContaining({ code: 'DEVICE_TIMEOUT' }) });
    expect(intents(s).map((i) => [i.certificate_serial, i.state])).toEqual([
      ['a1', 'interrupted'],
      ['a2', 'pending'],
    ]);
    expect(s.getDevice(otherStations)?.status).toBe('assigned');
    s.close();
  });
});
