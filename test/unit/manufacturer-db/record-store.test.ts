import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { MIGRATIONS } from '../../../src/manufacturer-db/migrations';
import { currentSchemaVersion, migrate, openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';

const wo: WorkOrder = { ...defaultStationConfig().workOrders[0]!, serial: { prefix: 'T-', width: 4, first: 1, last: 3 } };

function freshStore(path = join(mkdtempSync(join(tmpdir(), 'db-')), 'station.db')) {
  const store = new SqliteRecordStore(openDatabase(path), 'st-1');
  store.ensureWorkOrder(wo);
  store.startRun('run-1', wo.id);
  return { store, path };
}

let macCounter = 0;
function allocate(store: SqliteRecordStore, macs = [`02000000${(macCounter++).toString(16).padStart(4, '0')}`]) {
  return store.allocateDevice({ runId: 'run-1', workOrder: wo, port: '/dev/x', hardwareId: 'hw', model: 'M', firmwareVersion: '1', macs, method: 'secure-element-keygen' });
}

describe('manufacturer database', () => {
  it('opens in WAL mode with synchronous=FULL at the latest schema', () => {
    const { store } = freshStore();
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(currentSchemaVersion(store.db)).toBe(Math.max(...MIGRATIONS.map((m) => m.version)));
  });

  it('upgrades an existing database and keeps its data', () => {
    const { store, path } = freshStore();
    const serial = allocate(store);
    store.close();
    const db = new BetterSqlite3(path);
    const next = [...MIGRATIONS, { version: 99, name: 'test column', sql: 'ALTER TABLE devices ADD COLUMN note TEXT' }];
    expect(migrate(db, next)).toEqual({ from: MIGRATIONS.length, to: 99 });
    expect((db.prepare('SELECT serial, note FROM devices').get() as { serial: string; note: null })).toEqual({ serial, note: null });
    db.close();
    expect(() => openDatabase(path)).toThrow(expect.objectContaining({ code: 'DB_SCHEMA_TOO_NEW' }));
  });

  it('allocates serials in order, never twice, across reopen, until the range is exhausted', () => {
    const { store, path } = freshStore();
    expect(allocate(store)).toBe('T-0001');
    expect(allocate(store)).toBe('T-0002');
    store.close();
    const reopened = new SqliteRecordStore(openDatabase(path), 'st-1');
    reopened.ensureWorkOrder(wo);
    expect(allocate(reopened)).toBe('T-0003');
    expect(() => allocate(reopened)).toThrow(expect.objectContaining({ code: 'SERIAL_RANGE_EXHAUSTED', stage: 'assign' }));
    reopened.close();
  });

  it('refuses a MAC that already belongs to a device, without using a serial', () => {
    const { store } = freshStore();
    allocate(store, ['02aabbccddee']);
    expect(() => allocate(store, ['02aabbccddee'])).toThrow(expect.objectContaining({ code: 'MAC_ALREADY_USED' }));
    expect(allocate(store)).toBe('T-0002');
  });

  it('refuses a work order whose serial format changed', () => {
    const { store } = freshStore();
    expect(() => store.ensureWorkOrder({ ...wo, serial: { ...wo.serial, prefix: 'U-' } })).toThrow(expect.objectContaining({ code: 'WORK_ORDER_CONFLICT' }));
  });

  it('voids the certificate of a device that fails after issuance, and chains every event', () => {
    const { store } = freshStore();
    const serial = allocate(store);
    store.recordIssued({ certificateSerialHex: 'aa01', deviceSerial: serial, workOrderId: wo.id, certificateDer: Buffer.from([1]), publicKeySha256Hex: 'ff', issuedAt: new Date() });
    expect(() => store.recordIssued({ certificateSerialHex: 'aa02', deviceSerial: serial, workOrderId: wo.id, certificateDer: Buffer.from([2]), publicKeySha256Hex: 'ff', issuedAt: new Date() })).toThrow(
      expect.objectContaining({ code: 'DEVICE_STATE_CONFLICT' }),
    );
    store.markFailed(serial, 'run-1', { code: 'CHALLENGE_FAILED', message: 'x', stage: 'verify' }, []);
    const rec = store.getDevice(serial)!;
    expect(rec.status).toBe('failed');
    expect(rec.certificateStatus).toBe('void');
    expect(rec.disposition).toBe('rework');
    expect(verifyAuditChain(store.db)).toMatchObject({ ok: true });
  });

  it('keeps the audit table append-only, and verify names the first break', () => {
    const { store } = freshStore();
    allocate(store);
    expect(() => store.db.prepare("UPDATE audit_events SET type = 'x' WHERE seq = 1").run()).toThrow(/append-only/);
    expect(() => store.db.prepare('DELETE FROM audit_events WHERE seq = 2').run()).toThrow(/append-only/);
    // someone with file access drops the trigger and edits an event
    store.db.exec('DROP TRIGGER audit_events_no_update');
    store.db.prepare("UPDATE audit_events SET data = '{}' WHERE seq = 2").run();
    expect(verifyAuditChain(store.db)).toMatchObject({ ok: false, firstBreak: { seq: 2 } });
  });
});
