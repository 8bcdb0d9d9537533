/**
 * `station import seeds FILE` (contracts.md §2, docs/operator-guide.md): import a chip vendor's
 * encrypted seed file (method 5). The file is decrypted inside the PKCS#11 worker with the
 * station's seed-import key, each seed re-sealed at rest under the HSM's vault key, and the
 * sealed seeds recorded in one audited transaction. Idempotent per chip; a chip that comes back
 * with another seed refuses the whole file (SEED_CONFLICT).
 *
 * `station import seeds --show-recipient-key [--out PEM]` prints (or writes) the seed-import
 * public key the vendor must encrypt to, making the key pair on the token the first time.
 *
 * Exit codes: 0 done; 2 a bad file (SEED_FILE_MALFORMED, SEED_FILE_WRONG_RECIPIENT,
 * SEED_FILE_DECRYPT_FAILED), a conflict (SEED_CONFLICT) or usage; 3 HSM; 4 database.
 */
import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';
import { seedRecipientKeyId } from '../../core/seed-file-envelope';
import { openIdevidCa } from '../../hsm/ca/idevid-ca';
import { Pkcs11SeedVault } from '../../hsm/seeds/pkcs11-seed-vault';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { SqliteSeedStore } from '../../manufacturer-db/seed-store';
import { importSeedFile } from '../../methods/seed-derived/seed-import';
import { databasePath } from '../station';
import { cliErrorLine, cliIo, type CliIoDeps } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';

export interface ImportSeedsCommandDeps extends CliIoDeps {
  loadConfig(path: string | undefined): StationConfig;
}

interface Options {
  showRecipientKey?: boolean;
  out?: string;
  operator?: string;
  config?: string;
  dataDir?: string;
}

function defaultOperator(): string {
  try {
    return process.env.STATION_OPERATOR ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Adds `seeds` to the `station import` group. */
export function registerImportSeedsCommand(importGroup: Command, deps: ImportSeedsCommandDeps): Command {
  const { out, err, exit, env } = cliIo(deps);

  return importGroup
    .command('seeds')
    .description('import a chip vendor\'s encrypted seed file (method 5): decrypted in the HSM worker, kept sealed by the HSM; or show the key the vendor encrypts to')
    .argument('[FILE]', 'the seed file (docs/crypto-constructions.md §5)')
    .option('--show-recipient-key', 'print the station\'s seed-import public key (PEM) for the chip vendor; made on the token the first time')
    .option('--out <PEM>', 'with --show-recipient-key: write the PEM to this file instead')
    .option('--operator <NAME>', 'who imports (recorded in the audit trail)', defaultOperator())
    .action(async (file: string | undefined, _opts: Options, command: Command) => {
      const opts = command.optsWithGlobals<Options>();
      let close = async (): Promise<void> => undefined;
      try {
        if (!opts.showRecipientKey && !file) throw new ConfigError('USAGE', 'Name the seed file (station import seeds FILE), or ask for --show-recipient-key.');
        if (opts.showRecipientKey && file) throw new ConfigError('USAGE', 'Give either a seed file or --show-recipient-key, not both.');
        const config = deps.loadConfig(opts.config);
        const dataDir = resolve(opts.dataDir ?? 'data');
        if (!existsSync(dataDir)) throw new ConfigError('DATA_DIR_EMPTY', `No station data in ${dataDir}: run "station pki init" (or pass --data-dir).`);
        const bytes = file ? readFileSync(resolve(file)) : undefined;
        const ca = openIdevidCa(config.hsm, dataDir, env);
        close = () => ca.close();
        await ca.ready();
        const seedVault = new Pkcs11SeedVault(ca.signer, config.hsm);

        if (opts.showRecipientKey) {
          const spki = await seedVault.recipientPublicKey();
          const pem = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString();
          if (opts.out) {
            writeFileSync(resolve(opts.out), pem);
            err.write(`seed-import key written to ${resolve(opts.out)} (key id ${seedRecipientKeyId(spki)})\n`);
          } else {
            out.write(pem);
            err.write(`key id (SHA-256 of the SPKI): ${seedRecipientKeyId(spki)}\n`);
          }
        } else {
          const db = openDatabase(databasePath(dataDir));
          const seedStore = new SqliteSeedStore(db, config.stationId);
          const closeCa = close;
          close = async () => {
            db.close();
            await closeCa();
          };
          const r = await importSeedFile({ seedVault, seedStore }, bytes!, opts.operator ?? defaultOperator());
          const counts = seedStore.counts();
          out.write(
            `imported ${r.chips} chip(s) from ${r.vendor}, lot ${r.lot}: ${r.added} new, ${r.alreadyPresent} already present\n` +
              `file SHA-256: ${r.fileSha256}\n` +
              `seeds on this station: ${counts.available} available, ${counts.used} used\n`,
          );
        }
        await close();
        exit(ExitCode.OK);
      } catch (e) {
        await close().catch(() => undefined);
        err.write(cliErrorLine(e));
        exit(exitCodeFor(e));
      }
    });
}
