/** `station`: the headless CLI (contracts.md §2). */
import 'reflect-metadata';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { writeHeapSnapshot } from 'node:v8';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError, InterruptedError } from '../../core/errors';
import { parsePrinterUri } from '../../label-printer/printers/create-printer';
import { createFileLogger } from '../pino-logger';
import { createStation } from '../station';
import { registerCaCommand } from './ca-command';
import { registerAuditCommand } from './audit-command';
import { registerDbCommand } from './db-command';
import { registerDeviceCommand } from './device-command';
import { registerExportCommand } from './export-command';
import { registerSyncCommand } from './sync-command';
import { registerImportCommand } from './import-command';
import { parseInjectMode, registerPrepareCommand } from './prepare-command';
import { registerGuiCommand } from './gui-command';
import { registerUserCommand } from './user-command';
import { resolveResume } from '../run/resume';
import { registerQaCommand } from './qa-command';
import { startServicesForRun, type RunServices } from '../reference-services';
import { ExitCode, exitCodeFor } from './exit-codes';
import { loadConfig } from './load-config';
import { registerPortsCommand } from './ports-command';
import { registerProfileCommand } from './profile-command';
import { createProgress } from './progress';
import { cliErrorLine, positiveInt } from './cli-support';

/**
 * Security tests only: STATION_HEAP_SNAPSHOT names a file for a V8 heap snapshot of the
 * station's main thread after a batch, which the test searches for PINs, seeds and keys.
 */
function writeHeapSnapshotForSecurityTests(): void {
  const path = process.env.STATION_HEAP_SNAPSHOT;
  if (path) writeHeapSnapshot(path);
}

function fail(err: unknown): never {
  process.stderr.write(cliErrorLine(err));
  process.exit(exitCodeFor(err));
}

function defaultOperator(): string {
  try {
    return process.env.STATION_OPERATOR ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

function labelStation(g: GlobalOptions) {
  const config = loadConfig(g.config);
  const dataDir = resolve(g.dataDir ?? 'data');
  if (!existsSync(join(dataDir, 'station.db'))) {
    throw new ConfigError('DATA_DIR_EMPTY', `No station database in ${dataDir}; pass the run's data folder with --data-dir (a batch keeps it in OUT/data).`);
  }
  return createStation(config, { dataDir, log: createFileLogger(join(dataDir, 'station.log'), { station: config.stationId }) });
}

interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

export function main(argv: string[]): void {
  const program = new Command();
  program
    .name('station')
    .description('Factory provisioning station: IDevID (IEEE 802.1AR) and DPP birth credentials for IoT devices')
    .option('--config <FILE>', 'JSON configuration, overlaid on the embedded defaults')
    .option('--data-dir <DIR>', 'station data: database, SoftHSM tokens, PIN file, CA chain', 'data')
    .showHelpAfterError()
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : ExitCode.USAGE);
    });

  const pki = program.command('pki').description('test PKI in SoftHSM');
  pki
    .command('init')
    .description('create (once) a SoftHSM token with the IDevID root and issuing CA keys, and write the CA chain')
    .action(async () => {
      const g = program.opts<GlobalOptions>();
      try {
        const config = loadConfig(g.config);
        const dataDir = resolve(g.dataDir ?? 'data');
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        chmodSync(dataDir, 0o700);
        const station = createStation(config, { dataDir, log: createFileLogger(join(dataDir, 'station.log'), { station: config.stationId }) });
        const result = await station.pkiInit();
        const made = Object.entries(result.created).filter(([, v]) => v).map(([k]) => k);
        process.stdout.write(
          `${made.length ? `created: ${made.join(', ')}` : 'test PKI already present; nothing changed'}\n` +
            `token: ${config.hsm.tokenLabel} (PIN from ${result.pinSource})\nchain: ${result.paths.chain}\n`,
        );
        process.exit(ExitCode.OK);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('batch')
    .description('provision devices on several ports in parallel and write DIR/report.json')
    .option('--simulate <PORTS>', 'start PORTS simulated devices on PTY pairs', positiveInt)
    .option('--count <N>', 'devices in total (default: one per port)', positiveInt)
    .option('--method <ID>', 'birth-credential method: picks the first work order using it (with --work-order: checks it)')
    .option('--work-order <ID>', 'work order (default: the configuration\'s defaultWorkOrder)')
    .option('--port <PATH...>', 'ports to use when not simulating: serial paths, or hid:PATH for USB HID')
    .option('--sim-faults <SPEC>', 'simulator faults per port index, e.g. "0=silent,1=csr-wrong-serial"')
    .option('--out <DIR>', 'where report.json, certificates and labels go', 'out')
    .option('--printer <URI>', 'printer for this run: file:DIR, tcp://HOST:PORT, serial:/dev/ttyX, cups:QUEUE')
    .option('--inject <WAY>', 'method factory-injected-key: prepared (keys made ahead with station prepare; default) or at-station (made during the run)', parseInjectMode)
    .option('--wait-sync <SECONDS>', 'after the last device, wait up to SECONDS for the outbox to drain; exit 0 only if every passed device is then delivered to every configured service', positiveInt)
    .option('--with-services', 'start the reference MASA and supply-chain service for this run (DATA/services) and sync to them')
    .option('--until-empty', 'keep taking devices until every port is empty (nothing answers HELLO within the command timeout); with --simulate, --count is the line\'s supply')
    .option('--resume [RUN]', 'continue an unfinished run (default: the newest) where the database says; --count is the run\'s total; report.json is rewritten with all its devices')
    .action(async (opts: { simulate?: number; count?: number; method?: string; workOrder?: string; port?: string[]; simFaults?: string; out: string; printer?: string; inject?: 'prepared' | 'at-station'; waitSync?: number; withServices?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const outDir = resolve(opts.out);
      const dataDir = resolve(g.dataDir && program.getOptionValueSource('dataDir') !== 'default' ? g.dataDir : join(outDir, 'data'));
      const controller = new AbortController();
      let interrupted = false;
      const onSignal = () => {
        if (interrupted) process.exit(ExitCode.INTERRUPTED);
        interrupted = true;
        process.stderr.write('\nstation: interrupted; finishing the current stage of each device (press Ctrl-C again to quit at once)\n');
        controller.abort(new InterruptedError());
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const progress = createProgress();
      let runServices: RunServices | undefined;
      try {
        const config = loadConfig(g.config);
        // --method alone picks the first work order of that method; with --work-order it is a check.
        const byMethod = opts.method && !opts.workOrder ? config.workOrders.find((w) => w.method === opts.method) : undefined;
        if (opts.method && !opts.workOrder && !byMethod) {
          throw new ConfigError('METHOD_NO_WORK_ORDER', `No work order in the configuration uses method ${opts.method}; work orders: ${config.workOrders.map((w) => `${w.id} (${w.method})`).join(', ')}.`);
        }
        const workOrderId = opts.workOrder ?? byMethod?.id;
        const wo = config.workOrders.find((w) => w.id === (workOrderId ?? config.defaultWorkOrder));
        if (opts.method && wo && wo.method !== opts.method) {
          throw new ConfigError('METHOD_MISMATCH', `Work order ${wo.id} uses method ${wo.method}, not ${opts.method}. Choose another work order or method.`);
        }
        if (opts.inject && wo && wo.method !== 'factory-injected-key') {
          throw new ConfigError('INJECT_NOT_APPLICABLE', `--inject applies to method factory-injected-key only; work order ${wo.id} uses ${wo.method}.`);
        }
        mkdirSync(outDir, { recursive: true });
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        chmodSync(dataDir, 0o700);
        const log = createFileLogger(join(outDir, 'station.log'), { station: config.stationId });
        let station = createStation(config, { dataDir, log });
        if (opts.simulate !== undefined) await station.pkiInit();
        // --with-services: the reference services for this run; the run's sync targets and MASA trust anchor point at them
        if (opts.withServices) {
          runServices = await startServicesForRun(config, dataDir);
          station = createStation(runServices.config, { dataDir, log });
        }
        const resumed = resolveResume(join(dataDir, 'station.db'), config.stationId, (opts as { resume?: string | boolean }).resume, workOrderId);
        const report = await station.runBatch({
          workOrderId: resumed.workOrderId,
          resume: resumed.resume,
          untilEmpty: (opts as { untilEmpty?: boolean }).untilEmpty,
          simulate: opts.simulate,
          simulateFaults: opts.simFaults,
          ports: opts.port,
          count: opts.count,
          outDir,
          printer: opts.printer ? parsePrinterUri(opts.printer) : undefined,
          inject: opts.inject,
          waitSyncSeconds: opts.waitSync,
          signal: controller.signal,
          onStart: ({ total }) => progress.start(total),
          onDevice: (r) => progress.device(r),
        });
        progress.stop();
        log.flush();
        writeHeapSnapshotForSecurityTests();
        const c = report.counts;
        process.stderr.write(
          `${c.passed}/${c.total} passed, ${c.failed} failed${c.labelPending ? `, ${c.labelPending} label(s) pending` : ''}; report: ${join(outDir, 'report.json')}\n`,
        );
        // --wait-sync: a passed device counts only once every configured service has its record (contracts.md §1, §5)
        const undelivered = opts.waitSync === undefined ? [] : report.devices.filter((d) => d.status === 'passed' && Object.values(d.sync).some((st) => st !== 'delivered' && st !== 'disabled'));
        if (undelivered.length > 0) process.stderr.write(`${undelivered.length} passed device(s) not delivered to every service within --wait-sync ${opts.waitSync}s; "station sync status" shows the backlog\n`);
        await runServices?.services.stop();
        process.exit(c.failed > 0 || undelivered.length > 0 ? ExitCode.DEVICE_FAILED : ExitCode.OK);
      } catch (err) {
        progress.stop();
        await runServices?.services.stop();
        fail(err);
      }
    });

  const label = program.command('label').description('labels of passed devices');
  const labelOptions = (cmd: Command) =>
    cmd
      .option('--printer <URI>', 'printer: file:DIR, tcp://HOST:PORT, serial:/dev/ttyX, cups:QUEUE (default: the configured one)')
      .option('--out <DIR>', 'base folder of a file printer', '.')
      .option('--operator <NAME>', 'who does this (recorded in the audit trail)', defaultOperator());
  labelOptions(label.command('print').description('print every pending label (a printer was down, out of paper...)'))
    .option('--work-order <ID>', 'only this work order')
    .action(async (opts: { printer?: string; out: string; operator: string; workOrder?: string }) => {
      const g = program.opts<GlobalOptions>();
      try {
        const station = labelStation(g);
        const outcomes = await station.printPendingLabels({ printer: opts.printer ? parsePrinterUri(opts.printer) : undefined, outDir: opts.out, operator: opts.operator }, opts.workOrder);
        for (const o of outcomes) process.stderr.write(`${o.serial}: ${o.state === 'printed' ? 'PRINTED' : `PENDING ${o.reason}`}\n`);
        const left = outcomes.filter((o) => o.state !== 'printed').length;
        process.stderr.write(`${outcomes.length - left} printed, ${left} still pending\n`);
        process.exit(left > 0 ? ExitCode.DEVICE_FAILED : ExitCode.OK);
      } catch (err) {
        fail(err);
      }
    });
  labelOptions(label.command('reprint').description('reprint the label of a device (audited with operator and reason)'))
    .requiredOption('--serial <S>', 'device serial')
    .requiredOption('--reason <R>', 'why (damaged label, lost, ...)')
    .action(async (opts: { printer?: string; out: string; operator: string; serial: string; reason: string }) => {
      const g = program.opts<GlobalOptions>();
      try {
        if (opts.reason.trim() === '') throw new ConfigError('REASON_REQUIRED', 'A reprint needs a reason (--reason).');
        const station = labelStation(g);
        const o = await station.reprintLabel({ printer: opts.printer ? parsePrinterUri(opts.printer) : undefined, outDir: opts.out, operator: opts.operator }, opts.serial, opts.reason);
        process.stderr.write(`${o.serial}: ${o.state === 'printed' ? 'REPRINTED' : `NOT PRINTED ${o.reason}`}\n`);
        process.exit(o.state === 'printed' ? ExitCode.OK : ExitCode.DEVICE_FAILED);
      } catch (err) {
        fail(err);
      }
    });

  registerPortsCommand(program, { loadConfig });
  registerProfileCommand(program, { loadConfig });
  registerCaCommand(program, { loadConfig });
  registerSyncCommand(program, { loadConfig });
  registerAuditCommand(program, { loadConfig });
  registerDbCommand(program, { loadConfig });
  registerExportCommand(program, { loadConfig });
  registerDeviceCommand(program, { loadConfig });
  registerImportCommand(program, { loadConfig });
  registerPrepareCommand(program, { loadConfig });
  registerGuiCommand(program, { loadConfig });
  registerUserCommand(program, { loadConfig });
  registerQaCommand(program, { loadConfig });

  program.parseAsync(argv).catch(fail);
}
