/** External tools the integration tests use; a missing one fails the test with the reason. */
import { execFileSync, spawnSync } from 'node:child_process';

export function requireTool(cmd: string, debianPackage: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`]);
  if (r.status !== 0) throw new Error(`${cmd} is not installed: install the Debian package ${debianPackage} (make test does this when run as root)`);
}

export function zbarDecode(pngPath: string): string {
  requireTool('zbarimg', 'zbar-tools');
  return execFileSync('zbarimg', ['--raw', '-q', pngPath], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('utf8').replace(/\n$/, '');
}

export function openssl(args: string[], input?: Buffer): { code: number | null; out: string } {
  requireTool('openssl', 'openssl');
  const r = spawnSync('openssl', args, { input });
  return { code: r.status, out: r.stdout.toString() + r.stderr.toString() };
}
