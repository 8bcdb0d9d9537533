/**
 * MACs from the station's blocks (products.<p>.macSource = block): allocated with the serial in
 * one transaction, consecutive, in order, never twice (across reopen, a failed device, a MAC some
 * device reported itself); exhaustion names the block and uses no serial; imports refuse
 * overlaps and group addresses.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import type { BlockAssignment } from '../../../src/manufacturer-db/blocks';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';

const wo: WorkOrder = { ...defaultStationConfig().workOrders[0]!, serial: { prefix: 'M-', width: 4, first: 1, last: 50 } };
const PRODUCT = wo.product;

function open(path: string, stationId = 'st-1'): SqliteRecordStore {
  const store = new SqliteRecordStore(openDatabase(path), stationId);
  store.ensureWorkOrder(wo);
  return store;
}

function fresh(blocks: BlockAssignment[]): { store: SqliteRecordStore; path: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'macdb-')), 'station.db');
  const store = open(path);
  store.blocks.importBlocks(blocks, 'tester');
  store.startRun('run-1', wo.id);
  return { store, path };
}

const block = (first: string, last: string, extra: Partial<BlockAssignment> = {}): BlockAssignment => ({ kind: 'mac', stationId: 'st-1', first, last, product: PRODUCT, ...extra });

function allocate(store: SqliteRecordStore, count = 1, macs: string[] = []): string {
  return store.allocateDevice({ runId: 'run-1', workOrder: wo, port: '/dev/x', hardwareId: 'hw', model: 'M', firmwareVersion: '1', macs, method: 'on-device-keygen', macBlock: { product: PRODUCT, count } });
}

describe('MAC blocks', () => {
  it('gives consecutive MACs in order with the serial, never twice across reopen and a failed device', () => {
    const { store, path } = fresh([block('02:00:5e:00:00:00', '02:00:5e:00:00:09')]);
    const s1 = allocate(store, 2);
    expect(store.blocks.macsOf(s1)).toEqual(['02005e000000', '02005e000001']);
    // a failed device keeps (burns) its MACs
    store.markFailed(s1, 'run-1', { code: 'X', message: 'failed', stage: 'verify' }, [], 'rework');
    store.close();
    const again = open(path);
    again.startRun('run-2', wo.id);
    const s2 = allocate(again, 2);
    expect(s2).not.toBe(s1);
    expect(again.blocks.macsOf(s2)).toEqual(['02005e000002', '02005e000003']);
    expect(again.blocks.macsOf(s1)).toEqual(['02005e000000', '02005e000001']);
    expect(again.blocks.macBlocks()[0]).toMatchObject({ first: '02005e000000', last: '02005e000009', next: '02005e000004', remaining: 6 });
    expect(verifyAuditChain(again.db).ok).toBe(true);
    // the pointer never moves back (trigger)
    expect(() => again.db.prepare('UPDATE mac_blocks SET next = first').run()).toThrow(/never gives an address twice/);
    again.close();
  });

  it('skips an address a device already holds and takes blocks for the product before shared ones', () => {
    const { store } = fresh([block('02:00:5e:00:01:00', '02:00:5e:00:01:03', { product: undefined }), block('02:00:5e:00:00:00', '02:00:5e:00:00:03')]);
    // a device-source product reported 02005e000001 itself
    store.allocateDevice({ runId: 'run-1', workOrder: wo, port: '/dev/x', hardwareId: 'hw', model: 'M', firmwareVersion: '1', macs: ['02005e000001'], method: 'on-device-keygen' });
    const s = allocate(store, 2);
    expect(store.blocks.macsOf(s)).toEqual(['02005e000002', '02005e000003']);
    // the product's block is used up: the shared block follows
    expect(store.blocks.macsOf(allocate(store, 1))).toEqual(['02005e000100']);
    store.close();
  });

  it('exhaustion: MAC_BLOCK_EXHAUSTED naming the block, at assign, and no serial is used', () => {
    const { store } = fresh([block('02:00:5e:00:00:00', '02:00:5e:00:00:02')]);
    expect(allocate(store, 2)).toBe('M-0001');
    let err: unknown;
    try {
      allocate(store, 2); // one address left, two needed
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'MAC_BLOCK_EXHAUSTED', stage: 'assign' });
    expect((err as Error).message).toContain('02:00:5e:00:00:00..02:00:5e:00:00:02 (product demo-sensor) of station st-1 has no 2 consecutive addresses left');
    expect((err as Error).message).toContain('station db import-blocks');
    // the last address still serves a device that takes one
    expect(allocate(store, 1)).toBe('M-0002');
    expect(store.blocks.macsOf('M-0002')).toEqual(['02005e000002']);
    expect(() => allocate(store, 1)).toThrow(expect.objectContaining({ code: 'MAC_BLOCK_EXHAUSTED' }));
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM devices').get()).toEqual({ n: 2 });
    store.close();
  });

  it('without a block for the station and product: MAC_BLOCK_EXHAUSTED saying so', () => {
    const { store } = fresh([block('02:00:5e:00:00:00', '02:00:5e:00:00:02', { stationId: 'st-2' }), block('02:00:5e:00:01:00', '02:00:5e:00:01:02', { product: 'other' })]);
    expect(() => allocate(store)).toThrow(/no MAC block is assigned to station st-1 for product demo-sensor/);
    store.close();
  });

  it('ensureDeviceMacs: a serial a method claimed gets its MACs once; asking again returns the same', () => {
    const { store } = fresh([block('02:00:5e:00:00:00', '02:00:5e:00:00:09')]);
    const serial = store.allocateDevice({ runId: 'run-1', workOrder: wo, port: '/dev/x', hardwareId: 'hw', model: 'M', firmwareVersion: '1', macs: [], method: 'factory-injected-key' });
    expect(store.blocks.ensureDeviceMacs(serial, PRODUCT, 3)).toEqual(['02005e000000', '02005e000001', '02005e000002']);
    expect(store.blocks.ensureDeviceMacs(serial, PRODUCT, 3)).toEqual(['02005e000000', '02005e000001', '02005e000002']);
    expect(store.blocks.macBlocks()[0]!.next).toBe('02005e000003');
    store.close();
  });

  it('refuses an overlapping block (all or nothing) and a block of group addresses or across first octets', () => {
    const { store } = fresh([block('02:00:5e:00:00:00', '02:00:5e:00:00:ff')]);
    expect(() => store.blocks.importBlocks([block('02:00:5e:00:01:00', '02:00:5e:00:01:ff'), block('02:00:5e:00:00:80', '02:00:5e:00:01:7f', { stationId: 'st-2' })], 'tester')).toThrow(
      expect.objectContaining({ code: 'BLOCK_OVERLAP' }),
    );
    expect(store.blocks.macBlocks()).toHaveLength(1);
    expect(() => store.blocks.importBlocks([block('01:00:5e:00:00:00', '01:00:5e:00:00:ff')], 'tester')).toThrow(expect.objectContaining({ code: 'BLOCK_INVALID' }));
    expect(() => store.blocks.importBlocks([block('02:ff:ff:ff:ff:00', '03:00:00:00:00:ff')], 'tester')).toThrow(/unicast/);
    store.close();
  });
});
