/**
 * checkCsr's DER fast path against checkCsrGeneral (the asn1-schema reference): the same result
 * or the same error code for well-formed requests, wrong serials, wrong keys, other curves,
 * extension requests, and random byte mutations / truncations of valid requests.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkCsr, checkCsrGeneral, type CheckedCsr, type CsrExpectations, fastCheck } from '../../../src/hsm/ca/csr-check';
import { buildCsr } from '../../../src/simulator/csr-builder';

function keyAndSigner(curve = 'prime256v1') {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return { spki: publicKey.export({ format: 'der', type: 'spki' }), sign: (d: Buffer) => sign('sha256', d, { key: privateKey, dsaEncoding: 'der' }) };
}

function outcome(f: () => CheckedCsr): string {
  try {
    const r = f();
    return `ok ${r.spki.toString('hex')} ${r.subjectSerial} ${r.publicKeySha256Hex}`;
  } catch (err) {
    return `err ${(err as { code?: string }).code ?? (err as Error).name} ${(err as Error).message}`;
  }
}

function same(csr: Buffer, expectations: CsrExpectations): void {
  expect(outcome(() => checkCsr(csr, expectations))).toBe(outcome(() => checkCsrGeneral(csr, expectations)));
}

const keys = [keyAndSigner(), keyAndSigner(), keyAndSigner()];
const p384 = keyAndSigner('secp384r1');

describe('checkCsr fast path parity', () => {
  it('valid, wrong serial, wrong key, other curve, duplicate key', () => {
    const good = buildCsr({ serial: 'SN-1', model: 'M', organization: 'Acme', spki: keys[0]!.spki, sign: keys[0]!.sign });
    // the fast path itself answers a plain valid request (else the parity below proves nothing)
    expect(fastCheck(good, { serial: 'SN-1' })?.subjectSerial).toBe('SN-1');
    same(good, { serial: 'SN-1' });
    same(good, { serial: 'SN-2' });
    same(good, { serial: 'SN-1', certifiedKeys: { findDeviceByPublicKey: () => 'SN-9' } });
    same(good, { serial: 'SN-1', certifiedKeys: { findDeviceByPublicKey: () => 'SN-1' } });
    same(buildCsr({ serial: 'SN-1', model: 'M', spki: keys[0]!.spki, sign: keys[1]!.sign }), { serial: 'SN-1' });
    same(buildCsr({ serial: 'SN-1', model: 'M', spki: p384.spki, sign: p384.sign }), { serial: 'SN-1' });
    same(Buffer.from('3003020100', 'hex'), { serial: 'SN-1' });
    same(Buffer.alloc(0), { serial: 'SN-1' });
  });

  it('random mutations and truncations of valid requests', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: keys.length - 1 }),
        fc.string({ unit: fc.constantFrom(...'ABCXYZ0123456789-'.split('')), minLength: 1, maxLength: 20 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.option(fc.nat(), { nil: undefined }),
        (k, serial, flips, cut) => {
          const csr = buildCsr({ serial, model: 'Model', spki: keys[k]!.spki, sign: keys[k]!.sign });
          for (const [at, v] of flips) csr[at % csr.length] = v;
          const bytes = cut === undefined ? csr : csr.subarray(0, cut % (csr.length + 1));
          same(bytes, { serial });
          if (flips.length === 0 && cut === undefined) expect(fastCheck(bytes, { serial })).toBeDefined();
        },
      ),
      { numRuns: 400 },
    );
  });
});
