/**
 * The SE manifest verifier against manifests built to the structure of Microchip's Trust&GO
 * files (test/helpers/trust-and-go.ts, test keys): the spelling variants real files carry are
 * accepted, and every fault is refused with its own code, naming the entry, importing nothing.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SeManifestError, verifySeManifest, type SeManifestErrorCode } from '../../../src/core/se-manifest';
import { issued, makeSe, makeVendorPki, newP256, selfSigned, signedEntry, trustOf, type EntryOptions } from '../../helpers/trust-and-go';

const pki = makeVendorPki();
const trust = trustOf(pki);

function manifest(...entries: Record<string, unknown>[]): string {
  return JSON.stringify(entries, null, 2);
}

function one(o: EntryOptions = {}, se = makeSe(pki)) {
  return { se, text: manifest(signedEntry(pki, se, o)) };
}

function refusal(text: string, t = trust): SeManifestError {
  try {
    verifySeManifest(text, t);
  } catch (err) {
    if (err instanceof SeManifestError) return err;
    throw err;
  }
  throw new Error('the manifest was accepted');
}

function expectRefused(text: string, code: SeManifestErrorCode, entry: number | null = 1): SeManifestError {
  const err = refusal(text);
  expect(err.code).toBe(code);
  expect(err.problems[0]!.entry).toBe(entry);
  expect(err.message).toMatch(entry === null ? /^The manifest: / : new RegExp(`^Manifest entry ${entry}`));
  expect(err.message).toContain('Nothing was imported.');
  expect(err.family).toBe('config');
  return err;
}

describe('verifySeManifest: the published format and its variants', () => {
  it('accepts a Trust&GO-structured entry: five keys, slot 0 certified by device + signer, chained to the root', () => {
    const { se, text } = one();
    const r = verifySeManifest(text, trust);
    expect(r.entries).toHaveLength(1);
    const e = r.entries[0]!;
    expect(e.uniqueId).toBe(se.uniqueId);
    expect(e.keyId).toBe('0');
    expect(e.publicKeySpki.equals(se.device.spki)).toBe(true);
    expect(e.certificateDer.equals(se.device.cert)).toBe(true);
    expect(e.chainDer.map((c) => c.toString('hex'))).toEqual([pki.signer.cert.toString('hex'), pki.root.cert.toString('hex')]);
    expect(e.signerSha256).toBe(createHash('sha256').update(pki.manifestSigner.cert).digest('hex'));
    expect(e).toMatchObject({ version: 1, model: 'ATECC608C', partNumber: 'ATECC608C-TNGTLSU-B', groupId: 'TESTGROUP0000001', provisioningTimestamp: '2025-06-01T20:14:53.773Z' });
    expect(r.warnings).toEqual([]);
  });

  it('accepts upper-case uniqueIds (payload and header) and normalises them to lower case', () => {
    const se = makeSe(pki);
    const text = manifest(signedEntry(pki, se, { payloadUniqueId: se.uniqueId.toUpperCase(), header: { uniqueId: se.uniqueId.toUpperCase() } }));
    expect(verifySeManifest(text, trust).entries[0]!.uniqueId).toBe(se.uniqueId);
  });

  it('accepts x5c with the device certificate only when its issuer is configured, and with the root included', () => {
    expect(verifySeManifest(one({ x5c: 'device' }).text, trustOf(pki, 'signer')).entries[0]!.chainDer).toEqual([pki.signer.cert]);
    expect(verifySeManifest(one({ x5c: 'device+signer+root' }).text, trust).entries[0]!.chainDer).toHaveLength(2);
    // the intermediate alone as the configured anchor also ends the path there
    expect(verifySeManifest(one().text, trustOf(pki, 'signer')).entries[0]!.chainDer).toEqual([pki.signer.cert]);
  });

  it('accepts padded base64url JWS members and unpadded or line-wrapped x5c base64', () => {
    expect(verifySeManifest(one({ paddedBase64Url: true }).text, trust).entries).toHaveLength(1);
    const se = makeSe(pki);
    const unpadded = se.device.cert.toString('base64').replace(/=+$/, '');
    const wrapped = pki.signer.cert.toString('base64').replace(/(.{64})/g, '$1\n');
    expect(verifySeManifest(manifest(signedEntry(pki, se, { x5cStrings: [unpadded, wrapped] })), trust).entries).toHaveLength(1);
  });

  it('accepts pytrustplatform\'s self-generated shape: Python JSON separators, no groupId, the "distributer" spelling, no unprotected header', () => {
    const text = one({ pythonJson: true, payload: { groupId: undefined, distributor: undefined, distributer: { organizationName: 'X', organizationalUnitName: 'Y' } }, header: null }).text;
    const e = verifySeManifest(text, trust).entries[0]!;
    expect(e.groupId).toBeNull();
  });

  it('accepts later payload versions and ignores members it does not know (modelInfo)', () => {
    const e = verifySeManifest(one({ payload: { version: 3, modelInfo: { anything: 1 } } }).text, trust).entries[0]!;
    expect(e.version).toBe(3);
  });

  it('accepts a byte-order mark and a repeated identical entry (imported once, with a warning)', () => {
    const se = makeSe(pki);
    const entry = signedEntry(pki, se);
    const r = verifySeManifest('\uFEFF' + manifest(entry, entry), trust);
    expect(r.entries).toHaveLength(1);
    expect(r.warnings.join(' ')).toContain('more than once');
  });

  it('verifies with an expired manifest signer certificate (signers rotate) and says so', () => {
    const old = { ...pki, manifestSigner: selfSigned('Manifest Signer 001', false, { notBefore: new Date(Date.UTC(2019, 0, 22)), notAfter: new Date(Date.UTC(2019, 6, 22)) }) };
    const r = verifySeManifest(manifest(signedEntry(old, makeSe(old))), trustOf(old));
    expect(r.entries).toHaveLength(1);
    expect(r.warnings.join(' ')).toMatch(/expired on 2019-07-22/);
  });

  it('treats kid as informational: a kid that is not the signer\'s SKI is a warning, not a refusal', () => {
    const r = verifySeManifest(one({ protectedHeader: { kid: 'bm90LXRoZS1za2k' } }).text, trust);
    expect(r.entries).toHaveLength(1);
    expect(r.warnings.join(' ')).toContain('kid');
  });
});

describe('verifySeManifest: refusals', () => {
  it('a payload changed after signing: MANIFEST_SIGNATURE_INVALID', () => {
    const { se } = one();
    const entry = signedEntry(pki, se);
    const payload = JSON.parse(Buffer.from(entry.payload as string, 'base64url').toString()) as Record<string, unknown>;
    payload.partNumber = 'ATECC608C-TAMPERED';
    entry.payload = Buffer.from(JSON.stringify(payload)).toString('base64url');
    expectRefused(manifest(entry), 'MANIFEST_SIGNATURE_INVALID');
  });

  it('signed by an unconfigured signer: MANIFEST_SIGNER_UNKNOWN; signed by another key in the configured signer\'s name: MANIFEST_SIGNATURE_INVALID', () => {
    const stranger = selfSigned('Manifest Signer 666', false);
    expectRefused(one({ namedSigner: stranger, signWith: stranger.key }).text, 'MANIFEST_SIGNER_UNKNOWN');
    expectRefused(one({ protectedHeader: { 'x5t#S256': undefined } }).text, 'MANIFEST_SIGNER_UNKNOWN');
    expectRefused(one({ signWith: stranger.key }).text, 'MANIFEST_SIGNATURE_INVALID');
  });

  it('an SE certificate that chains to another CA, or expired: MANIFEST_CHAIN_INVALID', () => {
    const other = makeVendorPki();
    const se = makeSe(pki, { issuer: other.signer });
    expectRefused(manifest(signedEntry(pki, se, { x5cStrings: [se.device.cert.toString('base64'), other.signer.cert.toString('base64')] })), 'MANIFEST_CHAIN_INVALID');
    // the device certificate alone when only the root is configured: the path is incomplete
    expectRefused(one({ x5c: 'device' }).text, 'MANIFEST_CHAIN_INVALID');
    const expired = makeSe(pki, { notAfter: new Date(Date.UTC(2020, 0, 1)) });
    const err = expectRefused(manifest(signedEntry(pki, expired)), 'MANIFEST_CHAIN_INVALID');
    expect(err.message).toContain('expired');
    // a CA certificate in the device position
    const caAsDevice = { uniqueId: expired.uniqueId, device: issued(pki.root, 'sn-ca', { ca: true }) };
    expectRefused(manifest(signedEntry(pki, caAsDevice)), 'MANIFEST_CHAIN_INVALID');
  });

  it('a listed key that is not the certificate\'s key: MANIFEST_KEY_MISMATCH', () => {
    expectRefused(one({ jwkKey: newP256() }).text, 'MANIFEST_KEY_MISMATCH');
  });

  it('an unprotected uniqueId that lies: MANIFEST_UNIQUE_ID_MISMATCH, and the signed one is what the error names', () => {
    const se = makeSe(pki);
    const err = expectRefused(manifest(signedEntry(pki, se, { header: { uniqueId: '0123aaaaaaaaaaaa01' } })), 'MANIFEST_UNIQUE_ID_MISMATCH');
    expect(err.problems[0]!.uniqueId).toBe(se.uniqueId);
    expect(err.message).toContain(`the signed payload says ${se.uniqueId}`);
  });

  it('an algorithm other than ECDSA (none, HS256): MANIFEST_ALG_UNSUPPORTED; a DER signature: MANIFEST_SIGNATURE_INVALID', () => {
    expectRefused(one({ protectedHeader: { alg: 'none' } }).text, 'MANIFEST_ALG_UNSUPPORTED');
    expectRefused(one({ protectedHeader: { alg: 'HS256' } }).text, 'MANIFEST_ALG_UNSUPPORTED');
    expectRefused(one({ protectedHeader: { alg: 'ES384' } }).text, 'MANIFEST_ALG_UNSUPPORTED');
    expectRefused(one({ derSignature: true }).text, 'MANIFEST_SIGNATURE_INVALID');
  });

  it('no key (a key-less TrustMANAGER entry) or no certified key: MANIFEST_NO_CERTIFICATE; a P-384 key: MANIFEST_KEY_UNSUPPORTED', () => {
    expectRefused(one({ noKeys: true }).text, 'MANIFEST_NO_CERTIFICATE');
    expectRefused(one({ payload: { publicKeySet: { keys: [{ kid: '1', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] } } }).text, 'MANIFEST_NO_CERTIFICATE');
    expectRefused(one({ jwkCurve: 'P-384' }).text, 'MANIFEST_KEY_UNSUPPORTED');
  });

  it('structural faults: MANIFEST_MALFORMED (not JSON, not an array, crit, header repeating protected members, bad uniqueId, bad base64); MANIFEST_EMPTY', () => {
    expectRefused('{"payload":', 'MANIFEST_MALFORMED', null);
    expectRefused(JSON.stringify(signedEntry(pki, makeSe(pki))), 'MANIFEST_MALFORMED', null);
    expectRefused('[]', 'MANIFEST_EMPTY', null);
    expectRefused(one({ protectedHeader: { crit: ['exp'] } }).text, 'MANIFEST_MALFORMED');
    expectRefused(one({ header: { uniqueId: undefined, alg: 'none' } }).text, 'MANIFEST_MALFORMED');
    expectRefused(one({ payloadUniqueId: 'SN-0123' }).text, 'MANIFEST_MALFORMED');
    const entry = signedEntry(pki, makeSe(pki));
    entry.signature = `${entry.signature as string}!`;
    expectRefused(manifest(entry), 'MANIFEST_MALFORMED');
  });

  it('the same uniqueId with two keys: MANIFEST_DUPLICATE_ENTRY; one key under two uniqueIds: MANIFEST_DUPLICATE_KEY', () => {
    const se = makeSe(pki);
    const twin = { uniqueId: se.uniqueId, device: issued(pki.signer, 'twin') };
    expectRefused(manifest(signedEntry(pki, se), signedEntry(pki, twin)), 'MANIFEST_DUPLICATE_ENTRY', 2);
    const clone = { uniqueId: makeSe(pki).uniqueId, device: issued(pki.signer, 'clone', { key: se.device }) };
    expectRefused(manifest(signedEntry(pki, se), signedEntry(pki, clone)), 'MANIFEST_DUPLICATE_KEY', 2);
  });

  it('is all or nothing: one bad entry among good ones refuses the file and lists every problem', () => {
    const good = [makeSe(pki), makeSe(pki)].map((se) => signedEntry(pki, se));
    const bad = signedEntry(pki, makeSe(pki), { jwkKey: newP256() });
    const worse = signedEntry(pki, makeSe(pki), { protectedHeader: { alg: 'none' } });
    const err = refusal(manifest(good[0]!, bad, good[1]!, worse));
    expect(err.problems.map((p) => [p.entry, p.code])).toEqual([
      [2, 'MANIFEST_KEY_MISMATCH'],
      [4, 'MANIFEST_ALG_UNSUPPORTED'],
    ]);
    expect(err.message).toContain('2 of 4 entries were refused');
  });

  it('no configured signer or CA: MANIFEST_TRUST_INVALID', () => {
    expect(refusal(one().text, { signerCertificates: [], vendorCaCertificates: [pki.root.cert] }).code).toBe('MANIFEST_TRUST_INVALID');
    expect(refusal(one().text, { signerCertificates: [pki.manifestSigner.cert], vendorCaCertificates: [Buffer.from('not a cert')] }).code).toBe('MANIFEST_TRUST_INVALID');
  });
});
