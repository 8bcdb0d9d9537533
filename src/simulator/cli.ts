/** `station-sim`: the virtual device line, as its own process. */
import { Command } from 'commander';
import { SOFTHSM_DEFAULT_MODULE } from '../hsm/pkcs11/softhsm-config';
import { parseFaultSpec } from './faults';
import { SimLine } from './sim-line';

export function main(argv: string[]): void {
  const program = new Command();
  program.name('station-sim').description('Simulated devices on PTY pairs, speaking device protocol v1');
  program
    .command('start')
    .description('start K simulated devices; prints one JSON line {"event":"ready","ports":[...]} with the station-side paths')
    .requiredOption('--ports <K>', 'number of ports', (v) => Number.parseInt(v, 10))
    .option('--dir <DIR>', 'simulator state (PTY links, SE tokens)', 'sim')
    .option('--method <ID>', 'birth-credential method the devices support', 'secure-element-keygen')
    .option('--faults <SPEC>', 'faults per port index, e.g. "0=silent,2=csr-wrong-serial"')
    .option('--model <MODEL>', 'model string the devices report', 'DemoSensor-1')
    .option('--firmware <VERSION>', 'firmware version the devices report', '1.0.0')
    .option('--softhsm-module <PATH>', 'PKCS#11 module for the SE tokens', SOFTHSM_DEFAULT_MODULE)
    .action(async (opts: { ports: number; dir: string; method: string; faults?: string; model: string; firmware: string; softhsmModule: string }) => {
      if (!Number.isInteger(opts.ports) || opts.ports < 1 || opts.ports > 256) {
        process.stderr.write('station-sim: --ports must be 1..256\n');
        process.exit(2);
      }
      if (opts.method !== 'secure-element-keygen') {
        process.stderr.write(`station-sim: method ${opts.method} is not simulated yet; supported: secure-element-keygen\n`);
        process.exit(2);
      }
      let faults;
      try {
        faults = parseFaultSpec(opts.faults);
      } catch (err) {
        process.stderr.write(`station-sim: ${(err as Error).message}\n`);
        process.exit(2);
      }
      let line: SimLine;
      try {
        line = await SimLine.start({
          dir: opts.dir,
          ports: opts.ports,
          model: opts.model,
          firmwareVersion: opts.firmware,
          faults,
          softhsmModule: opts.softhsmModule,
        });
      } catch (err) {
        process.stderr.write(`station-sim: cannot start: ${(err as Error).message}\n`);
        process.exit(1);
      }
      process.stdout.write(JSON.stringify({ event: 'ready', ports: line.ports.map((p) => p.stationPath), seTokens: line.ports.map((p) => p.seToken) }) + '\n');
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        await line.stop();
        process.exit(0);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // When the parent goes away (even by SIGKILL) our stdin closes: stop then.
      process.stdin.on('end', stop);
      process.stdin.on('error', stop);
      process.stdin.resume();
    });
  program.parseAsync(argv).catch((err: Error) => {
    process.stderr.write(`station-sim: ${err.message}\n`);
    process.exit(1);
  });
}
