/**
 * Secrets stay secret (issue 9, security checks): after a run of every implemented method, the
 * station's logs, database (with its WAL), reports, certificates, labels and temp files, and a
 * V8 heap snapshot of the station's main thread, hold none of the run's PINs or the devices'
 * private scalars in raw, hex, HEX, base64 or base64url form.
 *
 * The devices' scalars come from the simulator's security-test hook (STATION_SIM_SECRETS_LOG:
 * software birth keys only; SE keys cannot leave their token, so there is nothing to search
 * for). The PIN files themselves and the simulator's own folders are the secrets' homes and are
 * not scanned. A heap snapshot holds JS strings and objects, not Buffer backing stores: that
 * limit is why the PIN handling never keeps a PIN string alive (docs/security-model.md).
 */
import { mkdirSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { METHOD_IDS } from '../../src/core/method-id';
import { filesUnder, scanBytes, scanFiles, secretForms, type Secret } from '../helpers/secret-scan';
import { cleanEnv, runStation, testDir } from '../helpers/station-cli';

describe('secret forms', () => {
  it('finds a secret embedded in base64 text at any alignment, and in hex of either case', () => {
    const secret = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    for (let k = 0; k < 3; k++) {
      const text = Buffer.from(`x${Buffer.concat([Buffer.alloc(k, 7), secret, Buffer.alloc(5, 1)]).toString('base64')}y`);
      expect(scanBytes(text, 't', [{ label: 's', value: secret }]).length).toBeGreaterThan(0);
    }
    expect(scanBytes(Buffer.from(`..${secret.toString('hex').toUpperCase()}..`), 't', [{ label: 's', value: secret }])[0]!.form).toBe('HEX');
    expect(secretForms(secret).map((f) => f.form)).toContain('base64url@2');
    expect(scanBytes(Buffer.from('nothing here at all, nothing'), 't', [{ label: 's', value: secret }])).toEqual([]);
  });
});

describe('no secret in anything the station writes', () => {
  const methods = METHOD_IDS;
  const runs = new Map<string, { out: string; tmp: string; heap: string; secretsLog: string; code: number | null; stderr: string }>();

  beforeAll(async () => {
    const base = testDir('secrets-scan');
    // one method at a time: each run is a full station process with its simulator
    for (const method of methods) {
      const dir = join(base, method);
      const tmp = join(dir, 'tmp');
      mkdirSync(tmp, { recursive: true });
      const run = { out: join(dir, 'out'), tmp, heap: join(dir, 'station.heapsnapshot'), secretsLog: join(dir, 'device-secrets.jsonl'), code: null as number | null, stderr: '' };
      const env = cleanEnv({ TMPDIR: tmp, STATION_HEAP_SNAPSHOT: run.heap, STATION_SIM_SECRETS_LOG: run.secretsLog });
      const r = await runStation(['batch', '--simulate', '2', '--count', '3', '--method', method, '--out', run.out], { env });
      run.code = r.code;
      run.stderr = r.stderr;
      runs.set(method, run);
    }
  }, 300_000);

  it.each(METHOD_IDS)('%s: passes, and no PIN or device scalar appears in logs, DB, reports, temp files or the heap', (method) => {
    const run = runs.get(method)!;
    expect(run.code, run.stderr).toBe(0);
    const data = join(run.out, 'data');
    const secrets: Secret[] = [];
    for (const [label, path] of [
      ['HSM user PIN', join(data, 'hsm-pin')],
      ['HSM SO PIN', join(data, 'hsm-so-pin')],
      ['simulated SE user PIN', join(data, 'sim', 'se-pin')],
      ['simulated SE SO PIN', join(data, 'sim', 'se-so-pin')],
    ] as const) {
      if (existsSync(path)) secrets.push({ label, value: Buffer.from(readFileSync(path, 'utf8').trim()) });
    }
    expect(secrets.map((s) => s.label)).toContain('HSM user PIN');
    if (existsSync(run.secretsLog)) {
      for (const line of readFileSync(run.secretsLog, 'utf8').trim().split('\n')) {
        const { hex, origin } = JSON.parse(line) as { hex: string; origin: string };
        secrets.push({ label: `device private scalar (${origin})`, value: Buffer.from(hex, 'hex') });
      }
    }
    // method 5: the seeds the chip vendor burned (the simulator's fab records); the station sees them only encrypted
    for (const which of ['available', 'taken']) {
      const chips = join(data, 'sim', 'vendor', 'chips', which);
      if (!existsSync(chips)) continue;
      for (const f of readdirSync(chips)) {
        const { seed } = JSON.parse(readFileSync(join(chips, f), 'utf8')) as { seed: string };
        secrets.push({ label: `chip seed ${f}`, value: Buffer.from(seed, 'base64') });
      }
    }
    // every software birth key the devices held (methods 1, 3 and 5) was handed to the scan
    if (['on-device-keygen', 'factory-injected-key', 'seed-derived'].includes(method)) {
      expect(secrets.filter((s) => s.label.startsWith('device private scalar')).length).toBeGreaterThanOrEqual(3);
    }
    if (method === 'seed-derived') expect(secrets.filter((s) => s.label.startsWith('chip seed')).length).toBeGreaterThanOrEqual(3);

    const pinFiles = new Set(['hsm-pin', 'hsm-so-pin'].map((n) => join(data, n)));
    const written = filesUnder(run.out, (p) => pinFiles.has(p) || p === join(data, 'sim') || p === join(data, 'tokens'));
    expect(written.some((p) => p.endsWith('station.db'))).toBe(true);
    expect(written.some((p) => p.endsWith('station.log'))).toBe(true);
    const tempFiles = filesUnder(run.tmp);
    expect(existsSync(run.heap), 'the station wrote no heap snapshot').toBe(true);
    // a real snapshot of the run: it holds the run's strings (the method id, a device's DPP URI)
    const heap = readFileSync(run.heap);
    expect(heap.includes(Buffer.from(method))).toBe(true);
    expect(heap.includes(Buffer.from('DPP:'))).toBe(true);
    const findings = scanFiles([...written, ...tempFiles, run.heap], secrets);
    expect(findings.map((f) => `${f.secret} as ${f.form} in ${f.where.replace(run.out, 'OUT')}`)).toEqual([]);
    // the scan looked at real content
    expect(readdirSync(join(run.out, 'certs')).length).toBeGreaterThan(0);
  });
});
