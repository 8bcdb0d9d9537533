/**
 * Runs the built virtual Zebra (`node bin/station-sim.js printer ...`) as its own process, and
 * the sizes and ports the printer fault tests need.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO } from './station-cli';

export type SimPrinterMode = 'ok' | 'slow' | 'close-mid-job' | 'reset-mid-job' | 'paper-out' | 'head-open' | 'paused';

export interface SimPrinter {
  mode: SimPrinterMode;
  port: number;
  jobsDir: string;
  /** Recorded jobs, job-1 first. */
  jobs(): Buffer[];
  stop(): Promise<void>;
}

/** Fails with the reason when dist/ is missing or older than the simulator sources. */
export function requireBuiltSimulator(): void {
  for (const name of ['cli', 'printer-sink']) {
    const src = join(REPO, 'src/simulator', `${name}.ts`);
    const built = join(REPO, 'dist/simulator', `${name}.js`);
    if (!existsSync(built)) throw new Error(`${built} is missing: build first with "npx tsc -p tsconfig.json"`);
    if (statSync(src).mtimeMs > statSync(built).mtimeMs) throw new Error(`${built} is older than ${src}: rebuild with "npx tsc -p tsconfig.json"`);
  }
}

export async function startSimPrinter(mode: SimPrinterMode, jobsDir: string, timeoutMs = 15_000): Promise<SimPrinter> {
  requireBuiltSimulator();
  const child: ChildProcess = spawn(process.execPath, [join(REPO, 'bin/station-sim.js'), 'printer', '--host', '127.0.0.1', '--port', '0', '--jobs', jobsDir, '--mode', mode], {
    cwd: REPO,
    // stdin stays open: the sink stops when it closes, so a killed test run leaves no process behind.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`station-sim printer --mode ${mode} was not ready within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => reject(err));
    child.once('exit', (code) => reject(new Error(`station-sim printer --mode ${mode} exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      const msg = JSON.parse(line) as { event?: string; port?: number };
      if (msg.event === 'ready' && typeof msg.port === 'number') resolve(msg.port);
      else reject(new Error(`unexpected first line from station-sim printer: ${line}`));
    });
  });
  child.removeAllListeners('exit');
  return {
    mode,
    port,
    jobsDir,
    jobs: () =>
      readdirSync(jobsDir)
        .filter((f) => /^job-\d+\.zpl$/.test(f))
        .sort((a, b) => Number(a.slice(4, -4)) - Number(b.slice(4, -4)))
        .map((f) => readFileSync(join(jobsDir, f))),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A loopback port nobody listens on (bound, then released). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A job the kernel cannot swallow whole: more than the largest send buffer plus the largest
 * receive buffer it may autotune to. A printer that stops reading after the first bytes then
 * closes (or resets) the connection while the job is still being written.
 */
export function unswallowableJobBytes(): number {
  const max = (file: string, fallback: number): number => {
    try {
      const v = Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2]);
      return Number.isFinite(v) && v > 0 ? v : fallback;
    } catch {
      return fallback;
    }
  };
  return max('/proc/sys/net/ipv4/tcp_wmem', 4 << 20) + max('/proc/sys/net/ipv4/tcp_rmem', 32 << 20) + (4 << 20);
}

/** A ZPL job of `size` bytes: a format whose body is a long (meaningless) graphic field. */
export function zplJobOfSize(size: number): Buffer {
  const head = Buffer.from('^XA^FO0,0^GFA,');
  const tail = Buffer.from('^FS^XZ');
  const job = Buffer.alloc(size, 0x46); // 'F'
  head.copy(job, 0);
  tail.copy(job, size - tail.length);
  return job;
}
