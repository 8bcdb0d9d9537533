/** `station-sim`: the virtual device line, as its own process. */
import { Command } from 'commander';
import { METHOD_IDS, isMethodId } from '../core/method-id';
import { MAX_PAYLOAD_BYTES } from '../device/framing/frame-codec';
import { MIN_PAYLOAD_BYTES } from '../device/framing/fragments';
import { SOFTHSM_DEFAULT_MODULE } from '../hsm/pkcs11/softhsm-config';
import { formatLinkFault, parseFaultSpec } from './faults';
import { DEFAULT_BAUD, describeTiming, pacedTiming, type SimTiming } from './link-timing';
import { PRINTER_SINK_MODES, PrinterSink, isPrinterSinkMode } from './printer-sink';
import { SimLine } from './sim-line';
import { registerSeVendorKitCommand } from './vendor/se-vendor-kit-command';
import { registerSeedVendorKitCommand } from './vendor/seed-vendor-kit-command';

/**
 * Run until SIGTERM/SIGINT, or until the parent goes away (even by SIGKILL): our stdin is a
 * pipe from it and closes then. `stop` runs once.
 */
function serveUntilStopped(stop: () => Promise<void>): void {
  let stopping = false;
  const onStop = async () => {
    if (stopping) return;
    stopping = true;
    await stop();
    process.exit(0);
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.stdin.on('end', onStop);
  process.stdin.on('error', onStop);
  process.stdin.resume();
}

export function main(argv: string[]): void {
  const program = new Command();
  program.name('station-sim').description('Simulated devices on PTY pairs, speaking device protocol v1');
  program
    .command('start')
    .description('start K simulated devices; prints one JSON line {"event":"ready","ports":[...]} with the station-side paths')
    .requiredOption('--ports <K>', 'number of ports', (v) => Number.parseInt(v, 10))
    .option('--dir <DIR>', 'simulator state (PTY links, SE tokens)', 'sim')
    .option('--method <ID>', 'birth-credential method the devices support', 'secure-element-keygen')
    .option('--faults <SPEC>', 'faults per port index, e.g. "0=silent,1=drop:GET_CSR,2=delay:IDENTIFY:4000,3=slow-se:2000" (docs/simulator.md)')
    .option('--pace', `pace the output like a serial line (${DEFAULT_BAUD} baud unless --baud) and add device latency (SE keygen, flash writes, boot)`)
    .option('--baud <N>', 'pace at N baud (implies --pace)', (v) => Number.parseInt(v, 10))
    .option('--model <MODEL>', 'model string the devices report', 'DemoSensor-1')
    .option('--firmware <VERSION>', 'firmware version the devices report', '1.0.0')
    .option('--softhsm-module <PATH>', 'PKCS#11 module for the SE tokens', SOFTHSM_DEFAULT_MODULE)
    .option('--max-payload <BYTES>', 'each device\'s frame limit (larger messages are fragmented)', (v) => Number.parseInt(v, 10), 1024)
    .option('--keep-devices', 'each port keeps its one device across sessions (provision, then run station qa brski on the same device)')
    .action(async (opts: { ports: number; dir: string; method: string; faults?: string; pace?: boolean; baud?: number; model: string; firmware: string; softhsmModule: string; maxPayload: number; keepDevices?: boolean }) => {
      if (!Number.isInteger(opts.ports) || opts.ports < 1 || opts.ports > 256) {
        process.stderr.write('station-sim: --ports must be 1..256\n');
        process.exit(2);
      }
      if (!isMethodId(opts.method)) {
        process.stderr.write(`station-sim: unknown method ${opts.method}; one of ${METHOD_IDS.join(', ')}\n`);
        process.exit(2);
      }
      const method = opts.method;
      if (!Number.isInteger(opts.maxPayload) || opts.maxPayload < MIN_PAYLOAD_BYTES || opts.maxPayload > MAX_PAYLOAD_BYTES) {
        process.stderr.write(`station-sim: --max-payload must be ${MIN_PAYLOAD_BYTES}..${MAX_PAYLOAD_BYTES}\n`);
        process.exit(2);
      }
      if (opts.baud !== undefined && !(Number.isInteger(opts.baud) && opts.baud >= 300 && opts.baud <= 12_000_000)) {
        process.stderr.write('station-sim: --baud must be 300..12000000\n');
        process.exit(2);
      }
      const timing: SimTiming | undefined = opts.pace || opts.baud !== undefined ? pacedTiming(opts.baud ?? DEFAULT_BAUD) : undefined;
      let faults;
      try {
        faults = parseFaultSpec(opts.faults);
      } catch (err) {
        process.stderr.write(`station-sim: ${(err as Error).message}\n`);
        process.exit(2);
      }
      const outside = [...faults.keys()].filter((i) => i >= opts.ports);
      if (outside.length > 0) {
        process.stderr.write(`station-sim: --faults names port ${outside.join(', ')}, but there are only ports 0..${opts.ports - 1}\n`);
        process.exit(2);
      }
      let line: SimLine;
      try {
        line = await SimLine.start({
          dir: opts.dir,
          ports: opts.ports,
          model: opts.model,
          firmwareVersion: opts.firmware,
          method,
          maxPayloadBytes: opts.maxPayload,
          faults,
          timing,
          softhsmModule: opts.softhsmModule,
          keepDevices: opts.keepDevices === true,
          onDisconnect: (p) => process.stdout.write(JSON.stringify({ event: 'disconnected', port: p.stationPath, reason: 'disconnect fault' }) + '\n'),
        });
      } catch (err) {
        process.stderr.write(`station-sim: cannot start: ${(err as Error).message}\n`);
        process.exit(1);
      }
      process.stdout.write(
        JSON.stringify({
          event: 'ready',
          ports: line.ports.map((p) => p.stationPath),
          seTokens: line.ports.map((p) => p.seToken),
          // contracts.md §4: the timing values are printed with whatever is measured against them
          timing: timing ? { paced: true, ...timing } : { paced: false },
          timingText: describeTiming(timing),
          faults: Object.fromEntries([...faults].map(([i, f]) => [i, [...f.firmware, ...f.link.map(formatLinkFault)]])),
        }) + '\n',
      );
      serveUntilStopped(() => line.stop());
    });
  program
    .command('printer')
    .description('a virtual Zebra on raw TCP: records each job as job-<n>.zpl and answers ~HS; prints one JSON line {"event":"ready","port":N}')
    .requiredOption('--jobs <DIR>', 'folder where jobs are recorded')
    .option('--host <HOST>', 'address to listen on', '127.0.0.1')
    .option('--port <PORT>', 'TCP port; 0 picks a free one', '0')
    .option('--mode <MODE>', `behaviour: ${PRINTER_SINK_MODES.join(' | ')}`, 'ok')
    .action(async (opts: { jobs: string; host: string; port: string; mode: string }) => {
      const port = /^\d{1,5}$/.test(opts.port) ? Number(opts.port) : NaN;
      if (!(port >= 0 && port <= 65535)) {
        process.stderr.write('station-sim: --port must be 0..65535\n');
        process.exit(2);
      }
      if (!isPrinterSinkMode(opts.mode)) {
        process.stderr.write(`station-sim: unknown --mode ${opts.mode}; one of ${PRINTER_SINK_MODES.join(', ')}\n`);
        process.exit(2);
      }
      let sink: PrinterSink;
      try {
        sink = await PrinterSink.start({ jobsDir: opts.jobs, host: opts.host, port, mode: opts.mode });
      } catch (err) {
        process.stderr.write(`station-sim: cannot start the printer sink: ${(err as Error).message}\n`);
        process.exit(1);
      }
      process.stdout.write(JSON.stringify({ event: 'ready', port: sink.port }) + '\n');
      serveUntilStopped(() => sink.stop());
    });
  // What component vendors ship, made as they would (contracts.md §2): one subcommand per kit.
  const vendorKit = program.command('vendor-kit').description('make what a component vendor ships for simulated devices: SE manifests and keys, encrypted seed files');
  registerSeVendorKitCommand(vendorKit);
  registerSeedVendorKitCommand(vendorKit);
  program.parseAsync(argv).catch((err: Error) => {
    process.stderr.write(`station-sim: ${err.message}\n`);
    process.exit(1);
  });
}
