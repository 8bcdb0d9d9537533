/**
 * `station prepare --work-order ID --count N` (contracts.md §2, docs/operator-guide.md): method 3
 * keys made ahead of the run, without any device attached. Each prepared record is a serial, a
 * device key made in the HSM and resting wrapped under the KEK, and its IDevID certificate.
 * Needs the PKI (`station pki init`); makes the KEK once. Exit codes: 0 done, 2 usage or
 * configuration, 3 HSM or CA, 4 database.
 */
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { createFileLogger } from '../pino-logger';
import { runPrepare, type InjectMode } from '../admin/prepare';
import { ExitCode, exitCodeFor } from './exit-codes';
import { cliErrorLine, positiveInt } from './cli-support';

export interface PrepareCommandDeps {
  loadConfig(path: string | undefined): StationConfig;
  env?: NodeJS.ProcessEnv;
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  exit?: (code: number) => void;
}

interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

export function registerPrepareCommand(program: Command, deps: PrepareCommandDeps): Command {
  const out = deps.stdout ?? process.stdout;
  const err = deps.stderr ?? process.stderr;
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  return program
    .command('prepare')
    .description('method 3 (factory-injected-key): make N device keys in the HSM ahead of the run, each with its serial and certificate, resting wrapped under the KEK')
    .requiredOption('--work-order <ID>', 'a work order with method factory-injected-key')
    .requiredOption('--count <N>', 'how many keys to prepare', positiveInt)
    .action(async (opts: { workOrder: string; count: number }) => {
      try {
        const g = program.opts<GlobalOptions>();
        const config = deps.loadConfig(g.config);
        const dataDir = resolve(g.dataDir ?? 'data');
        const log = createFileLogger(join(dataDir, 'station.log'), { station: config.stationId, command: 'prepare' });
        const r = await runPrepare(config, { dataDir, env: deps.env ?? process.env, log }, { workOrderId: opts.workOrder, count: opts.count });
        log.flush();
        out.write(
          `prepared ${r.prepared} key(s) for ${r.workOrderId}${r.firstSerial ? ` (${r.firstSerial}..${r.lastSerial})` : ''}${r.failed ? `, ${r.failed} failed and burned` : ''}\n` +
            `available now: ${r.available}\n` +
            `KEK: ${r.kekLabel}${r.kekCreated ? ' (made now)' : ''}\n` +
            (r.resolved.length ? `settled from an earlier stop: ${r.resolved.map((x) => `${x.serial} ${x.action}`).join(', ')}\n` : ''),
        );
        exit(r.failed > 0 ? ExitCode.HSM : ExitCode.OK);
      } catch (e) {
        err.write(cliErrorLine(e));
        exit(exitCodeFor(e));
      }
    });
}

/** `station batch --inject WAY`: how method 3 gets its keys. */
export function parseInjectMode(value: string): InjectMode {
  if (value !== 'prepared' && value !== 'at-station') throw new InvalidArgumentError('expected "prepared" (keys made ahead with station prepare) or "at-station" (made during the run)');
  return value;
}
