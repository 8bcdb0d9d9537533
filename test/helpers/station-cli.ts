/** Runs the built `station` CLI as a child process (integration tests use the real binary). */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '../..');
export const STATION_BIN = join(REPO, 'bin/station.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.SOFTHSM2_CONF;
  if (!('STATION_HSM_PIN' in extra)) delete env.STATION_HSM_PIN;
  return env;
}

export function runStation(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [STATION_BIN, ...args], { env: opts.env ?? cleanEnv(), cwd: opts.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export function testDir(name: string): string {
  const base = join(REPO, '.test-out');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, `${name}-`));
}
