/**
 * `station gui`: starts the station behind the local HTTP + WebSocket bridge and serves the
 * operator GUI for a kiosk browser. Prints the URL (with the per-start token) on stdout;
 * runs until SIGINT/SIGTERM.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { StationApiService } from '../api/station-api-service';
import { OutboxSyncStatus } from '../sync/outbox-sync-status';
import { discoveryHotPlug } from '../api/discovery-hot-plug';
import { HttpBridge } from '../bridge/http-bridge';
import { createFileLogger } from '../pino-logger';
import { createStation } from '../station';
import { cliErrorLine, positiveInt } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';

export interface GuiCommandDeps {
  loadConfig(path: string | undefined): StationConfig;
}

interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

/** dist/renderer, next to dist/station. */
export const RENDERER_DIR = resolve(__dirname, '../../renderer');

export function registerGuiCommand(program: Command, deps: GuiCommandDeps): Command {
  return program
    .command('gui')
    .description('start the operator GUI: a local HTTP + WebSocket bridge on 127.0.0.1; prints the URL (with its one-time token) for a kiosk browser')
    .option('--simulate <PORTS>', 'a simulated line: PORTS simulated devices on PTY pairs', positiveInt)
    .option('--sim-faults <SPEC>', 'simulator faults per port index at start, e.g. "1=csr-wrong-serial" (docs/simulator.md)')
    .option('--port <PATH...>', 'real ports (default: the configuration\'s "ports")')
    .option('--out <DIR>', 'where run reports, certificates and labels go', 'out')
    .option('--listen <PORT>', 'TCP port of the bridge on 127.0.0.1 (default: a free one)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error('expected 0..65535');
      return n;
    })
    .option('--idle-timeout <SECONDS>', 'sign the operator out after this long without an action', positiveInt, 900)
    .action(async (opts: { simulate?: number; simFaults?: string; port?: string[]; out: string; listen?: number; idleTimeout: number }) => {
      const g = program.opts<GlobalOptions>();
      try {
        const config = deps.loadConfig(g.config);
        const outDir = resolve(opts.out);
        const dataDir = resolve(g.dataDir && program.getOptionValueSource('dataDir') !== 'default' ? g.dataDir : join(outDir, 'data'));
        mkdirSync(outDir, { recursive: true });
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        chmodSync(dataDir, 0o700);
        const log = createFileLogger(join(outDir, 'station.log'), { station: config.stationId });
        const station = createStation(config, { dataDir, log });
        if (opts.simulate !== undefined) await station.pkiInit();
        const service = await StationApiService.start({
          station,
          log,
          outDir,
          ...(opts.simulate !== undefined ? { simulate: { ports: opts.simulate, ...(opts.simFaults ? { faults: opts.simFaults } : {}) } } : {}),
          ...(opts.port ? { ports: opts.port } : {}),
          idleTimeoutMs: opts.idleTimeout * 1000,
          sync: new OutboxSyncStatus({ config, databasePath: join(dataDir, 'station.db') }),
          discovery: discoveryHotPlug(config.discovery),
        });
        const bridge = await HttpBridge.start({ api: service, rendererDir: RENDERER_DIR, log, port: opts.listen });
        process.stdout.write(`${bridge.url}\n`);
        process.stderr.write(`station gui: open the URL above in the kiosk browser (data: ${dataDir}); Ctrl-C stops the station\n`);
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          await bridge.close();
          await service.stop();
          log.flush();
          process.exit(ExitCode.OK);
        };
        process.on('SIGINT', () => void stop());
        process.on('SIGTERM', () => void stop());
      } catch (err) {
        process.stderr.write(cliErrorLine(err));
        process.exit(exitCodeFor(err));
      }
    });
}
