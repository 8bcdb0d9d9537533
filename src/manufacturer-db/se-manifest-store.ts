/**
 * Method 4's records: the SE manifest entries the station verified and imported, and which
 * device serial each SE is bound to. Every import and every binding is audited in the same
 * transaction (audit_events, chained by hash).
 *
 * Import is idempotent: an entry already present with the same key is left as it is (its first
 * import stays its origin); the same uniqueId with another key, or a key already listed for
 * another SE, refuses the whole file.
 */
import { createHash } from 'node:crypto';
import { DeviceError } from '../core/errors';
import type { SeManifestEntryRecord, SeManifestRegistry } from '../core/ports/se-manifest-registry';
import { SeManifestError, type SeManifestProblem, type VerifiedSeEntry } from '../core/se-manifest';
import { AuditChain } from './audit-chain';
import { toDatabaseError, type SqliteDb, inTransaction } from './sqlite-database';

export interface SeManifestImportInput {
  /** SHA-256 of the manifest file's bytes, hex. */
  manifestSha256: string;
  /** The file's name, for the audit trail. */
  fileName: string;
  entries: readonly VerifiedSeEntry[];
}

export interface SeManifestImportResult {
  manifestSha256: string;
  entries: number;
  added: number;
  /** Entries already imported with the same key (from this file or another). */
  unchanged: number;
}

interface EntryRow {
  unique_id: string;
  se_serial: string;
  public_key_spki: Buffer;
  public_key_sha256: string;
  certificate_der: Buffer;
  chain_der: Buffer;
  manifest_sha256: string;
  bound_serial: string | null;
}

/** Split concatenated DER values (each a SEQUENCE with a definite length). */
export function splitDerSequence(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    if (buf[i] !== 0x30 || i + 2 > buf.length) throw new Error('not a DER SEQUENCE');
    let len = buf[i + 1]!;
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4 || i + 2 + n > buf.length) throw new Error('bad DER length');
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + buf[i + 2 + k]!;
      header = 2 + n;
    }
    if (i + header + len > buf.length) throw new Error('truncated DER value');
    out.push(buf.subarray(i, i + header + len));
    i += header + len;
  }
  return out;
}

function entryId(uniqueId: string, manifestSha256: string): string {
  return `${uniqueId}@${manifestSha256.slice(0, 16)}`;
}

function toRecord(row: EntryRow): SeManifestEntryRecord {
  return {
    uniqueId: row.unique_id,
    seSerial: row.se_serial,
    entryId: entryId(row.unique_id, row.manifest_sha256),
    publicKeySpki: row.public_key_spki,
    certificateDer: row.certificate_der,
    chainDer: splitDerSequence(row.chain_der),
    boundSerial: row.bound_serial,
  };
}

export class SeManifestStore implements SeManifestRegistry {
  private readonly audit: AuditChain;

  constructor(
    private readonly db: SqliteDb,
    private readonly stationId: string,
  ) {
    this.audit = new AuditChain(db, stationId);
  }

  private tx<T>(doing: string, fn: () => T): T {
    return inTransaction(this.db, doing, fn);
  }

  /** Store the entries of one verified manifest, with one audit event, in one transaction. */
  importVerified(input: SeManifestImportInput): SeManifestImportResult {
    return this.tx('importing an SE manifest', () => {
      const byId = this.db.prepare('SELECT * FROM se_manifest_entries WHERE unique_id = ?');
      const byKey = this.db.prepare('SELECT unique_id FROM se_manifest_entries WHERE public_key_sha256 = ?');
      const insert = this.db.prepare(
        `INSERT INTO se_manifest_entries (unique_id, se_serial, key_id, public_key_spki, public_key_sha256, certificate_der, chain_der, model, part_number,
           group_id, provisioned_at, signer_sha256, manifest_sha256, imported_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const now = new Date().toISOString();
      const problems: SeManifestProblem[] = [];
      let added = 0;
      let unchanged = 0;
      for (const e of input.entries) {
        const keySha = createHash('sha256').update(e.publicKeySpki).digest('hex');
        const existing = byId.get(e.uniqueId) as EntryRow | undefined;
        if (existing) {
          if (existing.public_key_spki.equals(e.publicKeySpki)) {
            unchanged++;
            continue;
          }
          problems.push({
            code: 'MANIFEST_ENTRY_CONFLICT',
            entry: e.entry,
            uniqueId: e.uniqueId,
            message: `this SE was imported before (manifest ${existing.manifest_sha256.slice(0, 16)}) with another key; an SE's key never changes. Ask the vendor which file is right`,
          });
          continue;
        }
        const holder = byKey.get(keySha) as { unique_id: string } | undefined;
        if (holder) {
          problems.push({ code: 'MANIFEST_DUPLICATE_KEY', entry: e.entry, uniqueId: e.uniqueId, message: `its key is already imported for SE ${holder.unique_id}; two secure elements never share a key` });
          continue;
        }
        insert.run(
          e.uniqueId,
          e.uniqueId,
          e.keyId,
          e.publicKeySpki,
          keySha,
          e.certificateDer,
          Buffer.concat(e.chainDer),
          e.model,
          e.partNumber,
          e.groupId,
          e.provisioningTimestamp,
          e.signerSha256,
          input.manifestSha256,
          now,
        );
        added++;
      }
      if (problems.length > 0) throw new SeManifestError(problems[0]!, problems, input.entries.length);
      this.audit.append({
        type: 'se-manifest.imported',
        serial: null,
        data: {
          manifestSha256: input.manifestSha256,
          file: input.fileName,
          entries: input.entries.length,
          added,
          unchanged,
          signers: [...new Set(input.entries.map((e) => e.signerSha256))],
        },
      });
      return { manifestSha256: input.manifestSha256, entries: input.entries.length, added, unchanged };
    });
  }

  findBySeSerial(seSerial: string): SeManifestEntryRecord | undefined {
    try {
      const row = this.db.prepare('SELECT * FROM se_manifest_entries WHERE se_serial = ?').get(seSerial.toLowerCase()) as EntryRow | undefined;
      return row ? toRecord(row) : undefined;
    } catch (err) {
      throw toDatabaseError(err, 'looking up an SE manifest entry');
    }
  }

  bind(input: { seSerial: string; deviceSerial: string }): void {
    const seSerial = input.seSerial.toLowerCase();
    this.tx('binding an SE to a device', () => {
      const row = this.db.prepare('SELECT unique_id, manifest_sha256, bound_serial FROM se_manifest_entries WHERE se_serial = ?').get(seSerial) as
        | Pick<EntryRow, 'unique_id' | 'manifest_sha256' | 'bound_serial'>
        | undefined;
      if (!row) {
        throw new DeviceError('SE_UNKNOWN', `The secure element ${seSerial} is in no imported SE manifest. Import the vendor's manifest ("station import se-manifest") or set the device aside.`, {
          stage: 'obtain-key',
        });
      }
      if (row.bound_serial === input.deviceSerial) return;
      // One statement decides, so two ports or two stations on this database cannot both win.
      const changed = this.db
        .prepare(
          `UPDATE se_manifest_entries SET bound_serial = ?, bound_at = ?, bound_station_id = ?
           WHERE se_serial = ? AND (bound_serial IS NULL OR bound_serial IN (SELECT serial FROM devices WHERE status = 'failed'))`,
        )
        .run(input.deviceSerial, new Date().toISOString(), this.stationId, seSerial);
      if (changed.changes !== 1) {
        const holder = this.db.prepare('SELECT status FROM devices WHERE serial = ?').get(row.bound_serial) as { status: string } | undefined;
        throw new DeviceError(
          'SE_ALREADY_BOUND',
          `The secure element ${seSerial} is already bound to device ${row.bound_serial ?? '?'} (${holder?.status ?? 'unknown'}). An SE goes into one device only: set this device aside and call the supervisor (a cloned or reused SE).`,
          { stage: 'obtain-key', details: { seSerial, boundSerial: row.bound_serial } },
        );
      }
      this.audit.append({
        type: row.bound_serial ? 'se.rebound' : 'se.bound',
        serial: input.deviceSerial,
        data: { seSerial, entryId: entryId(row.unique_id, row.manifest_sha256), ...(row.bound_serial ? { previousSerial: row.bound_serial } : {}) },
      });
    });
  }

  /** How many entries are imported, and how many are bound (for status output and tests). */
  counts(): { entries: number; bound: number } {
    const r = this.db.prepare('SELECT COUNT(*) AS entries, COUNT(bound_serial) AS bound FROM se_manifest_entries').get() as { entries: number; bound: number };
    return r;
  }
}
