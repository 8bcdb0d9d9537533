/**
 * Every code a device can fail with in a run gets advice in operator words (not the stage
 * fallback): the codes are collected from the methods, the run and the stores the run uses.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adviceFor } from '../../../src/station/api/operator-advice';

const SRC = join(__dirname, '../../../src');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Codes thrown as DeviceError / CaError in the run's code paths (not configuration or HSM start-up). */
function deviceFailureCodes(): string[] {
  const files = [...filesUnder(join(SRC, 'methods')), join(SRC, 'station/run/device-run.ts'), join(SRC, 'station/run/block-macs.ts')];
  const codes = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/new (?:DeviceError|CaError)\(\s*'([A-Z_]+)'/g)) codes.add(m[1]!);
  }
  return [...codes].sort();
}

describe('operator advice', () => {
  it('has words of its own for every code a device fails with in a run', () => {
    const codes = deviceFailureCodes();
    expect(codes.length).toBeGreaterThan(10);
    const fallback = (code: string) => adviceFor(code, 'verify').action === adviceFor('NO_SUCH_CODE_EVER', 'verify').action;
    expect(codes.filter(fallback)).toEqual([]);
  });

  it('says whether Retry can help', () => {
    expect(adviceFor('DEVICE_TIMEOUT', 'connect').retryable).toBe(true);
    expect(adviceFor('SE_ALREADY_BOUND', 'obtain-key').retryable).toBe(false);
  });
});
