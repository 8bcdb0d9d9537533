/**
 * A record store on a fresh database file with one work order (serials `<prefix>0001`..) and one
 * started run `run-1`, and devices to allocate in it: for the group-commit and issuance-journal
 * tests.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultStationConfig, type WorkOrder } from '../../src/core/config';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../src/manufacturer-db/sqlite-record-store';

export const demoProduct = defaultStationConfig().products['demo-sensor']!;

/** The default work order, its serials `<prefix>0001`..`<prefix>9999`. */
export function journalWorkOrder(serialPrefix: string): WorkOrder {
  return { ...defaultStationConfig().workOrders[0]!, serial: { prefix: serialPrefix, width: 4, first: 1, last: 9999 } };
}

export function openJournalStore(workOrder: WorkOrder): { store: SqliteRecordStore; path: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'journal-store-')), 'station.db');
  const store = new SqliteRecordStore(openDatabase(path), 'st-1');
  store.ensureWorkOrder(workOrder);
  store.startRun('run-1', workOrder.id);
  return { store, path };
}

let devices = 0;

/** allocateDevice's input for a new device of the work order (its own hardware id and MAC). */
export function newDeviceInput(workOrder: WorkOrder): Parameters<SqliteRecordStore['allocateDevice']>[0] {
  const n = devices++;
  return {
    runId: 'run-1',
    workOrder,
    port: '/dev/x',
    hardwareId: `hw-${n}`,
    model: demoProduct.model,
    firmwareVersion: '1',
    macs: [`020000${n.toString(16).padStart(6, '0')}`],
    method: 'secure-element-keygen',
  };
}
