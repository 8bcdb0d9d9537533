/**
 * GroupCommitJournal: concurrent issuances share FULL-sync transactions; an issuance's promise
 * settles only after the transaction holding its row committed (the row is then visible to a
 * second connection); a row that fails its checks rolls back alone (its savepoint) and fails only
 * its own issuance, while the rest of the batch commits; a failed COMMIT fails the whole batch.
 */
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { GroupCommitJournal, SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import { demoProduct, journalWorkOrder, newDeviceInput, openJournalStore } from '../../helpers/journal-store';
import { makeSoftwareCa, newKeyPair, softwareSigner } from '../../helpers/test-certs';

const demo = demoProduct;
const wo = journalWorkOrder('G-');
const openStore = () => openJournalStore(wo);
const allocate = (s: SqliteRecordStore): string => s.allocateDevice(newDeviceInput(wo));

describe('GroupCommitJournal', () => {
  it('shares commits between concurrent issuances and releases each certificate only after its row committed', async () => {
    const { store, path } = openStore();
    const other = new BetterSqlite3(path, { readonly: true });
    const journal = new GroupCommitJournal(store, { maxRows: 1000, maxWaitMs: 2 });
    const ca = await makeSoftwareCa('Group CA');
    const issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], journal);
    const serials = Array.from({ length: 40 }, () => allocate(store));
    const committedWhenReleased: boolean[] = [];
    await Promise.all(
      serials.map(async (serial) => {
        const issued = await issuer.issue({ spki: newKeyPair().spki, serial, model: demo.model, workOrderId: wo.id, profile: demo.idevid });
        // Another connection sees the row: it is committed, not merely written in a transaction.
        const row = other.prepare('SELECT der FROM certificates WHERE serial_hex = ?').get(issued.certificateSerialHex) as { der: Buffer } | undefined;
        committedWhenReleased.push(row !== undefined && Buffer.compare(row.der, issued.certificateDer) === 0);
      }),
    );
    expect(committedWhenReleased).toHaveLength(40);
    expect(committedWhenReleased.every(Boolean)).toBe(true);
    // 40 intents + 40 issued rows in far fewer than 80 transactions.
    expect(journal.stats.rows).toBe(80);
    expect(journal.stats.commits).toBeLessThanOrEqual(4);
    // every group took the fast path (one transaction, no savepoint per row)
    expect(journal.stats.regrouped).toBe(0);
    expect(verifyAuditChain(store.db).ok).toBe(true);
    other.close();
    store.close();
  });

  it('a row that fails its checks fails only its own issuance; the rest of the batch commits', async () => {
    const { store } = openStore();
    const journal = new GroupCommitJournal(store, { maxRows: 1000, maxWaitMs: 2 });
    const good = [allocate(store), allocate(store)];
    const at = new Date();
    const results = await Promise.allSettled([
      journal.recordIntent({ certificateSerialHex: '0a', deviceSerial: good[0]!, workOrderId: wo.id, publicKeySha256Hex: 'aa', at }),
      journal.recordIntent({ certificateSerialHex: '0b', deviceSerial: 'G-9999', workOrderId: wo.id, publicKeySha256Hex: 'bb', at }),
      journal.recordIntent({ certificateSerialHex: '0c', deviceSerial: good[1]!, workOrderId: wo.id, publicKeySha256Hex: 'cc', at }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'DEVICE_UNKNOWN' });
    // the fast path's transaction rolled back whole; the group ran again row by row
    expect(journal.stats.regrouped).toBe(1);
    expect(journal.stats.commits).toBe(1);
    const rows = store.db.prepare('SELECT certificate_serial FROM issuance_intents ORDER BY certificate_serial').pluck().all();
    expect(rows).toEqual(['0a', '0c']);
    expect(verifyAuditChain(store.db).ok).toBe(true);
    store.close();
  });

  it('a failed commit fails every issuance of that batch and nothing of it is durable', async () => {
    const { store } = openStore();
    const journal = new GroupCommitJournal(store, { maxRows: 1000, maxWaitMs: 2 });
    const serials = [allocate(store), allocate(store)];
    const at = new Date();
    const p1 = journal.recordIntent({ certificateSerialHex: '1a', deviceSerial: serials[0]!, workOrderId: wo.id, publicKeySha256Hex: 'a1', at });
    const p2 = journal.recordIntent({ certificateSerialHex: '1b', deviceSerial: serials[1]!, workOrderId: wo.id, publicKeySha256Hex: 'b1', at });
    // Sabotage the batch: its transaction fails after every row was written (as a failing
    // COMMIT would), so the whole transaction rolls back.
    const realTransaction = store.db.transaction.bind(store.db);
    (store.db as unknown as { transaction: unknown }).transaction = (fn: () => void) => {
      const inner = realTransaction(() => {
        fn();
        throw new Error('disk I/O error (simulated at commit)');
      });
      return inner;
    };
    const results = await Promise.allSettled([p1, p2]);
    (store.db as unknown as { transaction: unknown }).transaction = realTransaction;
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(store.db.prepare('SELECT COUNT(*) FROM issuance_intents').pluck().get()).toBe(0);
    // Their keys are no longer reported as pending.
    expect(journal.findDeviceByPublicKey('a1')).toBeUndefined();
    store.close();
  });

  it('refuses the same key for two devices in one batch (queued intents count as pending)', async () => {
    const { store } = openStore();
    const journal = new GroupCommitJournal(store, { maxRows: 1000, maxWaitMs: 2 });
    const ca = await makeSoftwareCa('Dup CA');
    const issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], journal);
    const spki = newKeyPair().spki;
    const [a, b] = [allocate(store), allocate(store)];
    const results = await Promise.allSettled([
      issuer.issue({ spki, serial: a, model: demo.model, workOrderId: wo.id, profile: demo.idevid }),
      issuer.issue({ spki, serial: b, model: demo.model, workOrderId: wo.id, profile: demo.idevid }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'CSR_KEY_ALREADY_CERTIFIED' });
    store.close();
  });
});
