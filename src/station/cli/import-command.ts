/**
 * `station import ...` (contracts.md §2): files from component vendors. This file makes the
 * `import` group and its `se-manifest` subcommand; other subcommands register themselves on the
 * group it returns (see the marked line in registerImportCommand).
 *
 * `station import se-manifest FILE [--verify-only]`: verify every entry of an SE vendor's signed
 * manifest (Microchip Trust&GO format, docs/se-manifest.md) against the trust anchors in the
 * configuration's `seVendor` section, then store the entries (one audited transaction).
 * Idempotent: entries already imported with the same key are left as they are.
 *
 * Exit codes: 0 imported (or verified); 2 a refused manifest (MANIFEST_*), missing or unreadable
 * trust anchors, or usage; 4 database.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { SeManifestError, verifySeManifest } from '../../core/se-manifest';
import { SeManifestStore } from '../../manufacturer-db/se-manifest-store';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { importSeManifestFile, loadSeVendorTrust, seVendorTrustFiles } from '../import/se-manifest-import';
import { databasePath } from '../station';
import { cliErrorLine, cliIo, type CliIoDeps } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';
import { registerImportSeedsCommand } from './import-seeds-command';

export interface ImportCommandDeps extends CliIoDeps {
  loadConfig(path: string | undefined): StationConfig;
}

interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

/** At most this many refused entries are listed one per line after the error line. */
const MAX_LISTED_PROBLEMS = 20;

function registerSeManifestImport(importGroup: Command, deps: ImportCommandDeps): Command {
  const { out, err, exit } = cliIo(deps);
  return importGroup
    .command('se-manifest')
    .description('verify an SE vendor\'s signed manifest (Trust&GO format) against the seVendor trust anchors and import its entries (method 4)')
    .argument('<FILE>', 'the manifest: a JSON array of signed secure elements (docs/se-manifest.md)')
    .option('--verify-only', 'verify every entry and report, without storing anything')
    .action((file: string, opts: { verifyOnly?: boolean }, command: Command) => {
      const g = command.optsWithGlobals<GlobalOptions>();
      try {
        const config = deps.loadConfig(g.config);
        const dataDir = resolve(g.dataDir ?? 'data');
        const trust = loadSeVendorTrust(seVendorTrustFiles(config.seVendor, dataDir));
        if (opts.verifyOnly) {
          const verified = verifySeManifest(readFileSync(resolve(file)), trust);
          for (const w of verified.warnings) err.write(`warning: ${w}\n`);
          out.write(`verified ${file}: ${verified.entries.length} entries; nothing stored\n`);
          exit(ExitCode.OK);
          return;
        }
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        chmodSync(dataDir, 0o700);
        const db = openDatabase(databasePath(dataDir));
        try {
          const r = importSeManifestFile(new SeManifestStore(db, config.stationId), resolve(file), trust);
          for (const w of r.warnings) err.write(`warning: ${w}\n`);
          out.write(`imported ${file}: ${r.entries} entries (${r.added} new, ${r.unchanged} already imported); sha256 ${r.manifestSha256}\n`);
        } finally {
          db.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        err.write(cliErrorLine(e));
        if (e instanceof SeManifestError && e.problems.length > 1) {
          for (const p of e.problems.slice(0, MAX_LISTED_PROBLEMS)) err.write(`  entry ${p.entry ?? '-'}${p.uniqueId ? ` (${p.uniqueId})` : ''}: ${p.code}: ${p.message}\n`);
          if (e.problems.length > MAX_LISTED_PROBLEMS) err.write(`  ... and ${e.problems.length - MAX_LISTED_PROBLEMS} more\n`);
        }
        exit(exitCodeFor(e));
      }
    });
}

/** Makes `station import` with `se-manifest`; returns the group for the other import commands. */
export function registerImportCommand(program: Command, deps: ImportCommandDeps): Command {
  const importGroup = program.command('import').description('import files from component vendors: SE manifests (method 4), seed files (method 5)');
  registerSeManifestImport(importGroup, deps);
  registerImportSeedsCommand(importGroup, deps);
  return importGroup;
}
