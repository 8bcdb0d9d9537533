/**
 * A PTY pair made by socat: two linked pseudo-terminals, one end for the station and one for the
 * simulated device, each reachable through a symlink (PTYs are not udev devices, so discovery
 * watches the link folder).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

export interface PtyPair {
  stationPath: string;
  devicePath: string;
  process: ChildProcess;
  close(): Promise<void>;
}

export async function openPtyPair(stationPath: string, devicePath: string, timeoutMs = 5000): Promise<PtyPair> {
  for (const p of [stationPath, devicePath]) rmSync(p, { force: true });
  const child = spawn('socat', [`pty,raw,echo=0,link=${stationPath}`, `pty,raw,echo=0,link=${devicePath}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(new Error(err.message.includes('ENOENT') ? 'socat is not installed (apt-get install socat)' : `socat failed: ${err.message}`)),
    );
    child.once('exit', (code) => reject(new Error(`socat exited with ${code}: ${stderr.trim()}`)));
  });
  const ready = (async () => {
    const start = Date.now();
    while (!(existsSync(stationPath) && existsSync(devicePath))) {
      if (Date.now() - start > timeoutMs) throw new Error(`socat did not create ${stationPath} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await Promise.race([ready, spawnError]);
  spawnError.catch(() => undefined);
  return {
    stationPath,
    devicePath,
    process: child,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
