/**
 * Prepared keys (migration 4) in a real SQLite file: the one-way life of a key (preparing ->
 * available -> reserved -> consumed | burned) enforced by the store and by the database itself,
 * a key never offered twice, the device record a claim attaches, and start-up reconciliation of
 * what a stop left half-way. Certificates come from the station's IdevidIssuer with a software CA;
 * the wrapped blobs are random bytes (the store never looks inside them).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import type { WrappedDeviceKey } from '../../../src/core/ports/key-injection';
import type { DeviceAttachment } from '../../../src/core/ports/prepared-keys';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { INJECTION_INTERRUPTED, PREPARED_KEYS_EXHAUSTED, SqlitePreparedKeyStore } from '../../../src/manufacturer-db/prepared-key-store';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import { makeSoftwareCa, newKeyPair, softwareSigner } from '../../helpers/test-certs';

const config = defaultStationConfig();
const wo: WorkOrder = { ...config.workOrders.find((w) => w.id === 'WO-DEMO-INJECT')!, serial: { prefix: 'PK-', width: 4, first: 1, last: 50 } };
const product = config.products[wo.product]!;

let macs = 0;
function device(hardwareId: string, runId = 'run-line'): DeviceAttachment {
  return { runId, port: '/dev/ttyX', hardwareId, model: product.model, firmwareVersion: '1.0.0', macs: [`02bb0000${(macs++).toString(16).padStart(4, '0')}`] };
}

function wrapped(): WrappedDeviceKey {
  return { spki: newKeyPair().spki, wrappedKey: randomBytes(80) };
}

describe('SqlitePreparedKeyStore', () => {
  let records: SqliteRecordStore;
  let keys: SqlitePreparedKeyStore;
  let issuer: IdevidIssuer;

  beforeEach(async () => {
    records = new SqliteRecordStore(openDatabase(join(mkdtempSync(join(tmpdir(), 'prepared-')), 'station.db')), 'st-1');
    records.ensureWorkOrder(wo);
    records.startRun('run-prep', wo.id);
    records.startRun('run-line', wo.id);
    keys = new SqlitePreparedKeyStore(records);
    const ca = await makeSoftwareCa('Prepared CA');
    issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], records);
  });

  /** What station prepare does: add as preparing (allocating device records), issue, make available. */
  async function prepare(n: number, opts: { issue?: boolean } = {}) {
    const made = Array.from({ length: n }, wrapped);
    const preparing = keys.addPreparing({
      workOrderId: wo.id,
      prepareRunId: 'run-prep',
      kekLabel: 'station-kek',
      keys: made,
      allocate: () => records.allocateDevice({ runId: 'run-prep', workOrder: wo, port: 'prepare', hardwareId: '', model: product.model, firmwareVersion: '', macs: [], method: wo.method }),
    });
    if (opts.issue === false) return { made, preparing };
    const ok = [];
    for (let i = 0; i < n; i++) {
      const issued = await issuer.issue({ spki: made[i]!.spki, serial: preparing[i]!.serial, model: product.model, workOrderId: wo.id, profile: product.idevid });
      ok.push({ id: preparing[i]!.id, certificateSerial: issued.certificateSerialHex });
    }
    keys.markAvailable(ok);
    return { made, preparing };
  }

  it('switches secure_delete on for the connection', () => {
    expect(records.db.pragma('secure_delete', { simple: true })).toBe(1);
  });

  it('offers each key once, in serial order, to one device; the claim attaches the device to the prepared record', async () => {
    const { preparing } = await prepare(3);
    expect(keys.availableCount(wo.id)).toBe(3);
    expect(records.getDevice(preparing[0]!.serial)).toMatchObject({ status: 'issued', certificateStatus: 'active', hardwareId: '' });
    const a = keys.claimNext(wo.id, device('hw-a'));
    const b = keys.claimNext(wo.id, device('hw-b'));
    expect([a.serial, b.serial]).toEqual([preparing[0]!.serial, preparing[1]!.serial]);
    expect(a).toMatchObject({ state: 'reserved', reservedFor: 'hw-a', injectedAt: null, deviceStatus: 'issued' });
    expect(records.getDevice(a.serial)).toMatchObject({ hardwareId: 'hw-a', runId: 'run-line', port: '/dev/ttyX', status: 'issued' });
    expect(keys.certificateOf(a.id).equals(records.getDevice(a.serial)!.certificateDer!)).toBe(true);
    keys.claimNext(wo.id, device('hw-c'));
    expect(() => keys.claimNext(wo.id, device('hw-d'))).toThrow(expect.objectContaining({ code: PREPARED_KEYS_EXHAUSTED, stage: 'assign' }));
    expect(keys.countsByState(wo.id)).toMatchObject({ available: 0, reserved: 3 });
  });

  it('refuses a MAC that already belongs to a device, without taking a key', async () => {
    await prepare(2);
    const d = device('hw-a');
    keys.claimNext(wo.id, d);
    expect(() => keys.claimNext(wo.id, { ...device('hw-b'), macs: d.macs })).toThrow(expect.objectContaining({ code: 'MAC_ALREADY_USED' }));
    expect(keys.availableCount(wo.id)).toBe(1);
  });

  it('does not offer keys whose certificate is not recorded yet', async () => {
    await prepare(2, { issue: false });
    expect(keys.availableCount(wo.id)).toBe(0);
    expect(() => keys.claimNext(wo.id, device('hw-a'))).toThrow(expect.objectContaining({ code: PREPARED_KEYS_EXHAUSTED }));
  });

  it('consumes only a key that left for its device, and deletes its blob', async () => {
    await prepare(1);
    const k = keys.claimNext(wo.id, device('hw-a'));
    expect(() => keys.consume(k.id, 'recorded')).toThrow(expect.objectContaining({ code: 'PREPARED_KEY_STATE_CONFLICT' }));
    expect(() => keys.markInjecting(k.id, 'hw-other')).toThrow(expect.objectContaining({ code: 'PREPARED_KEY_STATE_CONFLICT' }));
    keys.markInjecting(k.id, 'hw-a');
    keys.consume(k.id, 'recorded');
    expect(keys.get(k.id)).toMatchObject({ state: 'consumed', wrappedKey: null });
    expect(() => keys.burn(k.id, 'late')).toThrow(expect.objectContaining({ code: 'PREPARED_KEY_STATE_CONFLICT' }));
  });

  it('the database itself refuses to offer a reserved, consumed or burned key again', async () => {
    await prepare(2);
    const k = keys.claimNext(wo.id, device('hw-a'));
    const reset = (id: string, state: string) => records.db.prepare('UPDATE prepared_keys SET state = ? WHERE id = ?').run(state, id);
    expect(() => reset(k.id, 'available')).toThrow(/never goes back/);
    keys.burn(k.id, 'test');
    expect(() => reset(k.id, 'reserved')).toThrow(/never goes back/);
    expect(() => records.db.prepare("UPDATE prepared_keys SET wrapped_key = x'00' WHERE id = ?").run(k.id)).toThrow(/CHECK constraint/);
    expect(() => records.db.prepare('DELETE FROM prepared_keys WHERE id = ?').run(k.id)).toThrow(/kept/);
  });

  it('burning with failDevice fails the waiting device record and voids its certificate', async () => {
    await prepare(1);
    const k = keys.claimNext(wo.id, device('hw-a'));
    keys.burn(k.id, 'its device did not prove possession', { code: 'INJECTED_KEY_NOT_PROVEN', message: 'not proven' });
    expect(keys.get(k.id)).toMatchObject({ state: 'burned', wrappedKey: null, burnReason: 'its device did not prove possession' });
    expect(records.getDevice(k.serial)).toMatchObject({ status: 'failed', certificateStatus: 'void', disposition: 'rework' });
    expect(records.getDevice(k.serial)!.error?.code).toBe('INJECTED_KEY_NOT_PROVEN');
  });

  it('resumes a device that came back holding its key while its record still waits', async () => {
    await prepare(1);
    const k = keys.claimNext(wo.id, device('hw-a'));
    keys.markInjecting(k.id, 'hw-a');
    expect(keys.findReservedFor(wo.id, 'hw-a')?.id).toBe(k.id);
    expect(keys.findReservedFor(wo.id, 'hw-b')).toBeUndefined();
    records.startRun('run-2', wo.id);
    const again = { ...device('hw-a', 'run-2'), macs: [] };
    const r = keys.resume(k.id, again);
    expect(r).toMatchObject({ state: 'reserved', confirmedAt: expect.any(String), reservedRunId: 'run-2' });
    expect(records.getDevice(k.serial)?.runId).toBe('run-2');
  });

  it('at start: finishes or burns what a stop left half-way, and keeps keys that left for a device reserved', async () => {
    // preparing with a certificate: the stop came before markAvailable
    const a = await prepare(1, { issue: false });
    const issued = await issuer.issue({ spki: a.made[0]!.spki, serial: a.preparing[0]!.serial, model: product.model, workOrderId: wo.id, profile: product.idevid });
    // preparing without one
    const b = await prepare(1, { issue: false });
    // reserved, never sent; reserved and sent (device still waiting); reserved and sent, device verified
    await prepare(3);
    const notSent = keys.claimNext(wo.id, device('hw-1'));
    const sent = keys.claimNext(wo.id, device('hw-2'));
    keys.markInjecting(sent.id, 'hw-2');
    const verified = keys.claimNext(wo.id, device('hw-3'));
    keys.markInjecting(verified.id, 'hw-3');
    records.recordVerified({ serial: verified.serial, keyOrigin: 'hsm', publicKeySpki: verified.spki, dppUri: 'DPP:K:x;;', stages: [], runId: 'run-line' });

    const resolved = keys.resolveInterrupted();
    const action = (serial: string) => resolved.find((r) => r.serial === serial)?.action;
    expect(action(a.preparing[0]!.serial)).toBe('made-available');
    expect(keys.findBySerial(a.preparing[0]!.serial)).toMatchObject({ state: 'available', certificateSerial: issued.certificateSerialHex });
    expect(action(b.preparing[0]!.serial)).toBe('burned');
    expect(records.getDevice(b.preparing[0]!.serial)).toMatchObject({ status: 'failed', error: expect.objectContaining({ code: INJECTION_INTERRUPTED }) });
    expect(action(notSent.serial)).toBe('burned');
    expect(records.getDevice(notSent.serial)).toMatchObject({ status: 'failed', certificateStatus: 'void' });
    expect(action(sent.serial)).toBe('kept-reserved');
    expect(keys.get(sent.id)).toMatchObject({ state: 'reserved', wrappedKey: expect.any(Buffer) });
    expect(action(verified.serial)).toBe('consumed');
    expect(keys.get(verified.id)).toMatchObject({ state: 'consumed', wrappedKey: null });
    // a second start changes nothing more
    expect(keys.resolveInterrupted().map((r) => r.action)).toEqual(['kept-reserved']);
    expect(verifyAuditChain(records.db).ok).toBe(true);
  });
});
