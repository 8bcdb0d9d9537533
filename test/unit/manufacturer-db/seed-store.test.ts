/**
 * Method 5's seed records on a real SQLite file: atomic, idempotent import with SEED_CONFLICT,
 * binding rules (unknown, used, bound to a device in progress, re-taken after its device failed),
 * used for good after the record, and every change in the audit chain.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import type { SealedSeed } from '../../../src/core/ports/seed-vault';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { SqliteSeedStore } from '../../../src/manufacturer-db/seed-store';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';

const wo: WorkOrder = { ...defaultStationConfig().workOrders.find((w) => w.method === 'seed-derived')!, serial: { prefix: 'S-', width: 4, first: 1, last: 99 } };

function stores() {
  const records = new SqliteRecordStore(openDatabase(join(mkdtempSync(join(tmpdir(), 'seed-db-')), 'station.db')), 'st-1');
  records.ensureWorkOrder(wo);
  records.startRun('run-1', wo.id);
  let mac = 0;
  const allocate = () =>
    records.allocateDevice({ runId: 'run-1', workOrder: wo, port: '/dev/x', hardwareId: 'hw', model: 'M', firmwareVersion: '1', macs: [`0200000000${(mac++).toString(16).padStart(2, '0')}`], method: 'seed-derived' });
  return { records, seeds: new SqliteSeedStore(records.db, 'st-1'), allocate };
}

const chip = (id: string, key = `${id}-key`): SealedSeed => ({ chipId: id, sealed: Buffer.from(`sealed-${id}`), publicKeySha256: key.padEnd(64, '0') });
const file = (chips: SealedSeed[], fileSha256 = 'f'.repeat(64)) => ({ fileSha256, recipientKeyId: 'k'.repeat(64), vendor: 'V', lot: 'L', createdAt: '2026-01-01T00:00:00Z', chips, operator: 'tester' });

describe('SqliteSeedStore', () => {
  it('imports idempotently, and refuses a conflicting seed without importing anything', () => {
    const { seeds, records } = stores();
    expect(seeds.importSeeds(file([chip('aa'), chip('bb')]))).toEqual({ added: 2, alreadyPresent: 0 });
    expect(seeds.importSeeds(file([chip('aa'), chip('cc')]))).toEqual({ added: 1, alreadyPresent: 1 });
    expect(() => seeds.importSeeds(file([chip('dd'), chip('bb', 'another-key')]))).toThrow(expect.objectContaining({ code: 'SEED_CONFLICT' }));
    expect(seeds.findSeed('dd')).toBeUndefined();
    expect(seeds.counts()).toEqual({ available: 3, used: 0 });
    expect(seeds.findSeed('aa')).toMatchObject({ chipId: 'aa', state: 'available', boundSerial: null, vendor: 'V', lot: 'L', sealed: Buffer.from('sealed-aa') });
    const events = records.db.prepare("SELECT data FROM audit_events WHERE type = 'seeds.imported'").all() as { data: string }[];
    expect(events.map((e) => JSON.parse(e.data) as { added: number })).toMatchObject([{ added: 2 }, { added: 1, alreadyPresent: 1 }]);
  });

  it('binds a chip to one device at a time, lets a failed device\'s chip be taken again, and never a used one', () => {
    const { seeds, records, allocate } = stores();
    seeds.importSeeds(file([chip('aa')]));
    expect(seeds.bindSeed('ff', 'S-0001')).toEqual({ ok: false, reason: 'unknown' });

    const first = allocate();
    expect(seeds.bindSeed('aa', first)).toMatchObject({ ok: true, record: { boundSerial: first } });
    const second = allocate();
    expect(seeds.bindSeed('aa', second)).toEqual({ ok: false, reason: 'bound', holder: first });

    records.markFailed(first, 'run-1', { code: 'SEED_KEY_MISMATCH', message: 'm', stage: 'install' }, []);
    expect(seeds.bindSeed('aa', second)).toMatchObject({ ok: true, record: { boundSerial: second } });
    expect(() => seeds.markSeedUsed('aa', first)).toThrow(expect.objectContaining({ code: 'SEED_STATE_CONFLICT' }));
    seeds.markSeedUsed('aa', second);
    expect(seeds.findSeed('aa')).toMatchObject({ state: 'used', boundSerial: second });
    expect(seeds.bindSeed('aa', allocate())).toEqual({ ok: false, reason: 'used', holder: second });
    expect(seeds.counts()).toEqual({ available: 0, used: 1 });

    const types = (records.db.prepare("SELECT type FROM audit_events WHERE type LIKE 'seed%' ORDER BY seq").all() as { type: string }[]).map((r) => r.type);
    expect(types).toEqual(['seeds.imported', 'seed.bound', 'seed.bound', 'seed.used']);
    expect(verifyAuditChain(records.db).ok).toBe(true);
  });
});
