/**
 * Starts `station-sim` as a child process for `--simulate`: it makes the PTY pairs and the SE
 * tokens and prints the station-side port paths. Its stdin is a pipe, so it also stops when
 * this process dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ConfigError } from '../../core/errors';

export interface SimulatorProcess {
  ports: string[];
  process: ChildProcess;
  stop(): Promise<void>;
}

export const STATION_SIM_BIN = resolve(__dirname, '../../../bin/station-sim.js');

export async function startSimulator(opts: { ports: number; dir: string; faults?: string; method: string; model: string }): Promise<SimulatorProcess> {
  const args = [STATION_SIM_BIN, 'start', '--ports', String(opts.ports), '--dir', opts.dir, '--method', opts.method, '--model', opts.model];
  if (opts.faults) args.push('--faults', opts.faults);
  const env = { ...process.env };
  delete env.SOFTHSM2_CONF; // the simulator's SEs live in their own SoftHSM, never the station's
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const ports = await new Promise<string[]>((resolvePorts, reject) => {
    const timer = setTimeout(() => reject(new ConfigError('SIMULATOR_START_FAILED', `station-sim did not start within 60 s: ${stderr.trim()}`)), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new ConfigError('SIMULATOR_START_FAILED', `station-sim exited with code ${code}: ${stderr.trim()}`));
    });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        const msg = JSON.parse(line) as { event: string; ports: string[] };
        if (msg.event !== 'ready') throw new Error(line);
        resolvePorts(msg.ports);
      } catch {
        reject(new ConfigError('SIMULATOR_START_FAILED', `station-sim printed an unexpected line: ${line}`));
      }
    });
  });
  return {
    ports,
    process: child,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(killTimer);
          done();
        });
        child.kill('SIGTERM');
      }),
  };
}
