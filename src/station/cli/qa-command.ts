/**
 * `station qa brski --serial S --port PATH` (contracts.md §2, docs/brski.md): the BRSKI
 * confirmation of one provisioned device. The MASA is the configured sync target
 * (`sync.masa`), `--masa-url`/`--masa-ca`, or the reference services started for the command
 * (`--with-services`, on DATA/services). Prints one JSON line
 * `{"serial":S,"brski":{"voucher":"verified"|"rejected","reason"?,"voucherPath"?}}`; with
 * `--report FILE` also writes that into the device's entry of the run's report.json (paths
 * relative to the report's folder, the voucher under its brski/ folder). Exit 0 verified,
 * 1 rejected, 2 usage or configuration.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';
import { DeviceClient } from '../../device/device-client';
import { DeviceConnection } from '../../device/device-connection';
import { HidTransport } from '../../device/transport/hid-transport';
import { SerialTransport } from '../../device/transport/serial-transport';
import type { Transport } from '../../device/transport/transport';
import { createFileLogger } from '../pino-logger';
import { runBrskiCheck, type BrskiResult } from '../qa/brski-check';
import { ensureQaRegistrar } from '../qa/qa-registrar';
import { startServicesForRun, type RunServices } from '../reference-services';
import type { RunReport } from '../run/report';
import { cliErrorLine } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';

export interface QaCommandDeps {
  loadConfig(path: string | undefined): StationConfig;
}

interface QaBrskiOptions {
  serial: string;
  port: string;
  masaUrl?: string;
  masaCa?: string;
  withServices?: boolean;
  report?: string;
  out?: string;
}

function openTransport(path: string, config: StationConfig): Transport {
  return path.startsWith('hid:') ? new HidTransport({ path: path.slice(4) }) : new SerialTransport({ path, baudRate: config.deviceLink.baudRate });
}

/** Writes `brski` into the report's entry for `serial` (atomically: a temporary file, then a rename). */
export function recordBrskiInReport(reportPath: string, serial: string, result: BrskiResult): void {
  let report: RunReport;
  try {
    report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
  } catch (err) {
    throw new ConfigError('REPORT_UNREADABLE', `Cannot read the report ${reportPath}: ${(err as Error).message}`);
  }
  const device = report.devices.find((d) => d.serial === serial);
  if (!device) throw new ConfigError('REPORT_NO_DEVICE', `The report ${reportPath} has no device ${serial}.`);
  device.brski = {
    voucher: result.voucher,
    ...(result.reason ? { reason: result.reason } : {}),
    ...(result.voucherPath ? { voucherPath: relative(dirname(reportPath), result.voucherPath) } : {}),
  };
  const tmp = `${reportPath}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(report, null, 2) + '\n');
  renameSync(tmp, reportPath);
}

export function registerQaCommand(program: Command, deps: QaCommandDeps): void {
  const qa = program.command('qa').description('quality checks on provisioned devices');
  qa.command('brski')
    .description('BRSKI confirmation: the device signs a pledge voucher-request, a QA registrar asks the MASA, the device verifies the voucher with its factory-installed trust anchor')
    .requiredOption('--serial <S>', 'the device\'s serial')
    .requiredOption('--port <PATH>', 'the port the device is on: a serial path, or hid:PATH')
    .option('--masa-url <URL>', 'the MASA (default: sync.masa.url of the configuration)')
    .option('--masa-ca <FILE>', 'PEM CA of the MASA\'s TLS certificate (default: sync.masa.serverCaCertificate)')
    .option('--with-services', 'start the reference MASA and supply-chain service for this check (DATA/services)')
    .option('--report <FILE>', 'the run\'s report.json: the result goes into the device\'s entry, the voucher into brski/ beside it')
    .option('--out <DIR>', 'where the voucher goes without --report (DIR/brski/)', '.')
    .action(async (opts: QaBrskiOptions) => {
      const g = program.opts<{ config?: string; dataDir?: string }>();
      let services: RunServices | undefined;
      let connection: DeviceConnection | undefined;
      let exit: number = ExitCode.OK;
      try {
        let config = deps.loadConfig(g.config);
        const reportPath = opts.report ? resolve(opts.report) : undefined;
        // like `station batch`: the data dir is --data-dir when given, else the run's (beside the report)
        const dataDir = resolve(g.dataDir && program.getOptionValueSource('dataDir') !== 'default' ? g.dataDir : reportPath ? join(dirname(reportPath), 'data') : (g.dataDir ?? 'data'));
        const outDir = reportPath ? dirname(reportPath) : resolve(opts.out ?? '.');
        if (opts.withServices) {
          services = await startServicesForRun(config, dataDir);
          config = services.config;
        }
        const fromData = (p: string) => (isAbsolute(p) ? p : join(dataDir, p));
        const masaUrl = opts.masaUrl ?? config.sync?.masa?.url;
        const masaCaPath = opts.masaCa ? resolve(opts.masaCa) : config.sync?.masa ? fromData(config.sync.masa.serverCaCertificate) : undefined;
        if (!masaUrl || !masaCaPath) throw new ConfigError('MASA_NOT_CONFIGURED', 'No MASA to ask: configure sync.masa, give --masa-url and --masa-ca, or use --with-services.');
        let serverCa: Buffer;
        try {
          serverCa = readFileSync(masaCaPath);
        } catch (err) {
          throw new ConfigError('MASA_CA_UNREADABLE', `Cannot read the MASA's TLS CA ${masaCaPath}: ${(err as Error).message}`);
        }
        const log = createFileLogger(join(dataDir, 'station.log'), { station: config.stationId, command: 'qa brski' });
        const transport = openTransport(opts.port, config);
        await transport.open();
        connection = new DeviceConnection(transport, log.child({ port: opts.port }));
        const client = new DeviceClient(connection, { commandTimeoutMs: config.deviceLink.commandTimeoutMs, keygenTimeoutMs: config.deviceLink.keygenTimeoutMs });
        await client.hello();
        const result = await runBrskiCheck({ client, serial: opts.serial, masaUrl, serverCa, registrar: ensureQaRegistrar(dataDir), outDir, log });
        if (reportPath) recordBrskiInReport(reportPath, opts.serial, result);
        const shown = { voucher: result.voucher, ...(result.reason ? { reason: result.reason } : {}), ...(result.voucherPath ? { voucherPath: relative(outDir, result.voucherPath) } : {}) };
        process.stdout.write(JSON.stringify({ serial: opts.serial, brski: shown }) + '\n');
        exit = result.voucher === 'verified' ? ExitCode.OK : ExitCode.DEVICE_FAILED;
      } catch (err) {
        process.stderr.write(cliErrorLine(err));
        exit = exitCodeFor(err);
      } finally {
        await connection?.close().catch(() => undefined);
        await services?.services.stop();
      }
      process.exit(exit);
    });
}
