/**
 * Method 5's seed records in the station database (migration 6, table `seeds`): each chip's seed
 * sealed by the HSM (never in clear), the hash of the public key it derives, where it came from
 * (seed file hash, vendor, lot), and which device took it. Every change is audited in the same
 * transaction (audit-chain.ts).
 */
import { ConfigError, DatabaseError } from '../core/errors';
import type { SeedBindResult, SeedImportInput, SeedImportResult, SeedRecord, SeedStore } from '../core/ports/seed-store';
import { AuditChain } from './audit-chain';
import { toDatabaseError, type SqliteDb, inTransaction } from './sqlite-database';

interface SeedRow {
  chip_id: string;
  seed_sealed: Buffer;
  public_key_sha256: string;
  file_sha256: string;
  vendor: string;
  lot: string;
  imported_at: string;
  state: 'available' | 'used';
  bound_serial: string | null;
  device_status: string | null;
}

const SELECT_SEED =
  'SELECT s.chip_id, s.seed_sealed, s.public_key_sha256, s.file_sha256, s.vendor, s.lot, s.imported_at, s.state, s.bound_serial, d.status AS device_status ' +
  'FROM seeds s LEFT JOIN devices d ON d.serial = s.bound_serial WHERE s.chip_id = ?';

function toRecord(r: SeedRow): SeedRecord {
  return {
    chipId: r.chip_id,
    sealed: r.seed_sealed,
    publicKeySha256: r.public_key_sha256,
    state: r.state,
    boundSerial: r.bound_serial,
    boundDeviceStatus: r.device_status,
    vendor: r.vendor,
    lot: r.lot,
    fileSha256: r.file_sha256,
    importedAt: r.imported_at,
  };
}

export class SqliteSeedStore implements SeedStore {
  private readonly audit: AuditChain;

  /** `db` is the station's open database (share the record store's connection: one writer). */
  constructor(
    private readonly db: SqliteDb,
    stationId: string,
  ) {
    this.audit = new AuditChain(db, stationId);
  }

  private tx<T>(doing: string, fn: () => T): T {
    return inTransaction(this.db, doing, fn);
  }

  importSeeds(input: SeedImportInput): SeedImportResult {
    return this.tx('importing seeds', () => {
      const existing = this.db.prepare('SELECT public_key_sha256, state, bound_serial FROM seeds WHERE chip_id = ?');
      const insert = this.db.prepare(
        'INSERT INTO seeds (chip_id, seed_sealed, public_key_sha256, file_sha256, recipient_key_id, vendor, lot, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const now = new Date().toISOString();
      let added = 0;
      let alreadyPresent = 0;
      const conflicts: string[] = [];
      for (const chip of input.chips) {
        const row = existing.get(chip.chipId) as { public_key_sha256: string } | undefined;
        if (row) {
          if (row.public_key_sha256 === chip.publicKeySha256) alreadyPresent++;
          else conflicts.push(chip.chipId);
          continue;
        }
        insert.run(chip.chipId, chip.sealed, chip.publicKeySha256, input.fileSha256, input.recipientKeyId, input.vendor, input.lot, now);
        added++;
      }
      if (conflicts.length > 0) {
        const shown = conflicts.slice(0, 5).join(', ') + (conflicts.length > 5 ? ` and ${conflicts.length - 5} more` : '');
        throw new ConfigError(
          'SEED_CONFLICT',
          `The seed file gives ${conflicts.length} chip(s) a seed other than the one imported before (${shown}). Nothing was imported; ask the chip vendor which file is right.`,
          { details: { conflicts: conflicts.length, firstChipId: conflicts[0]! } },
        );
      }
      this.audit.append({
        type: 'seeds.imported',
        serial: null,
        data: {
          fileSha256: input.fileSha256,
          recipientKeyId: input.recipientKeyId,
          vendor: input.vendor,
          lot: input.lot,
          createdAt: input.createdAt,
          chips: input.chips.length,
          added,
          alreadyPresent,
          operator: input.operator,
        },
      });
      return { added, alreadyPresent };
    });
  }

  findSeed(chipId: string): SeedRecord | undefined {
    try {
      const row = this.db.prepare(SELECT_SEED).get(chipId) as SeedRow | undefined;
      return row ? toRecord(row) : undefined;
    } catch (err) {
      throw toDatabaseError(err, `looking up chip ${chipId}`);
    }
  }

  bindSeed(chipId: string, serial: string): SeedBindResult {
    return this.tx(`binding chip ${chipId}`, (): SeedBindResult => {
      const row = this.db.prepare(SELECT_SEED).get(chipId) as SeedRow | undefined;
      if (!row) return { ok: false, reason: 'unknown' };
      if (row.state === 'used') return { ok: false, reason: 'used', holder: row.bound_serial };
      // A chip bound to a device that failed may be taken again (rework): that certificate was voided.
      if (row.bound_serial !== null && row.bound_serial !== serial && row.device_status !== 'failed') {
        return { ok: false, reason: 'bound', holder: row.bound_serial };
      }
      const now = new Date().toISOString();
      this.db.prepare('UPDATE seeds SET bound_serial = ?, bound_at = ? WHERE chip_id = ?').run(serial, now, chipId);
      this.audit.append({ type: 'seed.bound', serial, data: { chipId, previousSerial: row.bound_serial } });
      return { ok: true, record: toRecord({ ...row, bound_serial: serial, device_status: null }) };
    });
  }

  markSeedUsed(chipId: string, serial: string): void {
    this.tx(`marking chip ${chipId} used`, () => {
      const changed = this.db
        .prepare("UPDATE seeds SET state = 'used', used_at = ? WHERE chip_id = ? AND bound_serial = ? AND state = 'available'")
        .run(new Date().toISOString(), chipId, serial);
      if (changed.changes !== 1) {
        throw new DatabaseError('SEED_STATE_CONFLICT', `Chip ${chipId} is not bound to ${serial} and available; its seed cannot be marked used by that device.`);
      }
      this.audit.append({ type: 'seed.used', serial, data: { chipId } });
    });
  }

  counts(): { available: number; used: number } {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM seeds GROUP BY state').all() as { state: 'available' | 'used'; n: number }[];
    const out = { available: 0, used: 0 };
    for (const r of rows) out[r.state] = r.n;
    return out;
  }
}
