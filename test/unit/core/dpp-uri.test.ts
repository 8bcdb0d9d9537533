import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DppUri, DppUriError } from '../../../src/core/dpp-uri';
import { compressedP256Spki, p256PointFromSpki } from '../../../src/core/ec-public-key';

// Example bootstrapping URI from the Wi-Fi Easy Connect specification (and hostap's tests).
const SPEC_URI = 'DPP:C:81/1,115/36;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADM2206avxHJaHXgLMkq/24e0rsrfMP9K1Tm8gx+ovP0I=;;';

describe('DppUri', () => {
  it('parses and re-serialises the specification example byte for byte', () => {
    const uri = DppUri.parse(SPEC_URI);
    expect(uri.channels).toEqual(['81/1', '115/36']);
    expect(uri.toString()).toBe(SPEC_URI);
  });

  it('builds C, M, I, V, K in that order with a compressed-point SPKI, ending ";;"', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const uri = DppUri.build({ channels: ['81/1', '81/6'], mac: '02:AB:cd:00:11:22', info: 'DEMO-000001', version: 2, publicKeySpki: spki }).toString();
    expect(uri).toMatch(/^DPP:C:81\/1,81\/6;M:02abcd001122;I:DEMO-000001;V:2;K:[A-Za-z0-9+/]+=*;;$/);
    const k = Buffer.from(/K:([^;]+);/.exec(uri)![1]!, 'base64');
    expect(k.length).toBe(59);
    expect([2, 3]).toContain(k[26]);
    // the compressed key is the same point as the original
    expect(p256PointFromSpki(k).equals(p256PointFromSpki(spki))).toBe(true);
    expect(compressedP256Spki(spki).equals(k)).toBe(true);
    expect(DppUri.parse(uri).toString()).toBe(uri);
  });

  it('rejects malformed URIs with a reason', () => {
    expect(() => DppUri.parse('DPP:K:abc;')).toThrow(DppUriError);
    expect(() => DppUri.parse('XPP:K:abc;;')).toThrow(/starts with/);
    expect(() => DppUri.parse('DPP:C:81/1;;')).toThrow(/needs a K:/);
    expect(() => DppUri.parse('DPP:K:MDkw;;')).toThrow(/compressed P-256/);
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    expect(() => DppUri.build({ info: 'a;b', publicKeySpki: spki })).toThrow(/without ";"/);
    expect(() => DppUri.build({ mac: '12:34', publicKeySpki: spki })).toThrow(/not a MAC/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'der', type: 'spki' });
    expect(() => DppUri.build({ publicKeySpki: p384 })).toThrow(/P-256/);
  });
});
