/**
 * Runs the built device simulator (`node bin/station-sim.js start ...`) as its own process and
 * opens a station-side DeviceClient on one of its PTYs, as the station does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DeviceClient } from '../../src/device/device-client';
import { DeviceConnection } from '../../src/device/device-connection';
import { SerialTransport } from '../../src/device/transport/serial-transport';
import { REPO } from './station-cli';

export interface SimLineProcess {
  ports: string[];
  stop(): Promise<void>;
}

export async function startSimLine(opts: { method: string; dir: string; ports?: number; timeoutMs?: number }): Promise<SimLineProcess> {
  const bin = join(REPO, 'dist/simulator/cli.js');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build first with "npx tsc -p tsconfig.json"`);
  const env = { ...process.env };
  delete env.SOFTHSM2_CONF; // the simulator's SE tokens live in its own SoftHSM
  const child: ChildProcess = spawn(process.execPath, [join(REPO, 'bin/station-sim.js'), 'start', '--ports', String(opts.ports ?? 1), '--method', opts.method, '--dir', opts.dir], {
    cwd: REPO,
    env,
    // stdin stays open as a pipe: the simulator stops when it closes, even if this process dies.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const ports = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`station-sim --method ${opts.method} was not ready within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`station-sim --method ${opts.method} exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      const msg = JSON.parse(line) as { event?: string; ports?: string[] };
      if (msg.event === 'ready' && Array.isArray(msg.ports)) resolve(msg.ports);
      else reject(new Error(`unexpected first line from station-sim: ${line}`));
    });
  });
  child.removeAllListeners('exit');
  return {
    ports,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          done();
        });
        child.kill('SIGTERM');
      }),
  };
}

export async function openDeviceClient(path: string): Promise<{ client: DeviceClient; close(): Promise<void> }> {
  const transport = new SerialTransport({ path, baudRate: 115200 });
  await transport.open();
  const client = new DeviceClient(new DeviceConnection(transport), { commandTimeoutMs: 5000, keygenTimeoutMs: 15_000 });
  return { client, close: () => transport.close() };
}
