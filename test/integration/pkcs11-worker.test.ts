/**
 * The PKCS#11 worker against a real SoftHSM token (made by `station pki init`'s code in a temp
 * data dir): signatures verify with node's crypto against the reported SPKI, concurrent signs
 * never collide on a session, a killed or crashed worker is restarted and the request served,
 * a token folder that goes away and comes back is recovered from, one that stays away stops the
 * line with HSM_UNAVAILABLE, and a wrong PIN fails with HSM_LOGIN_FAILED without the PIN in the
 * error. The last suite runs `station batch` and takes the token away mid-run: the line stops,
 * the report is written and the exit code is 3.
 *
 * The worker thread runs the compiled dist/hsm/pkcs11/pkcs11-worker-main.js (npm run build).
 */
import { X509Certificate, createPublicKey, randomBytes, verify } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultStationConfig, type HsmConfig } from '../../src/core/config';
import { HsmError } from '../../src/core/errors';
import { initTestPki, pkiPaths } from '../../src/hsm/ca/test-pki';
import { fromPem } from '../../src/hsm/ca/x509-builder';
import { Pkcs11WorkerSigner, type Pkcs11WorkerEvent, type Pkcs11WorkerSignerOptions } from '../../src/hsm/pkcs11/pkcs11-worker-client';
import { SOFTHSM_DEFAULT_MODULE, ensureSoftHsmConfig } from '../../src/hsm/pkcs11/softhsm-config';
import type { RunReport } from '../../src/station/run/report';
import { runStation, testDir } from '../helpers/station-cli';

function verifies(signer: Pkcs11WorkerSigner, data: Buffer, signature: Buffer): boolean {
  return verify('sha256', data, { key: createPublicKey({ key: signer.publicKeySpki, format: 'der', type: 'spki' }), dsaEncoding: 'der' }, signature);
}

async function rejection(p: Promise<unknown>): Promise<HsmError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HsmError);
    return err as HsmError;
  }
  throw new Error('expected a rejection');
}

describe('Pkcs11WorkerSigner on SoftHSM', () => {
  let dataDir: string;
  let pinFile: string;
  let pin: string;
  let base: Pkcs11WorkerSignerOptions;
  const open: Pkcs11WorkerSigner[] = [];

  const start = async (overrides: Partial<Pkcs11WorkerSignerOptions> = {}, events?: Pkcs11WorkerEvent[]) => {
    const signer = await Pkcs11WorkerSigner.start({ ...base, ...overrides, onEvent: (e) => events?.push(e) });
    open.push(signer);
    return signer;
  };
  const tokens = () => join(dataDir, 'tokens');
  const tokensAway = () => join(dataDir, 'tokens.away');

  beforeAll(async () => {
    dataDir = join(testDir('pkcs11-worker'), 'data');
    // This process's SoftHSM, initialised here first (pitfalls.md 1) as the station does.
    process.env.SOFTHSM2_CONF = ensureSoftHsmConfig(dataDir);
    const hsm: HsmConfig = { ...defaultStationConfig().hsm, tokenLabel: 'worker-test', pin: { file: 'hsm-pin' } };
    await initTestPki({ dataDir, hsm, organization: 'Worker Test', env: process.env });
    pinFile = join(dataDir, 'hsm-pin');
    pin = readFileSync(pinFile, 'utf8').trim();
    base = {
      module: SOFTHSM_DEFAULT_MODULE,
      tokenLabel: hsm.tokenLabel,
      keyLabel: hsm.caKeyLabel,
      pin: () => readFileSync(pinFile, 'utf8').trim(),
      retryBackoffMs: 10,
      restartBackoffMs: 20,
    };
  });

  afterEach(async () => {
    if (existsSync(tokensAway())) renameSync(tokensAway(), tokens());
    while (open.length > 0) await open.pop()!.close();
  });

  it('runs named ops on a pool session in the same queue as signatures, and types an unknown op', async () => {
    const signer = await start();
    const [ping, signature] = await Promise.all([signer.runOp('diag.ping', null), signer.sign(Buffer.from('between ops'))]);
    expect(ping).toEqual({ tokenLabel: 'worker-test', objects: expect.any(Number) });
    expect((ping as { objects: number }).objects).toBeGreaterThanOrEqual(4); // root + issuing CA key pairs
    expect(verifies(signer, Buffer.from('between ops'), signature)).toBe(true);
    const err = await rejection(signer.runOp('no.such-op', {}));
    expect(err.code).toBe('HSM_OP_UNKNOWN');
    // the worker still serves after a failed op
    expect(await signer.runOp('diag.ping', null)).toMatchObject({ tokenLabel: 'worker-test' });
  });

  it('serves signatures before named ops that have not started (one message per event-loop turn)', async () => {
    const signer = await start();
    const settled: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => void settled.push(name));
    // Asked for in one turn: they reach the worker in one batch, the op first.
    await Promise.all([
      track('op1', signer.runOp('diag.ping', null)),
      track('sign1', signer.sign(Buffer.from('one'))),
      track('sign2', signer.sign(Buffer.from('two'))),
      track('op2', signer.runOp('diag.ping', null)),
    ]);
    expect(settled).toEqual(['sign1', 'sign2', 'op1', 'op2']);
  });

  it('refuses a wrong PIN with HSM_LOGIN_FAILED and CKR_PIN_INCORRECT, and never carries the PIN', async () => {
    const wrong = 'wrong-pin-7f3a9c';
    const err = await rejection(Pkcs11WorkerSigner.start({ ...base, pin: wrong }));
    expect(err.code).toBe('HSM_LOGIN_FAILED');
    expect(err.details.ckr).toBe('CKR_PIN_INCORRECT');
    expect(err.message).toContain('CKR_PIN_INCORRECT');
    const everything = JSON.stringify({ message: err.message, details: err.details, stack: err.stack, cause: String(err.cause) });
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(pin);
  });

  it('signs; the DER signature verifies with node crypto against the SPKI the worker reported, which is the issuing CA certificate key', async () => {
    const events: Pkcs11WorkerEvent[] = [];
    const signer = await start({}, events);
    expect(signer.state).toBe('running');
    expect(events).toEqual([{ type: 'started', generation: 0, sessions: 2, reinitialised: false, resent: 0 }]);
    const caCert = new X509Certificate(fromPem(readFileSync(pkiPaths(dataDir).chain, 'utf8'))[0]!);
    expect(signer.publicKeySpki.equals(caCert.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    const data = randomBytes(300);
    const signature = await signer.sign(data);
    expect(signature[0]).toBe(0x30);
    expect(verifies(signer, data, signature)).toBe(true);
    expect(verifies(signer, Buffer.concat([data, Buffer.from([0])]), signature)).toBe(false);
  });

  it('finds the key by label and CKA_ID when an id is given', async () => {
    // station pki init generates each key pair with CKA_ID = the label's bytes.
    const signer = await start({ keyId: Buffer.from(base.keyLabel, 'utf8') });
    const data = randomBytes(32);
    expect(verifies(signer, data, await signer.sign(data))).toBe(true);
    const err = await rejection(Pkcs11WorkerSigner.start({ ...base, keyId: Buffer.from('no-such-id') }));
    expect(err.code).toBe('HSM_KEY_NOT_FOUND');
    expect(err.message).toContain(`"${base.keyLabel}" (id ${Buffer.from('no-such-id').toString('hex')})`);
  });

  it('serves 64 concurrent signs: every one verifies (no CKR_OPERATION_ACTIVE)', async () => {
    const events: Pkcs11WorkerEvent[] = [];
    const signer = await start({}, events);
    const data = Array.from({ length: 64 }, (_, i) => Buffer.concat([Buffer.from([i]), randomBytes(64)]));
    const signatures = await Promise.all(data.map((d) => signer.sign(d)));
    expect(signatures.every((s, i) => verifies(signer, data[i]!, s))).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['started']);
  });

  it('restarts a killed worker (terminate) and serves the requests that were in flight and the next one', async () => {
    const events: Pkcs11WorkerEvent[] = [];
    const signer = await start({}, events);
    const first = randomBytes(32);
    expect(verifies(signer, first, await signer.sign(first))).toBe(true);
    // Enough work queued in the worker (~0.1 ms a sign) that it is killed with requests unanswered.
    const data = Array.from({ length: 2000 }, () => randomBytes(48));
    const inFlight = data.map((d) => signer.sign(d));
    await signer.worker!.terminate();
    const signatures = await Promise.all(inFlight);
    expect(signatures.every((s, i) => verifies(signer, data[i]!, s))).toBe(true);
    const next = randomBytes(32);
    expect(verifies(signer, next, await signer.sign(next))).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['started', 'worker-exit', 'restarting', 'started']);
    // With a PIN source the new worker re-initialises the module and logs in again; the
    // requests the killed worker had not answered were sent to the new one.
    expect(events[3]).toMatchObject({ type: 'started', generation: 1, sessions: 2, reinitialised: true });
    expect((events[3] as { resent: number }).resent).toBeGreaterThan(0);
    expect(signer.restarts).toBe(1);
  });

  it('restarts a crashed worker; given a PIN string only, the new worker uses the process login (no re-initialisation)', async () => {
    const events: Pkcs11WorkerEvent[] = [];
    const signer = await start({ pin, testHooks: true }, events);
    const a = randomBytes(32);
    expect(verifies(signer, a, await signer.sign(a))).toBe(true);
    const exited = new Promise((r) => signer.worker!.once('exit', r));
    signer.crashWorkerForTest();
    await exited;
    const b = randomBytes(32);
    expect(verifies(signer, b, await signer.sign(b))).toBe(true);
    const exit = events.find((e) => e.type === 'worker-exit');
    expect(exit).toMatchObject({ generation: 0, reason: expect.stringContaining('crash requested by a test hook') });
    expect(events.at(-1)).toEqual({ type: 'started', generation: 1, sessions: 2, reinitialised: false, resent: 0 });
  });

  it('recovers when the token folder goes away and comes back within the bounds', async () => {
    const events: Pkcs11WorkerEvent[] = [];
    const signer = await start({ retryBackoffMs: 30 }, events);
    const a = randomBytes(32);
    expect(verifies(signer, a, await signer.sign(a))).toBe(true);
    renameSync(tokens(), tokensAway());
    // Put it back as soon as the worker notices (its first recovery attempt).
    const back = new Promise<void>((resolveBack) => {
      const timer = setInterval(() => {
        if (events.some((e) => e.type === 'recovering')) {
          clearInterval(timer);
          renameSync(tokensAway(), tokens());
          resolveBack();
        }
      }, 2);
    });
    const b = randomBytes(32);
    const signature = await signer.sign(b);
    await back;
    expect(verifies(signer, b, signature)).toBe(true);
    const recovering = events.find((e) => e.type === 'recovering');
    expect(recovering).toMatchObject({ generation: 0, attempt: 1, ckr: 'CKR_OBJECT_HANDLE_INVALID' });
    // SoftHSM sees a token folder that came back only after C_Finalize/C_Initialize: a worker restart.
    expect(events.at(-1)).toMatchObject({ type: 'started', reinitialised: true });
    const c = randomBytes(32);
    expect(verifies(signer, c, await signer.sign(c))).toBe(true);
  });

  it('stops the line with HSM_UNAVAILABLE when the token stays away past the bounds', async () => {
    const events: Pkcs11WorkerEvent[] = [];
    const signer = await start({ retries: 2, maxRestarts: 2 }, events);
    const a = randomBytes(32);
    expect(verifies(signer, a, await signer.sign(a))).toBe(true);
    renameSync(tokens(), tokensAway());
    const [err, err2] = await Promise.all([rejection(signer.sign(randomBytes(32))), rejection(signer.sign(randomBytes(32)))]);
    for (const e of [err, err2]) {
      expect(e.code).toBe('HSM_UNAVAILABLE');
      expect(e.message).toContain('HSM unavailable');
      expect(e.message).toContain('the line is stopped');
    }
    expect(err).not.toBe(err2);
    // The operator learns how it started (the old key handle died) and why it stayed down.
    expect(err.details.firstCkr).toBe('CKR_OBJECT_HANDLE_INVALID');
    expect(err.message).toContain('First error: The HSM failed while signing: CKR_OBJECT_HANDLE_INVALID');
    expect(err.details.ckr).toBe('CKR_GENERAL_ERROR');
    expect(signer.state).toBe('unavailable');
    const later = await rejection(signer.sign(randomBytes(32)));
    expect(later.code).toBe('HSM_UNAVAILABLE');
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'recovering')).toHaveLength(2);
    expect(types.filter((t) => t === 'restarting')).toHaveLength(2);
    expect(types.at(-1)).toBe('unavailable');
  });
});

describe('station batch: the HSM goes away mid-run', () => {
  let out: string;
  let result: { code: number | null; stdout: string; stderr: string };
  let report: RunReport;

  beforeAll(async () => {
    out = testDir('batch-hsm-lost');
    const running = runStation(['batch', '--simulate', '2', '--count', '400', '--out', out]);
    const labels = join(out, 'labels');
    const tokensDir = join(out, 'data', 'tokens');
    // Take the token away once a few devices have passed (a label is rendered only after the
    // record, which the HSM signs, and the lock).
    const deadline = Date.now() + 90_000;
    for (;;) {
      const passed = existsSync(labels) ? readdirSync(labels).filter((f) => f.endsWith('.png')).length : 0;
      if (passed >= 3) break;
      if (Date.now() > deadline) throw new Error('three devices did not pass within 90 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    renameSync(tokensDir, `${tokensDir}.away`);
    result = await running;
    renameSync(`${tokensDir}.away`, tokensDir);
    report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RunReport;
  });

  it('exits 3 with HSM_UNAVAILABLE after writing the report', () => {
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('HSM_UNAVAILABLE');
    expect(result.stderr).toContain('the line is stopped');
    expect(result.stderr).toContain('CKR_OBJECT_HANDLE_INVALID');
    expect(result.stderr).toContain(join(out, 'report.json'));
  });

  it('stops taking devices: the report holds the passed devices and the ones the HSM failed, far fewer than asked', () => {
    expect(report.counts.total).toBeLessThan(400);
    expect(report.counts.passed).toBeGreaterThanOrEqual(3);
    const failed = report.devices.filter((d) => d.status === 'failed');
    expect(failed.length).toBeGreaterThanOrEqual(1);
    // the HSM signs certificates (issue) and the station's records (record)
    expect(failed.some((d) => d.error?.code === 'HSM_UNAVAILABLE' && (d.error.stage === 'issue' || d.error.stage === 'record'))).toBe(true);
    // Every failure is the HSM's: no device failed for another reason.
    expect(failed.every((d) => d.error?.code === 'HSM_UNAVAILABLE')).toBe(true);
  });
});
