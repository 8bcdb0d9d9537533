/**
 * The seed file envelope (docs/crypto-constructions.md §5) without the HSM: the vendor kit's
 * writer against the station's parser and decryption (the worker runs the same core functions
 * after the HSM's ECDH), the key agreement and KDF checked against openssl (`openssl pkeyutl
 * -derive`, `openssl kdf ... HKDF`), tampering and malformed files refused with their codes.
 */
import { createECDH, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/core/errors';
import {
  openSeedFileEnvelope,
  parseSeedFileEnvelope,
  parseSeedFilePayload,
  seedFileCek,
  seedFileKdfInfo,
  seedRecipientKeyId,
} from '../../../src/core/seed-file-envelope';
import { writeSeedFile } from '../../../src/simulator/vendor/seed-file-writer';
import { testDir } from '../../helpers/station-cli';
import { openssl } from '../../helpers/tools';

function recipient() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url'));
  return { privateKey, spki, pem, ecdh };
}

/** What the worker does after the HSM's ECDH, with node's ECDH standing in for the HSM. */
function open(file: Buffer, r: ReturnType<typeof recipient>) {
  const env = parseSeedFileEnvelope(file);
  const z = r.ecdh.computeSecret(env.epkPoint);
  return parseSeedFilePayload(openSeedFileEnvelope(seedFileCek(z, env), env));
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).code;
  }
  throw new Error('expected a refusal');
}

describe('seed file envelope', () => {
  const chips = [
    { chipId: Buffer.from('0011223344556677', 'hex'), seed: randomBytes(32) },
    { chipId: Buffer.from('8899aabbccddeeff', 'hex'), seed: randomBytes(16) },
  ];

  it('round-trips the vendor kit\'s file: header, metadata and every seed', () => {
    const r = recipient();
    const file = writeSeedFile(r.pem, { vendor: 'Chip Vendor', lot: 'LOT-7', createdAt: '2026-01-02T03:04:05.000Z', chips });
    const env = parseSeedFileEnvelope(file);
    expect(env.header).toMatchObject({ typ: 'birth-seed-file+json', v: 1, alg: 'ECDH-ES+HKDF-SHA256', enc: 'A256GCM', kid: seedRecipientKeyId(r.spki) });
    expect(env.iv).toHaveLength(12);
    expect(env.tag).toHaveLength(16);
    expect(file.toString('utf8')).not.toContain(chips[0]!.seed.toString('base64'));
    const payload = open(file, r);
    expect(payload).toMatchObject({ vendor: 'Chip Vendor', lot: 'LOT-7', createdAt: '2026-01-02T03:04:05.000Z' });
    expect(payload.chips).toEqual(chips);
  });

  it('derives Z and the CEK as openssl does (pkeyutl -derive, kdf HKDF with salt and info)', () => {
    const r = recipient();
    const file = writeSeedFile(r.pem, { vendor: 'V', lot: 'L', chips });
    const env = parseSeedFileEnvelope(file);
    const dir = testDir('seed-envelope');
    writeFileSync(join(dir, 'recipient.pem'), r.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(join(dir, 'epk.pem'), createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: env.header.epk.x, y: env.header.epk.y }, format: 'jwk' }).export({ format: 'pem', type: 'spki' }));
    const derive = openssl(['pkeyutl', '-derive', '-inkey', join(dir, 'recipient.pem'), '-peerkey', join(dir, 'epk.pem'), '-out', join(dir, 'z.bin')]);
    expect(derive.code).toBe(0);
    const z = r.ecdh.computeSecret(env.epkPoint);
    const zHex = openssl(['enc', '-base64', '-in', join(dir, 'z.bin')]).out;
    expect(Buffer.from(zHex, 'base64').toString('hex')).toBe(z.toString('hex'));
    const kdf = openssl([
      'kdf', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${z.toString('hex')}`,
      '-kdfopt', `hexsalt:${env.salt.toString('hex')}`, '-kdfopt', `hexinfo:${seedFileKdfInfo(env.header.kid, env.epkPoint).toString('hex')}`, 'HKDF',
    ]);
    expect(kdf.code).toBe(0);
    expect(kdf.out.trim().replace(/:/g, '').toLowerCase()).toBe(seedFileCek(z, env).toString('hex'));
  });

  it('refuses a file whose ciphertext, tag, iv or authenticated header was changed (SEED_FILE_DECRYPT_FAILED)', () => {
    const r = recipient();
    const file = JSON.parse(writeSeedFile(r.pem, { vendor: 'V', lot: 'L', chips }).toString('utf8')) as Record<string, string>;
    const flip = (b64: string, at = 0) => {
      const b = Buffer.from(b64, 'base64url');
      b[at] ^= 0x80;
      return b.toString('base64url');
    };
    const header = JSON.parse(Buffer.from(file.protected!, 'base64url').toString('utf8')) as Record<string, unknown>;
    for (const v of [
      { ...file, ciphertext: flip(file.ciphertext!, 5) },
      { ...file, tag: flip(file.tag!) },
      { ...file, iv: flip(file.iv!) },
      { ...file, protected: Buffer.from(JSON.stringify({ ...header, salt: flip(header.salt as string) })).toString('base64url') },
      // the same header with other whitespace: AAD is the protected bytes, not their meaning
      { ...file, protected: Buffer.from(JSON.stringify(header, null, 1)).toString('base64url') },
    ]) {
      expect(code(() => open(Buffer.from(JSON.stringify(v)), r))).toBe('SEED_FILE_DECRYPT_FAILED');
    }
    // another recipient's key (same kid cannot be forged; here the kid is left as is)
    expect(code(() => open(Buffer.from(JSON.stringify(file)), recipient()))).toBe('SEED_FILE_DECRYPT_FAILED');
  });

  it('refuses malformed envelopes and payloads (SEED_FILE_MALFORMED)', () => {
    const r = recipient();
    const file = JSON.parse(writeSeedFile(r.pem, { vendor: 'V', lot: 'L', chips }).toString('utf8')) as Record<string, string>;
    const header = JSON.parse(Buffer.from(file.protected!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const withHeader = (h: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...file, protected: Buffer.from(JSON.stringify(h)).toString('base64url') }));
    for (const bad of [
      Buffer.from('not json'),
      Buffer.from('[]'),
      Buffer.from(JSON.stringify({ ...file, protected: undefined })),
      Buffer.from(JSON.stringify({ ...file, iv: 'AAAA' })),
      Buffer.from(JSON.stringify({ ...file, tag: '!!!' })),
      withHeader({ ...header, alg: 'ECDH-ES' }),
      withHeader({ ...header, enc: 'A128GCM' }),
      withHeader({ ...header, v: 2 }),
      withHeader({ ...header, kid: 'AB' }),
      withHeader({ ...header, crit: ['x'] }),
      withHeader({ ...header, epk: { kty: 'EC', crv: 'P-384', x: 'AA', y: 'AA' } }),
    ]) {
      expect(code(() => parseSeedFileEnvelope(bad))).toBe('SEED_FILE_MALFORMED');
    }
    const payload = (doc: unknown) => Buffer.from(JSON.stringify(doc));
    const base = { vendor: 'V', lot: 'L', createdAt: '2026-01-01T00:00:00Z' };
    for (const doc of [
      { ...base, chips: [] },
      { ...base, vendor: '', chips: [{ chipId: '00', seed: randomBytes(32).toString('base64') }] },
      { ...base, chips: [{ chipId: 'zz', seed: randomBytes(32).toString('base64') }] },
      { ...base, chips: [{ chipId: '00', seed: randomBytes(15).toString('base64') }] },
      { ...base, chips: [{ chipId: '00', seed: 'not base64!' }] },
      { ...base, chips: [{ chipId: '00', seed: randomBytes(32).toString('base64') }, { chipId: '00', seed: randomBytes(32).toString('base64') }] },
      { ...base, chips: new Array(100_001).fill({ chipId: '00', seed: 'AAAAAAAAAAAAAAAAAAAAAA==' }) },
    ]) {
      expect(code(() => parseSeedFilePayload(payload(doc)))).toBe('SEED_FILE_MALFORMED');
    }
  });

  it('names the recipient by SHA-256 of its SPKI (what `station import seeds --show-recipient-key` prints)', () => {
    const r = recipient();
    expect(seedRecipientKeyId(r.spki)).toMatch(/^[0-9a-f]{64}$/);
    // the kit takes the key as DER too
    expect(parseSeedFileEnvelope(writeSeedFile(r.spki, { vendor: 'V', lot: 'L', chips })).header.kid).toBe(seedRecipientKeyId(r.spki));
  });
});
