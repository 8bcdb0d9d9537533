import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rawEcdsaToDer } from '../../../src/hsm/pkcs11/ecdsa-signature';

describe('ECDSA signature encodings', () => {
  it('converts PKCS#11 raw r||s to DER that verifies, over many signatures (high-bit and leading-zero cases)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    let highBit = 0;
    let leadingZero = 0;
    // A leading zero byte in r or s comes once in ~128 signatures: sign until both cases were
    // seen a few times (a fixed count of 400 missed them ~4% of the time), 20,000 at the most.
    for (let i = 0; i < 20_000 && (i < 400 || highBit < 3 || leadingZero < 3); i++) {
      const msg = Buffer.from(`message ${i}`);
      const raw = sign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      if (raw[0]! & 0x80 || raw[32]! & 0x80) highBit++;
      if (raw[0] === 0 || raw[32] === 0) leadingZero++;
      const der = rawEcdsaToDer(raw);
      expect(verify('sha256', msg, { key: publicKey, dsaEncoding: 'der' }, der)).toBe(true);
    }
    expect(highBit).toBeGreaterThanOrEqual(3);
    expect(leadingZero).toBeGreaterThanOrEqual(3);
  });

  it('encodes the edge cases exactly', () => {
    const r = Buffer.alloc(32, 0);
    r[31] = 1;
    const s = Buffer.alloc(32, 0xff);
    const der = rawEcdsaToDer(Buffer.concat([r, s]));
    expect(der.toString('hex')).toBe('3026020101022100' + 'ff'.repeat(32));
    expect(() => rawEcdsaToDer(Buffer.alloc(63))).toThrow(RangeError);
  });
});
