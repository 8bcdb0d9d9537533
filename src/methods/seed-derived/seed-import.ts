/**
 * `station import seeds` (and the simulate mode, which imports the vendor kit's file the same
 * way): the seed file is opened inside the HSM's worker, each seed re-sealed there, and the
 * sealed seeds recorded in one audited transaction. Nothing here sees a seed in clear.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../../core/errors';
import type { SeedStore } from '../../core/ports/seed-store';
import type { SeedVault } from '../../core/ports/seed-vault';

export interface SeedFileImportSummary {
  fileSha256: string;
  recipientKeyId: string;
  vendor: string;
  lot: string;
  chips: number;
  added: number;
  alreadyPresent: number;
}

export async function importSeedFile(
  ports: { seedVault: SeedVault; seedStore: SeedStore },
  fileBytes: Buffer,
  operator: string,
): Promise<SeedFileImportSummary> {
  if (fileBytes.length === 0) throw new ConfigError('SEED_FILE_MALFORMED', 'The seed file is empty.');
  const fileSha256 = createHash('sha256').update(fileBytes).digest('hex');
  const opened = await ports.seedVault.openSeedFile(fileBytes);
  const result = ports.seedStore.importSeeds({
    fileSha256,
    recipientKeyId: opened.recipientKeyId,
    vendor: opened.vendor,
    lot: opened.lot,
    createdAt: opened.createdAt,
    chips: opened.chips,
    operator,
  });
  return { fileSha256, recipientKeyId: opened.recipientKeyId, vendor: opened.vendor, lot: opened.lot, chips: opened.chips.length, ...result };
}
