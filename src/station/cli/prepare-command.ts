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
import { runPrepareSeeds } from '../admin/prepare-seed';
import { ExitCode, exitCodeFor } from './exit-codes';
import { cliErrorLine, positiveInt, cliIo, type CliIoDeps } from './cli-support';

export interface PrepareCommandDeps extends CliIoDeps {
  loadConfig(path: string | undefined): StationConfig;
}

interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

export function registerPrepareCommand(program: Command, deps: PrepareCommandDeps): Command {
  const { out, err, exit } = cliIo(deps);
  return program
    .command('prepare')
    .description('ahead of the run: method 3 (factory-injected-key) makes N device keys in the HSM, each with its serial and certificate, resting wrapped under the KEK; method 5 (seed-derived) issues certificates for N imported, unbound chips')
    .requiredOption('--work-order <ID>', 'a work order with method factory-injected-key or seed-derived')
    .requiredOption('--count <N>', 'how many keys to prepare', positiveInt)
    .action(async (opts: { workOrder: string; count: number }) => {
      try {
        const g = program.opts<GlobalOptions>();
        const config = deps.loadConfig(g.config);
        const dataDir = resolve(g.dataDir ?? 'data');
        const log = createFileLogger(join(dataDir, 'station.log'), { station: config.stationId, command: 'prepare' });
        if (config.workOrders.find((w) => w.id === opts.workOrder)?.method === 'seed-derived') {
          // method 5: certificates issued ahead for imported, unbound chips
          const s = await runPrepareSeeds(config, { dataDir, env: deps.env ?? process.env, log }, { workOrderId: opts.workOrder, count: opts.count });
          log.flush();
          out.write(
            `prepared ${s.prepared} certificate(s) for ${s.workOrderId}${s.firstSerial ? ` (${s.firstSerial}..${s.lastSerial})` : ''}${s.failed ? `, ${s.failed} failed` : ''}\n` +
              (s.short ? `only ${opts.count - s.short} unbound chip(s) were imported; ${s.short} not prepared (station import seeds FILE)\n` : '') +
              `waiting for their devices: ${s.waiting}\n` +
              (s.resolved.length ? `settled from an earlier stop: ${s.resolved.map((x) => `${x.serial} failed`).join(', ')}\n` : ''),
          );
          exit(s.failed > 0 ? ExitCode.HSM : ExitCode.OK);
          return;
        }
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
