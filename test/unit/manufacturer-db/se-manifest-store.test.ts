/**
 * SE manifest entries in a real SQLite file: idempotent import, conflicts refuse the whole file,
 * atomic binding of an SE to one device, rebinding only after that device failed, and every
 * change in the audit chain.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import { verifySeManifest, type VerifiedSeEntry } from '../../../src/core/se-manifest';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { SeManifestStore, splitDerSequence } from '../../../src/manufacturer-db/se-manifest-store';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import { issued, makeSe, makeVendorPki, signedEntry, trustOf } from '../../helpers/trust-and-go';

const wo: WorkOrder = { ...defaultStationConfig().workOrders[0]!, serial: { prefix: 'S-', width: 4, first: 1, last: 99 } };
const pki = makeVendorPki();

function fresh() {
  const records = new SqliteRecordStore(openDatabase(join(mkdtempSync(join(tmpdir(), 'sedb-')), 'station.db')), 'st-1');
  records.ensureWorkOrder(wo);
  records.startRun('run-1', wo.id);
  return { records, store: new SeManifestStore(records.db, 'st-1') };
}

function verified(...ses: ReturnType<typeof makeSe>[]): VerifiedSeEntry[] {
  return verifySeManifest(JSON.stringify(ses.map((se) => signedEntry(pki, se))), trustOf(pki)).entries;
}

let mac = 0;
function device(records: SqliteRecordStore): string {
  return records.allocateDevice({ runId: 'run-1', workOrder: wo, port: '/dev/x', hardwareId: 'hw', model: 'M', firmwareVersion: '1', macs: [`02${(mac++).toString(16).padStart(10, '0')}`], method: 'se-preprovisioned' });
}

const sha = (c: string) => c.repeat(64);

describe('SeManifestStore', () => {
  it('imports verified entries with their chain, once; a re-import changes nothing', () => {
    const { records, store } = fresh();
    const [a, b] = [makeSe(pki), makeSe(pki)];
    const entries = verified(a, b);
    expect(store.importVerified({ manifestSha256: sha('a'), fileName: 'm1.json', entries })).toEqual({ manifestSha256: sha('a'), entries: 2, added: 2, unchanged: 0 });
    expect(store.importVerified({ manifestSha256: sha('b'), fileName: 'm2.json', entries })).toMatchObject({ added: 0, unchanged: 2 });
    const found = store.findBySeSerial(a.uniqueId.toUpperCase())!;
    expect(found).toMatchObject({ uniqueId: a.uniqueId, seSerial: a.uniqueId, entryId: `${a.uniqueId}@${sha('a').slice(0, 16)}`, boundSerial: null });
    expect(found.publicKeySpki.equals(a.device.spki)).toBe(true);
    expect(found.chainDer).toEqual([pki.signer.cert, pki.root.cert]);
    expect(store.findBySeSerial('0123')).toBeUndefined();
    const audit = records.db.prepare("SELECT data FROM audit_events WHERE type = 'se-manifest.imported' ORDER BY seq").all() as { data: string }[];
    expect(audit.map((r) => JSON.parse(r.data) as Record<string, unknown>)).toMatchObject([
      { file: 'm1.json', entries: 2, added: 2, unchanged: 0 },
      { file: 'm2.json', entries: 2, added: 0, unchanged: 2 },
    ]);
    expect(verifyAuditChain(records.db).ok).toBe(true);
  });

  it('refuses a file that lists a known SE with another key, or a known key for another SE, and stores none of it', () => {
    const { store } = fresh();
    const a = makeSe(pki);
    store.importVerified({ manifestSha256: sha('a'), fileName: 'm1.json', entries: verified(a) });
    const newcomer = makeSe(pki);
    const rekeyed = { uniqueId: a.uniqueId, device: issued(pki.signer, 'rekeyed') };
    expect(() => store.importVerified({ manifestSha256: sha('c'), fileName: 'm3.json', entries: verified(newcomer, rekeyed) })).toThrow(
      expect.objectContaining({ code: 'MANIFEST_ENTRY_CONFLICT' }),
    );
    const cloned = { uniqueId: makeSe(pki).uniqueId, device: issued(pki.signer, 'clone', { key: a.device }) };
    expect(() => store.importVerified({ manifestSha256: sha('d'), fileName: 'm4.json', entries: verified(cloned) })).toThrow(expect.objectContaining({ code: 'MANIFEST_DUPLICATE_KEY' }));
    expect(store.findBySeSerial(newcomer.uniqueId)).toBeUndefined();
    expect(store.counts()).toEqual({ entries: 1, bound: 0 });
  });

  it('binds an SE to one device; another device gets SE_ALREADY_BOUND until the first one failed', () => {
    const { records, store } = fresh();
    const a = makeSe(pki);
    store.importVerified({ manifestSha256: sha('a'), fileName: 'm1.json', entries: verified(a) });
    const first = device(records);
    store.bind({ seSerial: a.uniqueId, deviceSerial: first });
    store.bind({ seSerial: a.uniqueId, deviceSerial: first }); // the same pair again: nothing changes
    const second = device(records);
    expect(() => store.bind({ seSerial: a.uniqueId, deviceSerial: second })).toThrow(expect.objectContaining({ code: 'SE_ALREADY_BOUND', stage: 'obtain-key', family: 'device' }));
    expect(store.findBySeSerial(a.uniqueId)!.boundSerial).toBe(first);
    // the first device fails (its IDevID is voided): its reworked successor may take the SE
    records.markFailed(first, 'run-1', { code: 'CHALLENGE_FAILED', message: 'x', stage: 'verify' }, []);
    store.bind({ seSerial: a.uniqueId, deviceSerial: second });
    expect(store.findBySeSerial(a.uniqueId)!.boundSerial).toBe(second);
    expect(() => store.bind({ seSerial: makeSe(pki).uniqueId, deviceSerial: second })).toThrow(expect.objectContaining({ code: 'SE_UNKNOWN' }));
    const events = records.db.prepare("SELECT type, serial, data FROM audit_events WHERE type LIKE 'se.%' ORDER BY seq").all() as { type: string; serial: string; data: string }[];
    expect(events.map((e) => [e.type, e.serial])).toEqual([
      ['se.bound', first],
      ['se.rebound', second],
    ]);
    expect(JSON.parse(events[1]!.data)).toMatchObject({ previousSerial: first, seSerial: a.uniqueId });
    expect(verifyAuditChain(records.db).ok).toBe(true);
  });

  it('splits concatenated DER certificates, and refuses garbage', () => {
    expect(splitDerSequence(Buffer.concat([pki.signer.cert, pki.root.cert]))).toEqual([pki.signer.cert, pki.root.cert]);
    expect(() => splitDerSequence(Buffer.from([0x30, 0x05, 0x00]))).toThrow();
  });
});
