/**
 * The committed fixture built to a real Trust&GO manifest's structure (fixtures/se-manifests,
 * test keys): the verifier accepts it with its two trust anchors, sees the structure Microchip's
 * files have, and refuses it altered or against the wrong anchors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifySeManifest } from '../../../src/core/se-manifest';
import { readPemCertificates } from '../../../src/station/import/se-manifest-import';
import { REPO } from '../../helpers/station-cli';

const dir = join(REPO, 'fixtures/se-manifests');
const text = readFileSync(join(dir, 'trustandgo-structure.json'), 'utf8');
const trust = {
  signerCertificates: readPemCertificates(join(dir, 'test-manifest-signer.pem'), 'signer'),
  vendorCaCertificates: readPemCertificates(join(dir, 'test-vendor-root-ca.pem'), 'CA'),
};

describe('fixtures/se-manifests/trustandgo-structure.json', () => {
  it('has the structure of Microchip\'s Trust&GO files', () => {
    const entries = JSON.parse(text) as Record<string, string | Record<string, string>>[];
    for (const e of entries) {
      expect(Object.keys(e)).toEqual(['payload', 'protected', 'header', 'signature']);
      expect(Object.keys(JSON.parse(Buffer.from(e.protected as string, 'base64url').toString()) as object)).toEqual(['alg', 'kid', 'typ', 'x5t#S256']);
      const p = JSON.parse(Buffer.from(e.payload as string, 'base64url').toString()) as { uniqueId: string; publicKeySet: { keys: { kid: string; x5c?: string[] }[] } };
      expect(Object.keys(p)).toEqual(['version', 'model', 'partNumber', 'manufacturer', 'provisioner', 'distributor', 'groupId', 'provisioningTimestamp', 'uniqueId', 'publicKeySet']);
      expect(p.uniqueId).toMatch(/^0123[0-9a-f]{12}01$/);
      expect(p.publicKeySet.keys.map((k) => [k.kid, k.x5c?.length ?? 0])).toEqual([['0', 2], ['1', 0], ['2', 0], ['3', 0], ['4', 0]]);
      expect((e.header as Record<string, string>).uniqueId).toBe(p.uniqueId);
      expect(Buffer.from(e.signature as string, 'base64url')).toHaveLength(64);
    }
  });

  it('verifies with the fixture\'s signer and root: three entries chained through the intermediate', () => {
    const r = verifySeManifest(text, trust);
    expect(r.entries).toHaveLength(3);
    expect(r.entries.every((e) => e.keyId === '0' && e.chainDer.length === 2 && e.partNumber === 'ATECC608C-TNGTLSU-B')).toBe(true);
    expect(r.warnings).toEqual([]);
  });

  it('is refused altered by one character, or with the intermediate\'s certificate as the manifest signer', () => {
    const altered = text.replace(/"signature": "(.)/, (_m, c: string) => `"signature": "${c === 'A' ? 'B' : 'A'}`);
    expect(() => verifySeManifest(altered, trust)).toThrow(expect.objectContaining({ code: 'MANIFEST_SIGNATURE_INVALID' }));
    const wrongSigner = { ...trust, signerCertificates: readPemCertificates(join(dir, 'test-vendor-signer-ca.pem'), 'signer') };
    expect(() => verifySeManifest(text, wrongSigner)).toThrow(expect.objectContaining({ code: 'MANIFEST_SIGNER_UNKNOWN' }));
  });
});
