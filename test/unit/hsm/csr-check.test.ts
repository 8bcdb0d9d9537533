import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkCsr } from '../../../src/hsm/ca/csr-check';
import { buildCsr } from '../../../src/simulator/csr-builder';

function keyAndSigner(curve = 'prime256v1') {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return { spki: publicKey.export({ format: 'der', type: 'spki' }), sign: (d: Buffer) => sign('sha256', d, { key: privateKey, dsaEncoding: 'der' }) };
}

describe('checkCsr', () => {
  it('accepts a well-formed P-256 request for the assigned serial', () => {
    const k = keyAndSigner();
    const csr = buildCsr({ serial: 'SN-1', model: 'M', spki: k.spki, sign: k.sign });
    const checked = checkCsr(csr, { serial: 'SN-1' });
    expect(checked.subjectSerial).toBe('SN-1');
    expect(checked.spki.equals(k.spki)).toBe(true);
  });

  it('rejects a request signed by another key', () => {
    const k = keyAndSigner();
    const other = keyAndSigner();
    const csr = buildCsr({ serial: 'SN-1', model: 'M', spki: k.spki, sign: other.sign });
    expect(() => checkCsr(csr, { serial: 'SN-1' })).toThrow(expect.objectContaining({ code: 'CSR_SIGNATURE_INVALID', stage: 'obtain-key' }));
  });

  it('rejects a request for another serial', () => {
    const k = keyAndSigner();
    const csr = buildCsr({ serial: 'SN-2', model: 'M', spki: k.spki, sign: k.sign });
    expect(() => checkCsr(csr, { serial: 'SN-1' })).toThrow(expect.objectContaining({ code: 'CSR_SERIAL_MISMATCH' }));
  });

  it('rejects a P-256 point that is not on the curve as CSR_KEY_UNSUPPORTED (found by the fuzz test)', () => {
    const k = keyAndSigner();
    const offCurve = Buffer.from(k.spki);
    offCurve[offCurve.length - 1] = offCurve[offCurve.length - 1]! ^ 0x01;
    const csr = buildCsr({ serial: 'SN-1', model: 'M', spki: offCurve, sign: k.sign });
    expect(() => checkCsr(csr, { serial: 'SN-1' })).toThrow(expect.objectContaining({ code: 'CSR_KEY_UNSUPPORTED', stage: 'obtain-key' }));
  });

  it('rejects keys that are not P-256, and bytes that are not a CSR', () => {
    const k = keyAndSigner('secp384r1');
    const csr = buildCsr({ serial: 'SN-1', model: 'M', spki: k.spki, sign: k.sign });
    expect(() => checkCsr(csr, { serial: 'SN-1' })).toThrow(expect.objectContaining({ code: 'CSR_KEY_UNSUPPORTED' }));
    expect(() => checkCsr(Buffer.from('3003020100', 'hex'), { serial: 'SN-1' })).toThrow(expect.objectContaining({ code: 'CSR_MALFORMED' }));
  });
});
