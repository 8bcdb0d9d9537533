/** `station profile lint` through commander with injected files and outputs (no process). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../../src/core/config';
import { fromPem } from '../../../src/hsm/ca/x509-builder';
import { registerProfileCommand } from '../../../src/station/cli/profile-command';
import { REPO } from '../../helpers/station-cli';

const FIXTURES = join(REPO, 'fixtures/certs');

async function lint(args: string[], files: Record<string, Buffer>) {
  let stdout = '';
  let stderr = '';
  const codes: number[] = [];
  const program = new Command().exitOverride().option('--config <FILE>');
  registerProfileCommand(program, {
    loadConfig: () => parseStationConfig(defaultStationConfig()),
    readFile: (p) => {
      if (!files[p]) throw new Error('ENOENT');
      return files[p]!;
    },
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    exit: (c) => codes.push(c),
  });
  await program.parseAsync(['node', 'station', 'profile', 'lint', ...args]);
  return { stdout, stderr, code: codes[0] };
}

const pem = (name: string) => readFileSync(join(FIXTURES, name));

describe('station profile lint (command)', () => {
  it('lints DER as well as PEM, and every certificate of a PEM file', async () => {
    const der = fromPem(pem('correct.pem').toString('utf8'))[0]!;
    const r = await lint(['--json', 'a.der', 'two.pem'], { 'a.der': der, 'two.pem': Buffer.concat([pem('correct.pem'), pem('no-aki.pem')]) });
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(results.map((x) => [x.file, x.index, x.ok, x.findings.map((f: { code: string }) => f.code)])).toEqual([
      ['a.der', 0, true, []],
      ['two.pem', 0, true, []],
      ['two.pem', 1, false, ['LINT_AKI_MISSING']],
    ]);
    expect(r.code).toBe(1);
  });

  it('prints one block per certificate with its faults; exit 0 when clean', async () => {
    const bad = await lint(['x.pem'], { 'x.pem': pem('key-agreement-only.pem') });
    expect(bad.stdout).toMatch(/^x\.pem: FAULTS \(profile demo-sensor\)\n {2}FAULT {3}LINT_KEY_USAGE: keyUsage is keyAgreement/);
    expect(bad.code).toBe(1);
    const good = await lint(['y.pem'], { 'y.pem': pem('correct.pem') });
    expect(good).toEqual({ stdout: 'y.pem: OK (profile demo-sensor)\n', stderr: '', code: 0 });
  });

  it('exits 2 for an unknown product, an unreadable file, or a PEM without a certificate', async () => {
    expect(await lint(['--profile', 'nope', 'y.pem'], { 'y.pem': pem('correct.pem') })).toMatchObject({ code: 2, stderr: expect.stringContaining('PRODUCT_UNKNOWN') });
    expect(await lint(['missing.pem'], {})).toMatchObject({ code: 2, stderr: expect.stringContaining('LINT_FILE_UNREADABLE') });
    expect(await lint(['key.pem'], { 'key.pem': Buffer.from('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n') })).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('LINT_NO_CERTIFICATE'),
    });
  });
});
