/** Compact JWS for vouchers (src/core/voucher.ts): round trip, header shape, tamper detection. */
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ecdsaDerToJose, parseVoucherJws, signVoucherJws, verifyVoucherJws, voucherJwsCertificates, VoucherJwsError } from '../../../src/core/voucher';
import { rawEcdsaToDer } from '../../../src/hsm/pkcs11/ecdsa-signature';

function keyPair(): { key: KeyObject; spki: Buffer } {
  const p = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { key: p.privateKey, spki: p.publicKey.export({ format: 'der', type: 'spki' }) };
}

const der = (key: KeyObject) => (data: Buffer) => nodeSign('sha256', data, { key, dsaEncoding: 'der' });

const payload = { 'ietf-voucher:voucher': { assertion: 'logged', 'serial-number': 'DEMO-000001', nonce: 'AAECAwQFBgc=', 'created-on': '2026-01-01T00:00:00.000Z' } };
const fakeCerts = [Buffer.from('leaf certificate'), Buffer.from('issuing CA')];

function tamper(jws: string, part: 0 | 1 | 2, edit: (b: Buffer) => Buffer): string {
  const parts = jws.split('.');
  parts[part] = edit(Buffer.from(parts[part]!, 'base64url')).toString('base64url');
  return parts.join('.');
}

describe('voucher JWS', () => {
  it('round trips: ES256 header with x5c, JSON payload, raw r||s signature', () => {
    const { key, spki } = keyPair();
    const jws = signVoucherJws(payload, fakeCerts, der(key));
    expect(jws.split('.')).toHaveLength(3);
    const parsed = parseVoucherJws(jws);
    expect(parsed.header).toEqual({ alg: 'ES256', typ: 'voucher-jws+json', x5c: fakeCerts.map((c) => c.toString('base64')) });
    expect(parsed.payload).toEqual(payload);
    expect(parsed.signatureRaw).toHaveLength(64);
    expect(voucherJwsCertificates(parsed.header)).toEqual(fakeCerts);
    expect(parsed.signingInput.toString('ascii')).toBe(jws.split('.').slice(0, 2).join('.'));
    // Independent check: the raw signature verifies as IEEE P1363 and, once DER, as DER.
    expect(nodeVerify('sha256', parsed.signingInput, { key: spki, format: 'der', type: 'spki', dsaEncoding: 'ieee-p1363' }, parsed.signatureRaw)).toBe(true);
    expect(nodeVerify('sha256', parsed.signingInput, { key: spki, format: 'der', type: 'spki' }, rawEcdsaToDer(parsed.signatureRaw))).toBe(true);
    expect(verifyVoucherJws(jws, spki)).toBe(true);
    expect(verifyVoucherJws(Buffer.from(jws, 'utf8'), spki)).toBe(true);
  });

  it('detects tampering with the payload, the header or the signature, and a wrong key', () => {
    const { key, spki } = keyPair();
    const jws = signVoucherJws(payload, fakeCerts, der(key));
    const otherPayload = tamper(jws, 1, (b) => Buffer.from(b.toString('utf8').replace('DEMO-000001', 'DEMO-000002')));
    expect(parseVoucherJws(otherPayload).payload).not.toEqual(payload);
    expect(verifyVoucherJws(otherPayload, spki)).toBe(false);
    expect(verifyVoucherJws(tamper(jws, 0, (b) => Buffer.from(b.toString('utf8').replace('voucher-jws+json', 'jwt'))), spki)).toBe(false);
    expect(verifyVoucherJws(tamper(jws, 2, (b) => ((b[10] ^= 1), b)), spki)).toBe(false);
    expect(verifyVoucherJws(jws, keyPair().spki)).toBe(false);
  });

  it('refuses alg none, crit extensions, other algorithms and malformed input', () => {
    const { key, spki } = keyPair();
    const jws = signVoucherJws(payload, fakeCerts, der(key));
    const [, p, s] = jws.split('.');
    const h = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    expect(verifyVoucherJws(`${h({ alg: 'none' })}.${p}.`, spki)).toBe(false);
    expect(verifyVoucherJws(`${h({ alg: 'ES256', crit: ['x'], x: 1 })}.${p}.${s}`, spki)).toBe(false);
    expect(verifyVoucherJws(`${h({ alg: 'ES384' })}.${p}.${s}`, spki)).toBe(false);
    expect(verifyVoucherJws('not a jws', spki)).toBe(false);
    expect(verifyVoucherJws(jws, Buffer.from('not a key'))).toBe(false);
    expect(() => parseVoucherJws('a.b')).toThrow(VoucherJwsError);
    expect(() => parseVoucherJws(`${h({ alg: 'ES256' })}.${Buffer.from('[1]').toString('base64url')}.${s}`)).toThrow(/not a JSON object/);
    expect(() => parseVoucherJws(`${h({ alg: 'ES256' })}.${p}.***`)).toThrow(/base64url/);
    expect(() => parseVoucherJws(`${h({ alg: 'ES256', x5c: 'abc' })}.${p}.${s}`)).toThrow(/x5c/);
  });

  it('converts DER ECDSA signatures with and without the 0x00 sign byte, and refuses bad DER', () => {
    const r = Buffer.alloc(32, 0x81);
    const s = Buffer.concat([Buffer.alloc(2), Buffer.alloc(30, 0x11)]);
    const raw = Buffer.concat([r, s]);
    expect(ecdsaDerToJose(rawEcdsaToDer(raw))).toEqual(raw);
    const r2 = Buffer.alloc(32, 0x7f);
    expect(ecdsaDerToJose(rawEcdsaToDer(Buffer.concat([r2, r2])))).toEqual(Buffer.concat([r2, r2]));
    expect(() => ecdsaDerToJose(Buffer.concat([rawEcdsaToDer(raw), Buffer.from([0])]))).toThrow(VoucherJwsError);
    expect(() => ecdsaDerToJose(Buffer.from('300702020001020101', 'hex'))).toThrow(/non-minimal/);
    expect(() => ecdsaDerToJose(Buffer.from('300602018002017f', 'hex'))).toThrow(/negative/);
  });
});
