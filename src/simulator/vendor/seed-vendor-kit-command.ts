/**
 * `station-sim vendor-kit seeds --recipient PEM --count N --out FILE [--dir DIR]`: as a chip
 * vendor would, make N chips (chip id + random 32-byte seed) in the simulator's vendor folder
 * (DIR/vendor/chips, where `station-sim start --dir DIR` takes them from) and write the seed
 * file encrypted to the manufacturer's seed-import public key (docs/simulator.md).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { seedRecipientKeyId } from '../../core/seed-file-envelope';
import { makeVendorChips } from './seed-chip-supply';
import { recipientFromPublicKey, writeSeedFile } from './seed-file-writer';

export const SEED_VENDOR_NAME = 'Simulated Chip Vendor';

function fail(message: string, code: number): never {
  process.stderr.write(`station-sim: ${message}\n`);
  process.exit(code);
}

export function registerSeedVendorKitCommand(vendorKit: Command): Command {
  return vendorKit
    .command('seeds')
    .description('make N chips with random seeds in DIR/vendor/chips and write the seed file encrypted to the manufacturer\'s seed-import key')
    .requiredOption('--recipient <PEM>', 'the manufacturer\'s seed-import public key (station import seeds --show-recipient-key)')
    .requiredOption('--count <N>', 'number of chips', (v) => Number.parseInt(v, 10))
    .requiredOption('--out <FILE>', 'where the encrypted seed file goes')
    .option('--dir <DIR>', 'simulator state (its vendor folder is DIR/vendor)', 'sim')
    .option('--vendor <NAME>', 'vendor name in the file', SEED_VENDOR_NAME)
    .option('--lot <LOT>', 'lot name in the file (default: a new one)')
    .action((opts: { recipient: string; count: number; out: string; dir: string; vendor: string; lot?: string }) => {
      if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 1_000_000) fail('--count must be 1..1000000', 2);
      let recipient: Buffer;
      let kid: string;
      try {
        recipient = readFileSync(resolve(opts.recipient));
        kid = seedRecipientKeyId(recipientFromPublicKey(recipient).spki);
      } catch (err) {
        fail(`--recipient ${opts.recipient}: ${(err as Error).message}`, 2);
      }
      const lot = opts.lot ?? `LOT-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${process.pid}`;
      const chips = makeVendorChips(join(resolve(opts.dir), 'vendor'), opts.count, lot);
      try {
        writeFileSync(resolve(opts.out), writeSeedFile(recipient, { vendor: opts.vendor, lot, chips }), { mode: 0o644 });
      } finally {
        for (const c of chips) c.seed.fill(0);
      }
      process.stdout.write(JSON.stringify({ event: 'seed-file', path: resolve(opts.out), chips: opts.count, lot, kid }) + '\n');
    });
}
