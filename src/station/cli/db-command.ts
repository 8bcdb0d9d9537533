/**
 * `station db backup FILE` (contracts.md §2): an online backup of the station database (SQLite's
 * backup API), integrity-checked; a restored backup passes `station audit verify`.
 * `station db blocks` lists the serial and MAC blocks; `station db import-blocks FILE` imports
 * the planner's block assignments (JSON array of {kind, stationId, prefix?, first, last,
 * workOrder?, product?}); an overlapping block is refused and nothing is imported.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../core/errors';
import type { BlockAssignment } from '../../manufacturer-db/blocks';
import { verifyAuditChain } from '../../manufacturer-db/audit-chain';
import { backupDatabase, openDatabase } from '../../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import { cliIo } from './cli-support';
import { ExitCode } from './exit-codes';
import { commandContext, openExistingStore, operatorName, type RecordCommandDeps } from './station-db';

export function registerDbCommand(program: Command, deps: RecordCommandDeps): Command {
  const { out, exit, env, fail } = cliIo(deps);
  const db = program.command('db').description('the station database: backup, serial and MAC blocks');

  db.command('backup')
    .description('online backup of the station database to FILE (consistent while the station runs), integrity-checked')
    .argument('<FILE>', 'the backup file (must not exist)')
    .action(async (file: string) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        const target = resolve(file);
        if (existsSync(target)) throw new ConfigError('BACKUP_EXISTS', `${target} exists; a backup never overwrites a file.`);
        const store = openExistingStore(dataDir, config.stationId);
        try {
          const r = await backupDatabase(store.db, target);
          const chain = verifyAuditChain(store.db);
          out.write(`backup: ${r.path} (${r.pages} pages, integrity ok; audit chain at the source: ${chain.ok ? `${chain.events} events OK` : 'BROKEN'})\n`);
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });

  db.command('blocks')
    .description('the serial and MAC blocks this database knows (this station\'s and imported ones)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        try {
          const serial = store.blocks.serialBlocks();
          const mac = store.blocks.macBlocks();
          if (opts.json) out.write(JSON.stringify({ serial, mac }, null, 2) + '\n');
          else {
            for (const b of serial) out.write(`serial ${b.prefix}${b.first}..${b.last}  station ${b.stationId}${b.workOrderId ? `, work order ${b.workOrderId}` : ''} (${b.source})\n`);
            for (const b of mac) out.write(`mac    ${b.first}..${b.last}  station ${b.stationId}${b.product ? `, product ${b.product}` : ''}; next ${b.next}, ${b.remaining} left\n`);
          }
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });

  db.command('import-blocks')
    .description('import block assignments (JSON array); an overlap with any known block is refused and nothing is imported')
    .argument('<FILE>', 'JSON: [{ "kind": "serial"|"mac", "stationId", "prefix"?, "first", "last", "workOrder"?, "product"? }]')
    .option('--operator <NAME>', 'who does this (audited)')
    .action((file: string, opts: { operator?: string }) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        let blocks: unknown;
        try {
          blocks = JSON.parse(readFileSync(resolve(file), 'utf8'));
        } catch (e) {
          throw new ConfigError('BLOCKS_UNREADABLE', `Cannot read the block file ${file}: ${(e as Error).message}`);
        }
        if (!Array.isArray(blocks) || blocks.some((b) => typeof b !== 'object' || b === null || !['serial', 'mac'].includes((b as { kind?: string }).kind ?? '') || typeof (b as { stationId?: unknown }).stationId !== 'string')) {
          throw new ConfigError('BLOCKS_INVALID', `${file} must be a JSON array of blocks, each with kind "serial" or "mac" and a stationId.`);
        }
        // A new station imports its blocks before its first run: the data folder must exist
        // (station pki init); its database is made here.
        const dbPath = join(dataDir, 'station.db');
        const store = existsSync(dataDir) && !existsSync(dbPath) ? new SqliteRecordStore(openDatabase(dbPath), config.stationId) : openExistingStore(dataDir, config.stationId);
        try {
          const n = store.blocks.importBlocks(blocks as BlockAssignment[], opts.operator ?? operatorName(env));
          out.write(`imported ${n.serial} serial block(s) and ${n.mac} MAC block(s)\n`);
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });
  return db;
}
