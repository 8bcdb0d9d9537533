/**
 * Starts `station-sim` as a child process for `--simulate`: it makes the PTY pairs and the SE
 * tokens and prints the station-side port paths. Its stdin is a pipe, so it also stops when
 * this process dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ConfigError } from '../../core/errors';

/** The simulator's timing (its ready line): `paced: false`, or the values it paces with. */
export type SimulatorTiming =
  | { paced: false }
  | { paced: true; baud: number; chunkBytes: number; seKeygenMs: number; flashMsPerKb: number; bootMs: number };

export interface SimulatorProcess {
  ports: string[];
  timing: SimulatorTiming;
  timingText: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export const STATION_SIM_BIN = resolve(__dirname, '../../../bin/station-sim.js');

export async function startSimulator(opts: {
  ports: number;
  dir: string;
  faults?: string;
  method: string;
  model: string;
  /** Pace the simulated serial lines at this baud rate (with device latency); absent = PTY speed. */
  baud?: number;
}): Promise<SimulatorProcess> {
  const args = [STATION_SIM_BIN, 'start', '--ports', String(opts.ports), '--dir', opts.dir, '--method', opts.method, '--model', opts.model];
  if (opts.faults) args.push('--faults', opts.faults);
  if (opts.baud !== undefined) args.push('--baud', String(opts.baud));
  const env = { ...process.env };
  delete env.SOFTHSM2_CONF; // the simulator's SEs live in their own SoftHSM, never the station's
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  type Ready = { ports: string[]; timing: SimulatorTiming; timingText: string };
  const ready = await new Promise<Ready>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new ConfigError('SIMULATOR_START_FAILED', `station-sim did not start within 60 s: ${stderr.trim()}`)), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new ConfigError('SIMULATOR_START_FAILED', `station-sim exited with code ${code}: ${stderr.trim()}`));
    });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        const msg = JSON.parse(line) as { event: string; ports: string[]; timing?: SimulatorTiming; timingText?: string };
        if (msg.event !== 'ready') throw new Error(line);
        resolveReady({ ports: msg.ports, timing: msg.timing ?? { paced: false }, timingText: msg.timingText ?? '' });
      } catch {
        reject(new ConfigError('SIMULATOR_START_FAILED', `station-sim printed an unexpected line: ${line}`));
      }
    });
  });
  return {
    ...ready,
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

/**
 * Method 5 in `--simulate`: run `station-sim vendor-kit seeds` as the chip vendor would (its
 * crypto lives in the simulator, never in the station): N chips in DIR/vendor/chips and the
 * seed file encrypted to the station's seed-import public key (a PEM file). Resolves when the
 * file is written.
 */
export async function runSeedVendorKit(opts: { dir: string; recipientPemPath: string; count: number; out: string }): Promise<void> {
  const args = [STATION_SIM_BIN, 'vendor-kit', 'seeds', '--dir', opts.dir, '--recipient', opts.recipientPemPath, '--count', String(opts.count), '--out', opts.out];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const code = await new Promise<number | null>((done, fail) => {
    child.once('error', fail);
    child.once('exit', (c) => done(c));
  });
  if (code !== 0) throw new ConfigError('SIMULATOR_VENDOR_KIT_FAILED', `station-sim vendor-kit seeds exited with code ${code}: ${stderr.trim()}`);
}

/** What `station-sim vendor-kit se` made: the manifest and the certificates the vendor publishes. */
export interface SeVendorKitOutput {
  manifest: string;
  signerCertificate: string;
  vendorCaCertificate: string;
  serials: string[];
}

/**
 * Method 4 in `--simulate`: run `station-sim vendor-kit se` as the SE vendor would (its keys and
 * signing code live in the simulator, never in the station): N SEs on the reel in DIR/vendor and
 * their signed manifest. Resolves with the paths it printed.
 */
export async function runSeVendorKit(opts: { dir: string; count: number }): Promise<SeVendorKitOutput> {
  const args = [STATION_SIM_BIN, 'vendor-kit', 'se', '--dir', opts.dir, '--count', String(opts.count)];
  const env = { ...process.env };
  delete env.SOFTHSM2_CONF; // the SE reel lives in the simulator's SoftHSM, never the station's
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((done, fail) => {
    child.once('error', fail);
    child.once('close', (c) => done(c));
  });
  if (code !== 0) throw new ConfigError('SIMULATOR_VENDOR_KIT_FAILED', `station-sim vendor-kit se exited with code ${code}: ${stderr.trim()}`);
  try {
    const out = JSON.parse(stdout.trim().split('\n').pop() ?? '') as SeVendorKitOutput & { event: string };
    if (out.event !== 'se-manifest' || typeof out.manifest !== 'string') throw new Error('unexpected output');
    return out;
  } catch {
    throw new ConfigError('SIMULATOR_VENDOR_KIT_FAILED', `station-sim vendor-kit se printed an unexpected line: ${stdout.trim()}`);
  }
}
