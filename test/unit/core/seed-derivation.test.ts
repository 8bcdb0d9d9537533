/**
 * Seed derivation (contracts.md §7) checked against openssl, not against our own code: OKM from
 * `openssl kdf ... HKDF`, the reduction with BigInt here, the public key from `openssl ec` over a
 * SEC1 ECPrivateKey built by hand. The vectors are those of docs/crypto-constructions.md §1; a test
 * checks that the document shows exactly these.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { P256_ORDER, SeedDerivationError, deriveSeedPrivateKey, deriveSeedPrivateScalar, deriveSeedPublicKeySpki, seedKeyInfo } from '../../../src/core/seed-derivation';
import { createPublicKey } from 'node:crypto';
import { requireTool } from '../../helpers/tools';

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const VECTORS = [
  {
    seed: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    chipId: '0011223344556677',
    info: '62697274682d6b65792d76310011223344556677',
    okm: '6bf14a761cd3567d107d903769da6a77acb97791082d00ecaa5d959ccd6eef861924cc1e35c066b1',
    d: '2d50e6b3e115c984c9042adcc2c6ea422afb06a9025e34443ee53caf9b11fbc2',
    spki: '3059301306072a8648ce3d020106082a8648ce3d03010703420004ff14ade3274b2a1666c8a33a8d9f717bf4a13220f63e5e6d908809f61d1f7fe4df1c9f2466409e908a4c94666fef7be7a8b130559a20df31584f19fa56877794',
  },
  {
    seed: 'f0e1d2c3b4a5968778695a4b3c2d1e0f0f1e2d3c4b5a69788796a5b4c3d2e1f0',
    chipId: '5345454431303032',
    info: '62697274682d6b65792d76315345454431303032',
    okm: '9e56dafd123fcf8b544fe86e2e278564f9ec4ef4bf6370d0b92e599884b96ad51af44c6ba4d28b71',
    d: '668fb7f87d90dadd236c840b2877ce2728f64b103ce4f8219f350d6cdc7f98f2',
    spki: '3059301306072a8648ce3d020106082a8648ce3d030107034200049fafdd1699107a399ea9f5a1d78d5a15de7672e66d497af3f61d42977e0f04f008256be76962f267aea7a45535224ea297e9d7758ced1cd8193ace970aaec623',
  },
  {
    // the limits a seed file accepts: the shortest seed (16 bytes) and the longest chip id (32 bytes)
    seed: '00112233445566778899aabbccddeeff',
    chipId: '434849502d49442d4f462d33322d42595445532d464f522d564543544f522d33',
    info: '62697274682d6b65792d7631434849502d49442d4f462d33322d42595445532d464f522d564543544f522d33',
    okm: '4e11ce4d147d2a55c2bf9a74eaba9a18a0c08821c103922472f360741b013c1691060f1e0577268f',
    d: 'd73cc4c9882ba176b536d27c9d3631ab52e655adf98df379b0184ee2f03409f0',
    spki: '3059301306072a8648ce3d020106082a8648ce3d0301070342000449b61e243454639d8797d90cc321a042c92703dadb569b708ea8a628b5d1db307a8b4aa84dd5952e7809277e9ac20f3a6dc1488f80d46db02b591e6a3c9e6746',
  },
];

function run(args: string[], input?: Buffer): Buffer {
  requireTool('openssl', 'openssl');
  const r = spawnSync('openssl', args, { input });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

function opensslHkdf(ikmHex: string, infoHex: string, length: number): string {
  // No salt option: HKDF's salt defaults to the empty string (HashLen zero bytes in HMAC).
  const out = run(['kdf', '-keylen', String(length), '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${ikmHex}`, '-kdfopt', `hexinfo:${infoHex}`, 'HKDF']);
  return out.toString('utf8').trim().replace(/:/g, '').toLowerCase();
}

/** SEC1 ECPrivateKey { version 1, privateKey d, [0] prime256v1 } by hand, then `openssl ec -pubout`. */
function opensslPublicKey(dHex: string): string {
  const sec1 = Buffer.from(`30310201010420${dHex}a00a06082a8648ce3d030107`, 'hex');
  return run(['ec', '-inform', 'DER', '-pubout', '-outform', 'DER'], sec1).toString('hex');
}

describe('seed derivation (method 5)', () => {
  for (const [i, v] of VECTORS.entries()) {
    it(`vector ${i + 1}: matches openssl kdf + openssl ec`, () => {
      const info = Buffer.concat([Buffer.from('birth-key-v1', 'utf8'), Buffer.from(v.chipId, 'hex')]).toString('hex');
      expect(info).toBe(v.info);
      const okm = opensslHkdf(v.seed, info, 40);
      expect(okm).toBe(v.okm);
      const d = ((BigInt(`0x${okm}`) % (N - 1n)) + 1n).toString(16).padStart(64, '0');
      expect(d).toBe(v.d);
      const spki = opensslPublicKey(d);
      expect(spki).toBe(v.spki);

      const seed = Buffer.from(v.seed, 'hex');
      const chipId = Buffer.from(v.chipId, 'hex');
      expect(seedKeyInfo(chipId).toString('hex')).toBe(info);
      expect(deriveSeedPrivateScalar(seed, chipId).toString('hex')).toBe(d);
      expect(deriveSeedPublicKeySpki(seed, chipId).toString('hex')).toBe(spki);
      expect(createPublicKey(deriveSeedPrivateKey(seed, chipId)).export({ format: 'der', type: 'spki' }).toString('hex')).toBe(spki);
    });
  }

  it('docs/crypto-constructions.md §1 shows exactly these vectors', () => {
    const doc = readFileSync(join(__dirname, '../../../docs/crypto-constructions.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## 1. Seed derivation'), doc.indexOf('\n## 2.'));
    const blocks = [...section.matchAll(/Vector (\d+)[^\n]*\n\n```\n([\s\S]*?)```/g)].map((m) => {
      const fields: Record<string, string> = {};
      let last = '';
      for (const line of m[2]!.split('\n')) {
        const named = /^(\w+)\s+([0-9a-f]+)/.exec(line);
        if (named) fields[(last = named[1]!.toLowerCase())] = named[2]!;
        else if (/^\s+[0-9a-f]+\s*$/.test(line) && last) fields[last] += line.trim();
      }
      return fields;
    });
    expect(blocks).toEqual(VECTORS.map((v) => ({ seed: v.seed, chipid: v.chipId, info: v.info, okm: v.okm, d: v.d, spki: v.spki })));
  });

  it('matches openssl for random seeds and chip ids too', () => {
    for (let i = 0; i < 3; i++) {
      const seed = Buffer.from(Array.from({ length: 16 + i * 16 }, () => Math.floor(Math.random() * 256)));
      const chipId = Buffer.from(Array.from({ length: 8 }, () => Math.floor(Math.random() * 256)));
      const okm = opensslHkdf(seed.toString('hex'), seedKeyInfo(chipId).toString('hex'), 40);
      const d = ((BigInt(`0x${okm}`) % (N - 1n)) + 1n).toString(16).padStart(64, '0');
      expect(deriveSeedPublicKeySpki(seed, chipId).toString('hex')).toBe(opensslPublicKey(d));
    }
  });

  it('uses the P-256 order and keeps d in 1..n-1', () => {
    expect(P256_ORDER).toBe(N);
    const d = BigInt(`0x${deriveSeedPrivateScalar(Buffer.alloc(32, 7), Buffer.from('01', 'hex')).toString('hex')}`);
    expect(d >= 1n && d <= N - 1n).toBe(true);
  });

  it('depends on the chip id: another chip gives another key', () => {
    const seed = Buffer.from(VECTORS[0]!.seed, 'hex');
    expect(deriveSeedPublicKeySpki(seed, Buffer.from('0011223344556678', 'hex')).toString('hex')).not.toBe(VECTORS[0]!.spki);
  });

  it('refuses a short seed and an empty chip id', () => {
    expect(() => deriveSeedPrivateScalar(Buffer.alloc(15), Buffer.from('00', 'hex'))).toThrow(SeedDerivationError);
    expect(() => deriveSeedPrivateScalar(Buffer.alloc(32), Buffer.alloc(0))).toThrow(SeedDerivationError);
  });
});
