/**
 * What both prepares (method 3's keys, prepare.ts; method 5's seed certificates, prepare-seed.ts)
 * share: a run of its own in the database, an issuer writing through a group committer, and the
 * connection's page cache raised for the run's duration (default 2 MiB: at 100,000 rows the
 * indexes no longer fit) and put back when it finishes.
 */
import { randomUUID } from 'node:crypto';
import type { Signer } from '../../core/ports/signer';
import { IdevidIssuer } from '../../hsm/ca/idevid-issuer';
import type { SignatureChecker } from '../../hsm/ca/signature-checker';
import { GroupCommitJournal, type SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';

/** Devices per chunk: keys per HSM op, rows per group of transactions. */
export const DEFAULT_PREPARE_CHUNK = 1024;
/** SQLite page cache during a prepare, KiB. */
const PREPARE_CACHE_KIB = 65536;
/** The group committer's window: rows of the issuances in flight that share one commit. */
const JOURNAL_WAIT_MS = 4;

/** The CA a prepare issues with: its signer (the PKCS#11 worker), chain (issuing CA, root) and signature checker. */
export interface PrepareCa {
  signer: Signer;
  chain: readonly Buffer[];
  signatureChecker?: SignatureChecker;
}

export interface PrepareRun {
  runId: string;
  chunk: number;
  /** Flush it after each chunk's issuances (their rows commit together). */
  journal: GroupCommitJournal;
  issuer: IdevidIssuer;
  /** Commits what waits, puts the page cache back and closes the run with its counts. */
  finish(counts: { prepared: number; failed: number }): void;
}

export function openPrepareRun(store: SqliteRecordStore, ca: PrepareCa, workOrderId: string, chunk = DEFAULT_PREPARE_CHUNK): PrepareRun {
  const runId = `prepare-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomUUID().slice(0, 8)}`;
  store.startRun(runId, workOrderId);
  const journal = new GroupCommitJournal(store, { maxRows: 2 * chunk, maxWaitMs: JOURNAL_WAIT_MS });
  const issuer = new IdevidIssuer(ca.signer, ca.chain, journal, ca.signatureChecker ? { signatureChecker: ca.signatureChecker } : {});
  const cacheBefore = store.db.pragma('cache_size', { simple: true }) as number;
  store.db.pragma(`cache_size = -${PREPARE_CACHE_KIB}`);
  return {
    runId,
    chunk,
    journal,
    issuer,
    finish(counts) {
      journal.close();
      store.db.pragma(`cache_size = ${cacheBefore}`);
      store.finishRun(runId, counts);
    },
  };
}
