/**
 * CMS vouchers (src/core/voucher-cms.ts) against OpenSSL as the independent party: what we sign,
 * `openssl cms -verify` accepts; what `openssl cms -sign` makes, we parse and verify; every
 * tampering is refused.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sign as nodeSign } from 'node:crypto';
import { OID_ANIMA_JSON_VOUCHER, VOUCHER_KEY, parseVoucherCms, signVoucherCms, voucherBody, voucherCmsSignatureProblem } from '../../../src/core/voucher-cms';
import { generateP256Key, issueCertificate, toPem } from '../../../src/services/pki/software-certificates';

const dir = mkdtempSync(join(tmpdir(), 'voucher-cms-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const caKey = generateP256Key();
const caCert = issueCertificate({ subject: { commonName: 'Test MASA CA' }, publicKey: createPublicKey(caKey), signingKey: caKey, validityDays: 30, ca: {}, keyUsage: ['keyCertSign', 'cRLSign'] });
const signerKey = generateP256Key();
const signerCert = issueCertificate({ subject: { commonName: 'Test MASA voucher signer' }, publicKey: createPublicKey(signerKey), issuerCertificate: caCert, signingKey: caKey, validityDays: 30, keyUsage: ['digitalSignature'] });
const derSign = (key = signerKey) => (data: Buffer) => nodeSign('sha256', data, { key, dsaEncoding: 'der' });
const voucher = { [VOUCHER_KEY]: { assertion: 'proximity', 'serial-number': 'DEMO-000001', nonce: 'AAECAwQFBgc=', 'created-on': '2026-05-01T08:00:00.000Z', 'pinned-domain-cert': 'MIIB' } };

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('CMS vouchers', () => {
  it('signs a voucher that openssl cms -verify accepts against the CA, with the JSON as content', () => {
    const der = signVoucherCms(voucher, { certificates: [signerCert, caCert], sign: derSign() });
    writeFileSync(join(dir, 'v.cms'), der);
    writeFileSync(join(dir, 'ca.pem'), toPem(caCert));
    const out = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'v.cms'), '-CAfile', join(dir, 'ca.pem'), '-purpose', 'any']);
    expect(JSON.parse(out)).toEqual(voucher);
    const printed = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', join(dir, 'v.cms')]);
    expect(printed).toMatch(/eContentType: .*\(?1\.2\.840\.113549\.1\.9\.16\.1\.40/);
  });

  it('parses and verifies its own voucher; finds the signer among the certificates', () => {
    const der = signVoucherCms(voucher, { certificates: [signerCert, caCert], sign: derSign() });
    const parsed = parseVoucherCms(der);
    expect(parsed.eContentType).toBe(OID_ANIMA_JSON_VOUCHER);
    expect(parsed.signerCertificate).toEqual(signerCert);
    expect(parsed.certificates).toEqual([signerCert, caCert]);
    expect(voucherBody(parsed, VOUCHER_KEY)).toEqual(voucher[VOUCHER_KEY]);
    expect(voucherCmsSignatureProblem(parsed, signerCert)).toBeNull();
    expect(voucherCmsSignatureProblem(parsed, caCert)).toMatch(/does not verify/);
  });

  it('verifies a voucher openssl cms -sign made', () => {
    writeFileSync(join(dir, 'signer.pem'), toPem(signerCert));
    writeFileSync(join(dir, 'signer.key'), signerKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(join(dir, 'v.json'), JSON.stringify(voucher));
    openssl(['cms', '-sign', '-nodetach', '-binary', '-md', 'sha256', '-econtent_type', OID_ANIMA_JSON_VOUCHER, '-in', join(dir, 'v.json'), '-signer', join(dir, 'signer.pem'), '-inkey', join(dir, 'signer.key'), '-outform', 'DER', '-out', join(dir, 'o.cms')]);
    const parsed = parseVoucherCms(readFileSync(join(dir, 'o.cms')));
    expect(parsed.json).toEqual(voucher);
    expect(parsed.signerCertificate).toEqual(signerCert);
    expect(voucherCmsSignatureProblem(parsed, signerCert)).toBeNull();
  });

  it('refuses tampered content and malformed input', () => {
    const der = signVoucherCms(voucher, { certificates: [signerCert], sign: derSign() });
    const at = der.indexOf(Buffer.from('DEMO-000001'));
    const tampered = Buffer.from(der);
    tampered[at + 10] = '2'.charCodeAt(0);
    expect(voucherCmsSignatureProblem(parseVoucherCms(tampered), signerCert)).toMatch(/messageDigest/);
    const other = signVoucherCms(voucher, { certificates: [signerCert], sign: derSign(generateP256Key()) });
    expect(voucherCmsSignatureProblem(parseVoucherCms(other), signerCert)).toMatch(/does not verify/);
    expect(() => parseVoucherCms(Buffer.from('x.y.z'))).toThrow();
    expect(() => parseVoucherCms(Buffer.concat([der, Buffer.from([0])]))).toThrow(/one DER/);
  });
});
