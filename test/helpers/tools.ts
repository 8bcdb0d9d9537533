/** External tools the integration tests use; a missing one fails the test with the reason. */
import { execFileSync, spawnSync } from 'node:child_process';

export function requireTool(cmd: string, debianPackage: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`]);
  if (r.status !== 0) throw new Error(`${cmd} is not installed: install the Debian package ${debianPackage} (make test does this when run as root)`);
}

function zbarimg(symbology: string, pngPath: string): string {
  requireTool('zbarimg', 'zbar-tools');
  // Only the one symbology: zbar would otherwise also report whatever else it finds on the label.
  return execFileSync('zbarimg', ['--raw', '-q', '-Sdisable', `-S${symbology}.enable`, pngPath], { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString('utf8')
    .replace(/\n$/, '');
}

/** The QR code(s) in the image, one per line; throws when zbarimg finds none. */
export function zbarDecode(pngPath: string): string {
  return zbarimg('qrcode', pngPath);
}

/** The Code 128 barcode(s) in the image, one per line; throws when zbarimg finds none. */
export function zbarDecodeCode128(pngPath: string): string {
  return zbarimg('code128', pngPath);
}

export function openssl(args: string[], input?: Buffer): { code: number | null; out: string } {
  requireTool('openssl', 'openssl');
  const r = spawnSync('openssl', args, { input });
  return { code: r.status, out: r.stdout.toString() + r.stderr.toString() };
}
