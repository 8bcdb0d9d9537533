/** What the record commands share: the data dir's existing database, opened as a record store. */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import type { CliIoDeps } from './cli-support';

export interface RecordCommandDeps extends CliIoDeps {
  loadConfig(path: string | undefined): StationConfig;
}

export function commandContext(program: Command, deps: RecordCommandDeps): { config: StationConfig; dataDir: string } {
  const g = program.opts<{ config?: string; dataDir?: string }>();
  return { config: deps.loadConfig(g.config), dataDir: resolve(g.dataDir ?? 'data') };
}

/** The station database of `dataDir`; a missing one is a usage error, never a new empty database. */
export function openExistingStore(dataDir: string, stationId: string): SqliteRecordStore {
  const path = join(dataDir, 'station.db');
  if (!existsSync(path)) throw new ConfigError('DATA_DIR_EMPTY', `No station database in ${dataDir}; pass the station's data folder with --data-dir (a batch keeps it in OUT/data).`);
  return new SqliteRecordStore(openDatabase(path), stationId);
}

export function operatorName(env: NodeJS.ProcessEnv): string {
  try {
    return env.STATION_OPERATOR ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}
