/**
 * The batched signature checker (src/hsm/ca/signature-checker.ts): a worker thread gives the same
 * verdicts as the in-process check (valid, invalid, bad key), shares one message per turn of the
 * event loop, and a dead worker never leaves a check unanswered or answered without a check.
 * checkCsrWith gives checkCsr's results and codes through it.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkCsr, checkCsrWith, type CheckedCsr } from '../../../src/hsm/ca/csr-check';
import { InProcessSignatureChecker, WorkerSignatureChecker, type SignatureCheck } from '../../../src/hsm/ca/signature-checker';
import { buildCsr } from '../../../src/simulator/csr-builder';
import type { IssuanceJournal } from '../../../src/core/ports/issuance-journal';
import type { Signer } from '../../../src/core/ports/signer';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { fromPem } from '../../../src/hsm/ca/x509-builder';
import { defaultStationConfig } from '../../../src/core/config';
import { katDir } from '../../helpers/kat';

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { spki, point: spki.subarray(spki.length - 65), sign: (d: Buffer) => sign('sha256', d, { key: privateKey, dsaEncoding: 'der' }) };
}

const ca = keyPair();
const other = keyPair();
const device = keyPair();
/** A point with a valid encoding that is not on the curve. */
const offCurve = Buffer.concat([Buffer.from([4]), Buffer.alloc(32, 1), Buffer.alloc(32, 2)]);

function checks(caRef: SignatureCheck['key']): Array<{ check: SignatureCheck; expected: string }> {
  const data = Buffer.from('tbs bytes');
  return [
    { check: { key: caRef, data, signature: ca.sign(data) }, expected: 'valid' },
    { check: { key: caRef, data, signature: other.sign(data) }, expected: 'invalid' },
    { check: { key: caRef, data: Buffer.from('other bytes'), signature: ca.sign(data) }, expected: 'invalid' },
    { check: { key: caRef, data, signature: Buffer.from('3003020101', 'hex') }, expected: 'invalid' },
    { check: { key: { p256Point: device.point }, data, signature: device.sign(data) }, expected: 'valid' },
    { check: { key: { p256Point: device.point }, data, signature: ca.sign(data) }, expected: 'invalid' },
    { check: { key: { p256Point: offCurve }, data, signature: device.sign(data) }, expected: 'bad-key' },
    { check: { key: { p256Point: device.point.subarray(1) }, data, signature: device.sign(data) }, expected: 'bad-key' },
    { check: { key: { registered: 99 }, data, signature: ca.sign(data) }, expected: 'bad-key' },
  ];
}

let open: WorkerSignatureChecker | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

describe('signature checker', () => {
  it('in process: valid, invalid and bad-key verdicts; a key registered twice is kept once', async () => {
    const c = new InProcessSignatureChecker();
    const ref = c.registerKey(ca.spki);
    expect(c.registerKey(other.spki)).toEqual({ registered: 1 });
    expect(c.registerKey(ca.spki)).toEqual(ref);
    for (const { check, expected } of checks(ref)) expect(await c.check(check)).toBe(expected);
  });

  it('in a worker: the same verdicts; the checks of one turn of the event loop go in messages of at most 8', async () => {
    const c = (open = new WorkerSignatureChecker());
    c.registerKey(other.spki);
    const ref = c.registerKey(ca.spki);
    // the same key again (another issuer of the run): the same reference, for the worker too
    expect(c.registerKey(ca.spki)).toEqual(ref);
    const cases = checks(ref);
    const verdicts = await Promise.all(cases.map((x) => c.check(x.check)));
    expect(verdicts).toEqual(cases.map((x) => x.expected));
    expect(c.stats).toMatchObject({ batches: Math.ceil(cases.length / 8), checks: cases.length, inProcess: 0 });
  });

  it('a worker that dies mid-batch: every check is still answered, by a check in process', async () => {
    const reasons: string[] = [];
    const c = (open = new WorkerSignatureChecker({ onFallback: (r) => reasons.push(r) }));
    const ref = c.registerKey(ca.spki);
    // 64 MiB to hash, first: the worker is still on it (and the rest waits behind it) when it is killed.
    const big = Buffer.alloc(64 * 1024 * 1024, 7);
    const cases = [{ check: { key: ref, data: big, signature: ca.sign(big) }, expected: 'valid' }, ...checks(ref)];
    const pending = Promise.all(cases.map((x) => c.check(x.check)));
    await new Promise((r) => setImmediate(r)); // the batches have been sent
    expect(c.stats).toMatchObject({ batches: Math.ceil(cases.length / 8), checks: cases.length, inProcess: 0 });
    await c.killWorker();
    expect(await pending).toEqual(cases.map((x) => x.expected));
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/signature-check worker exited/);
    // the held batch was checked here
    expect(c.stats.inProcess).toBe(cases.length);
    // later checks too
    const small = checks(ref);
    expect(await Promise.all(small.map((x) => c.check(x.check)))).toEqual(small.map((x) => x.expected));
    expect(c.stats.inProcess).toBe(cases.length + small.length);
  });

  it('a check asked for while the checker closes (from an earlier check\'s callback) is answered', async () => {
    const c = new WorkerSignatureChecker();
    const ref = c.registerKey(ca.spki);
    const [first, second] = checks(ref);
    const chained = c.check(first!.check).then(() => c.check(second!.check));
    const closing = c.close();
    expect(await chained).toBe(second!.expected);
    await closing;
    expect(await c.check(first!.check)).toBe('valid');
  });

  it('close answers what was asked before the worker stops', async () => {
    const c = new WorkerSignatureChecker();
    const ref = c.registerKey(ca.spki);
    const cases = checks(ref);
    const pending = Promise.all(cases.map((x) => c.check(x.check)));
    await c.close();
    expect(await pending).toEqual(cases.map((x) => x.expected));
  });
});

describe('checkCsrWith', () => {
  function outcome(r: CheckedCsr | Error): string {
    return r instanceof Error ? `err ${(r as { code?: string }).code}` : `ok ${r.publicKeySha256Hex} ${r.subjectSerial}`;
  }
  it('gives checkCsr\'s result or code: valid, wrong serial, wrong key, duplicate key, garbage', async () => {
    const c = (open = new WorkerSignatureChecker());
    const good = buildCsr({ serial: 'SN-1', model: 'M', spki: device.spki, sign: device.sign });
    const forged = buildCsr({ serial: 'SN-1', model: 'M', spki: device.spki, sign: other.sign });
    const cases: Array<[Buffer, Parameters<typeof checkCsr>[1]]> = [
      [good, { serial: 'SN-1' }],
      [good, { serial: 'SN-2' }],
      [forged, { serial: 'SN-1' }],
      [good, { serial: 'SN-1', certifiedKeys: { findDeviceByPublicKey: () => 'SN-9' } }],
      [Buffer.from('3003020100', 'hex'), { serial: 'SN-1' }],
    ];
    const codes: string[] = [];
    for (const [der, expectations] of cases) {
      const viaWorker = await checkCsrWith(c, der, expectations).catch((e: Error) => e);
      let direct: CheckedCsr | Error;
      try {
        direct = checkCsr(der, expectations);
      } catch (e) {
        direct = e as Error;
      }
      expect(outcome(viaWorker)).toBe(outcome(direct));
      codes.push(outcome(viaWorker).split(' ')[0] === 'ok' ? 'ok' : outcome(viaWorker).split(' ')[1]!);
    }
    expect(codes).toEqual(['ok', 'CSR_SERIAL_MISMATCH', 'CSR_SIGNATURE_INVALID', 'CSR_KEY_ALREADY_CERTIFIED', 'CSR_MALFORMED']);
    expect(c.stats.checks).toBeGreaterThan(0);
  });
});

describe('IdevidIssuer with the worker checker', () => {
  const KAT = katDir();
  const caKey = createPrivateKey(readFileSync(join(KAT, 'ca-key.pem')));
  const caSpki = createPublicKey(caKey).export({ format: 'der', type: 'spki' });
  const caDer = fromPem(readFileSync(join(KAT, 'ca.pem'), 'utf8'))[0]!;
  const profile = defaultStationConfig().products['demo-sensor']!.idevid;

  function journal(issued: string[]): IssuanceJournal {
    return { recordIntent: () => undefined, recordIssued: (e) => void issued.push(e.deviceSerial), findDeviceByPublicKey: () => undefined };
  }

  it('releases a certificate whose HSM signature verifies, and refuses (unrecorded) one signed by another key', async () => {
    const c = (open = new WorkerSignatureChecker());
    const issued: string[] = [];
    const good: Signer = { algorithm: 'ecdsa-p256-sha256', publicKeySpki: caSpki, sign: async (d) => sign('sha256', d, { key: caKey, dsaEncoding: 'der' }) };
    // The token's key was swapped or the signature is corrupt: it claims the CA key, signs with another.
    const wrong: Signer = { ...good, sign: async (d) => other.sign(Buffer.from(d)) };
    const ok = new IdevidIssuer(good, [caDer], journal(issued), { signatureChecker: c });
    const bad = new IdevidIssuer(wrong, [caDer], journal(issued), { signatureChecker: c });
    const req = (serial: string) => ({ spki: device.spki, serial, model: 'M', workOrderId: 'WO-1', profile });
    const cert = await ok.issue(req('SN-GOOD'));
    expect(cert.certificateDer.length).toBeGreaterThan(300);
    await expect(bad.issue(req('SN-BAD'))).rejects.toMatchObject({ code: 'CA_SIGNATURE_CHECK_FAILED' });
    expect(issued).toEqual(['SN-GOOD']);
    expect(c.stats.checks).toBe(2);
  });
});
