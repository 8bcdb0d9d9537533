/** SoftHSM2 keeps its tokens in a folder named by a config file; the station puts both under its data dir. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const SOFTHSM_DEFAULT_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** Write `<dir>/softhsm2.conf` (tokens in `<dir>/tokens`) if absent, and return its path. */
export function ensureSoftHsmConfig(dir: string): string {
  const abs = resolve(dir);
  const tokens = join(abs, 'tokens');
  mkdirSync(tokens, { recursive: true, mode: 0o700 });
  const conf = join(abs, 'softhsm2.conf');
  if (!existsSync(conf)) {
    writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  }
  return conf;
}

/**
 * Point this process's SoftHSM at `conf` unless the environment already names one.
 * Must run before the module is initialised: SoftHSM reads SOFTHSM2_CONF at C_Initialize.
 */
export function useSoftHsmConfig(conf: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!env.SOFTHSM2_CONF) env.SOFTHSM2_CONF = conf;
  return env.SOFTHSM2_CONF;
}
