/**
 * TurnCommitter (sqlite-database.ts): the writes queued in one event-loop turn share one
 * FULL-sync transaction; each promise settles only after that transaction committed (another
 * connection then sees the row) and nothing is written before the group runs; a write that
 * throws rolls back alone and rejects with its own error; a failed COMMIT rejects the whole
 * group and leaves nothing; a transaction started directly on the connection writes the queue
 * first, so order is kept. TurnCommitJournal (the line's issuance journal) goes through it.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { inTransaction } from '../../../src/manufacturer-db/sqlite-database';
import { TurnCommitJournal } from '../../../src/manufacturer-db/sqlite-record-store';
import { demoProduct, journalWorkOrder, newDeviceInput, openJournalStore } from '../../helpers/journal-store';
import { makeSoftwareCa, newKeyPair, softwareSigner } from '../../helpers/test-certs';

const demo = demoProduct;
const wo = journalWorkOrder('T-');
const openStore = () => openJournalStore(wo);
const deviceInput = () => newDeviceInput(wo);

const devices = (db: BetterSqlite3.Database) => db.prepare('SELECT serial FROM devices ORDER BY serial').pluck().all();

describe('TurnCommitter', () => {
  it('commits the writes of one turn together, and settles each only once it is durable', async () => {
    const { store, path } = openStore();
    const other = new BetterSqlite3(path, { readonly: true });
    const before = { ...store.committer.stats };
    const pending = [1, 2, 3].map(() => store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput())));
    // queued, not written: neither this connection nor another sees anything yet
    expect(devices(store.db)).toEqual([]);
    const seenOnSettle: unknown[][] = [];
    const serials = await Promise.all(pending.map((p) => p.then((serial) => (seenOnSettle.push(devices(other)), serial))));
    expect(serials).toEqual(['T-0001', 'T-0002', 'T-0003']);
    // when each promise settled, another connection already saw every row of the group
    for (const seen of seenOnSettle) expect(seen).toEqual(serials);
    expect(store.committer.stats.commits - before.commits).toBe(1);
    expect(store.committer.stats.writes - before.writes).toBe(3);
    other.close();
    store.close();
  });

  it('a write that throws rejects alone with its own error; the others of the group commit', async () => {
    const { store } = openStore();
    const results = await Promise.allSettled([
      store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput())),
      store.committer.run('marking a device passed', () => store.markPassed('T-9999', 'run-1', [])),
      store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput())),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'DEVICE_STATE_CONFLICT' });
    expect(devices(store.db)).toEqual(['T-0001', 'T-0002']);
    expect(verifyAuditChain(store.db).ok).toBe(true);
    store.close();
  });

  it('a failed COMMIT rejects every write of the group and leaves none of it', async () => {
    const { store } = openStore();
    // a deferred foreign key is checked at COMMIT: a row violating it makes the COMMIT fail
    store.db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)');
    const results = await Promise.allSettled([
      store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput())),
      store.committer.run('writing an orphan', () => store.db.prepare('INSERT INTO child (parent_id) VALUES (42)').run()),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'DB_CONSTRAINT' });
    expect(devices(store.db)).toEqual([]);
    expect(store.db.prepare('SELECT COUNT(*) FROM child').pluck().get()).toBe(0);
    // the connection is usable afterwards
    expect(await store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput()))).toMatch(/^T-/);
    store.close();
  });

  it('a write that makes SQLite roll back the whole transaction (disk full) fails the whole group: none of it is durable', async () => {
    const { store } = openStore();
    store.db.exec('CREATE TABLE big (v BLOB)');
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages + 3}`);
    const results = await Promise.allSettled([
      store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput())),
      store.committer.run('writing a large row', () => store.db.prepare('INSERT INTO big (v) VALUES (?)').run(Buffer.alloc(200_000))),
      store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput())),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'DB_DISK_FULL' });
    // neither the write before the full one nor the one after it was committed
    expect(devices(store.db)).toEqual([]);
    expect(store.db.inTransaction).toBe(false);
    store.db.pragma('max_page_count = 1073741823');
    expect(await store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput()))).toMatch(/^T-/);
    store.close();
  });

  it('waits for another connection\'s write transaction once, instead of failing the group with SQLITE_BUSY', async () => {
    const { store, path } = openStore();
    // another writer (a worker thread: this thread blocks in the busy wait) holds the write lock for 300 ms
    const holder = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const db = new (require(workerData.module))(workerData.path);
       db.exec('BEGIN IMMEDIATE');
       parentPort.postMessage('locked');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
       db.exec('COMMIT');
       db.close();`,
      { eval: true, workerData: { module: join(process.cwd(), 'node_modules', 'better-sqlite3'), path } },
    );
    await new Promise((locked) => holder.once('message', locked));
    const queued = [1, 2].map(() => store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput())));
    expect(await Promise.all(queued)).toEqual(['T-0001', 'T-0002']);
    await holder.terminate();
    store.close();
  });

  it('a transaction started directly writes the queued writes first (order is kept)', async () => {
    const { store } = openStore();
    const queued = store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput()));
    const direct = inTransaction(store.db, 'assigning a serial', () => store.allocateDevice(deviceInput()));
    expect(direct).toBe('T-0002');
    expect(await queued).toBe('T-0001');
    store.close();
  });

  it('closing the store writes what is queued', async () => {
    const { store, path } = openStore();
    const queued = store.committer.run('assigning a serial', () => store.allocateDevice(deviceInput()));
    store.close();
    expect(await queued).toBe('T-0001');
    const reopened = new BetterSqlite3(path, { readonly: true });
    expect(devices(reopened)).toEqual(['T-0001']);
    reopened.close();
  });
});

describe('TurnCommitJournal', () => {
  it('issues concurrently through shared commits; each certificate is released after its row committed', async () => {
    const { store, path } = openStore();
    const other = new BetterSqlite3(path, { readonly: true });
    const ca = await makeSoftwareCa('Turn CA');
    const issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], new TurnCommitJournal(store));
    const serials = Array.from({ length: 12 }, () => store.allocateDevice(deviceInput()));
    const before = { ...store.committer.stats };
    const committed = await Promise.all(
      serials.map(async (serial) => {
        const issued = await issuer.issue({ spki: newKeyPair().spki, serial, model: demo.model, workOrderId: wo.id, profile: demo.idevid });
        return other.prepare('SELECT 1 FROM certificates WHERE serial_hex = ?').get(issued.certificateSerialHex) !== undefined;
      }),
    );
    expect(committed.every(Boolean)).toBe(true);
    expect(store.committer.stats.writes - before.writes).toBe(24);
    expect(store.committer.stats.commits - before.commits).toBeLessThan(24);
    other.close();
    store.close();
  });

  it('refuses one key for two devices in the same turn (a queued intent counts as pending)', async () => {
    const { store } = openStore();
    const ca = await makeSoftwareCa('Dup CA');
    const issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], new TurnCommitJournal(store));
    const spki = newKeyPair().spki;
    const [a, b] = [store.allocateDevice(deviceInput()), store.allocateDevice(deviceInput())];
    const results = await Promise.allSettled([
      issuer.issue({ spki, serial: a, model: demo.model, workOrderId: wo.id, profile: demo.idevid }),
      issuer.issue({ spki, serial: b, model: demo.model, workOrderId: wo.id, profile: demo.idevid }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'CSR_KEY_ALREADY_CERTIFIED' });
    store.close();
  });
});
