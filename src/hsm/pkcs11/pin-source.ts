/**
 * Reads a PIN from the source the configuration names: an environment variable, or a file
 * that only its owner can read (mode 0600 or stricter). The PIN is returned to the caller
 * and never logged; errors name the source, never the value.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { HsmError } from '../../core/errors';
import type { PinSource } from '../../core/config';

export interface ResolvedPin {
  pin: string;
  /** A description of where it came from, safe to print. */
  source: string;
}

export function readPin(source: PinSource, baseDir: string, env: NodeJS.ProcessEnv = process.env): ResolvedPin {
  if (source.env !== undefined) {
    const value = env[source.env];
    if (value !== undefined && value !== '') return { pin: value, source: `environment variable ${source.env}` };
  }
  if (source.file !== undefined) {
    const path = resolve(baseDir, source.file);
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch {
      throw new HsmError(
        'HSM_PIN_MISSING',
        `No HSM PIN: ${source.env ? `the environment variable ${source.env} is not set and ` : ''}the PIN file ${path} does not exist. Run "station pki init" or provide the PIN.`,
      );
    }
    if ((mode & 0o077) !== 0) {
      throw new HsmError('HSM_PIN_FILE_MODE', `The PIN file ${path} can be read by others (mode ${(mode & 0o777).toString(8)}); run "chmod 600 ${path}".`);
    }
    const pin = readFileSync(path, 'utf8').trim();
    if (pin === '') throw new HsmError('HSM_PIN_MISSING', `The PIN file ${path} is empty.`);
    return { pin, source: `file ${path}` };
  }
  throw new HsmError('HSM_PIN_MISSING', `No HSM PIN: the environment variable ${source.env} is not set.`);
}
