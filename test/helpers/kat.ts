/**
 * The known-answer vector, made at test time by OpenSSL (fixtures/certs/kat/make-kat.sh) with
 * fresh keys in a temporary folder, once per test process. No private key is committed.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, testDir } from './station-cli';
import { requireTool } from './tools';

let dir: string | undefined;

/** The folder holding device-key.pem, ca-key.pem, ca.pem, kat-openssl.pem and tbs.der. */
export function katDir(): string {
  if (!dir) {
    requireTool('openssl', 'openssl');
    const out = testDir('kat-vector');
    execFileSync('sh', [join(REPO, 'fixtures/certs/kat/make-kat.sh'), out], { stdio: ['ignore', 'ignore', 'pipe'] });
    dir = out;
  }
  return dir;
}
