/**
 * Method 5's seed records (implemented by manufacturer-db: src/manufacturer-db/seed-store.ts).
 * A seed rests only sealed by the HSM (SeedVault); this store never sees one in clear.
 */
import type { SealedSeed } from './seed-vault';

/** `available`: imported, not yet in a passed device. `used`: a device with this chip was recorded; never offered again. */
export type SeedState = 'available' | 'used';

export interface SeedRecord {
  chipId: string;
  sealed: Buffer;
  publicKeySha256: string;
  state: SeedState;
  /** The device serial the chip is bound to (the last device that took it), or null. */
  boundSerial: string | null;
  /** The bound device's status in the device records (null when unbound or unknown). */
  boundDeviceStatus: string | null;
  vendor: string;
  lot: string;
  fileSha256: string;
  importedAt: string;
}

export interface SeedImportInput {
  /** SHA-256 (hex) of the seed file as received. */
  fileSha256: string;
  recipientKeyId: string;
  vendor: string;
  lot: string;
  createdAt: string;
  chips: readonly SealedSeed[];
  /** Who imported it (audit). */
  operator: string;
}

export interface SeedImportResult {
  /** Chips new to this station. */
  added: number;
  /** Chips already imported with the same seed (idempotent re-import). */
  alreadyPresent: number;
}

export type SeedBindResult =
  | { ok: true; record: SeedRecord }
  | { ok: false; reason: 'unknown' }
  | { ok: false; reason: 'used' | 'bound'; holder: string | null };

export interface SeedStore {
  /**
   * Import atomically: every chip, or none. A chip already imported with another seed (its
   * derived public key differs) refuses the whole file with ConfigError SEED_CONFLICT. Audited.
   */
  importSeeds(input: SeedImportInput): SeedImportResult;
  findSeed(chipId: string): SeedRecord | undefined;
  /**
   * Bind the chip to the device taking it (obtain-key), unless it is unknown, used, or bound to
   * another device that has not failed (a failed device's chip may be taken again: its
   * certificate was voided). Audited when bound.
   */
  bindSeed(chipId: string, serial: string): SeedBindResult;
  /** The device with this chip was recorded: the seed is used for good. Audited. */
  markSeedUsed(chipId: string, serial: string): void;
  /** Counts per state (operator output). */
  counts(): { available: number; used: number };
}
