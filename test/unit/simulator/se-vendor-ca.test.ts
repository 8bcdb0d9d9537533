/** The simulated SE vendor's CA: created once under its folder, and certificates openssl accepts. */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, Certificate, id_ce_basicConstraints } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { OID_COMMON_NAME, OID_SERIAL_NUMBER, nameValue, toPem, verifyCertificateSignature } from '../../../src/hsm/ca/x509-builder';
import { SE_VENDOR_CA_CERT_FILE, SE_VENDOR_CA_KEY_FILE, SeVendorCa } from '../../../src/simulator/vendor/se-vendor-ca';
import { newKeyPair } from '../../helpers/test-certs';
import { testDir } from '../../helpers/station-cli';
import { openssl } from '../../helpers/tools';

describe('SeVendorCa', () => {
  it('is created once under its folder (key 0600) and loaded again unchanged', () => {
    const dir = join(testDir('se-vendor'), 'vendor');
    const a = SeVendorCa.openOrCreate(dir);
    expect(statSync(join(dir, SE_VENDOR_CA_KEY_FILE)).mode & 0o777).toBe(0o600);
    const b = SeVendorCa.openOrCreate(dir);
    expect(b.certificate).toEqual(a.certificate);
    expect(b.spki).toEqual(a.spki);
    const bc = AsnConvert.parse(a.certificate, Certificate).tbsCertificate.extensions!.find((e) => e.extnID === id_ce_basicConstraints)!;
    expect(bc.critical).toBe(true);
    expect(AsnConvert.parse(bc.extnValue.buffer, BasicConstraints).cA).toBe(true);
    // A key that does not match the certificate is refused.
    writeFileSync(join(dir, SE_VENDOR_CA_CERT_FILE), toPem(SeVendorCa.inMemory().certificate));
    expect(() => SeVendorCa.openOrCreate(dir)).toThrow(/does not match/);
  });

  it('certifies an SE key: CN = serialNumber = SE serial, verified by openssl -x509_strict', () => {
    const dir = testDir('se-vendor-cert');
    const ca = SeVendorCa.inMemory();
    const se = newKeyPair();
    const cert = ca.issueSeCertificate('a1b2c3d4e5f60718', se.spki);
    verifyCertificateSignature(cert, ca.spki);
    const tbs = AsnConvert.parse(cert, Certificate).tbsCertificate;
    expect(nameValue(tbs.subject, OID_COMMON_NAME)).toBe('a1b2c3d4e5f60718');
    expect(nameValue(tbs.subject, OID_SERIAL_NUMBER)).toBe('a1b2c3d4e5f60718');
    expect(Buffer.from(AsnConvert.serialize(tbs.subjectPublicKeyInfo))).toEqual(se.spki);
    writeFileSync(join(dir, 'ca.pem'), toPem(ca.certificate));
    writeFileSync(join(dir, 'se.pem'), toPem(cert));
    const r = openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'ca.pem'), join(dir, 'se.pem')]);
    expect(r.out).toContain('OK');
    expect(r.code).toBe(0);
  });
});
