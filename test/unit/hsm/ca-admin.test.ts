/**
 * The pure parts of `station ca`: subject parsing and the CA chain checker, against software
 * CAs built with the station's own certificate builders (the HSM parts are in
 * test/integration/ca-commands.test.ts, checked there with openssl).
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, Certificate, KeyUsage, KeyUsageFlags, id_ce_basicConstraints, id_ce_keyUsage } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { StationError } from '../../../src/core/errors';
import { formatName, inspectCertificate, parseSubject, verifyCaChain } from '../../../src/hsm/ca/ca-admin';
import { buildIssuingCaCertificate, buildRootCaCertificate } from '../../../src/hsm/ca/ca-certificates';
import {
  NO_EXPIRY,
  OID_COMMON_NAME,
  OID_ORGANIZATION,
  buildCertificate,
  buildName,
  extension,
  randomCertificateSerial,
  skiExtension,
} from '../../../src/hsm/ca/x509-builder';
import { newKeyPair, softwareSigner } from '../../helpers/test-certs';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof StationError) return err.code;
    throw err;
  }
  return 'no error';
}

async function softwarePki() {
  const rootKey = newKeyPair();
  const caKey = newKeyPair();
  const rootName = buildName([
    { oid: OID_ORGANIZATION, value: 'Example' },
    { oid: OID_COMMON_NAME, value: 'Root' },
  ]);
  const rootSigner = softwareSigner(rootKey.key, rootKey.spki);
  const root = await buildRootCaCertificate(rootName, rootSigner);
  const ca = await buildIssuingCaCertificate(buildName([{ oid: OID_COMMON_NAME, value: 'Issuing, 2' }]), caKey.spki, { name: rootName, signer: rootSigner });
  return { root, ca, rootName, rootSigner, caKey };
}

describe('station ca: subject strings', () => {
  it('reads O, OU, CN and C in the order written, as PrintableString', () => {
    expect(parseSubject('C=DE, O=Example Devices Inc,OU=IDevID,OU=Line 2,CN=Example CA\\, 2')).toEqual([
      { oid: '2.5.4.6', value: 'DE' },
      { oid: '2.5.4.10', value: 'Example Devices Inc' },
      { oid: '2.5.4.11', value: 'IDevID' },
      { oid: '2.5.4.11', value: 'Line 2' },
      { oid: '2.5.4.3', value: 'Example CA, 2' },
    ]);
    expect(parseSubject('cn=lower-case keys are fine')).toEqual([{ oid: '2.5.4.3', value: 'lower-case keys are fine' }]);
  });

  it('refuses anything else, as a usage error', () => {
    for (const bad of ['O=Example', 'CN=a,SN=serial', 'CN=caf\u00e9', 'CN=a_b', 'C=Germany,CN=x', 'C=de,CN=x', 'CN=a,CN=b', 'CN=', 'CN', `CN=${'x'.repeat(65)}`]) {
      expect(codeOf(() => parseSubject(bad)), bad).toBe('CA_SUBJECT_INVALID');
    }
  });

  it('formats names in the same form, escaping commas', async () => {
    const { ca } = await softwarePki();
    const info = inspectCertificate(ca);
    expect(info.subject).toBe('CN=Issuing\\, 2');
    expect(info.issuer).toBe('O=Example,CN=Root');
    expect(parseSubject(formatName(buildName(parseSubject('O=A\\,B,CN=C'))))).toEqual(parseSubject('O=A\\,B,CN=C'));
  });
});

describe('station ca: CA chain checks', () => {
  it('accepts CA then root, reporting the extensions', async () => {
    const { root, ca } = await softwarePki();
    const [c, r] = verifyCaChain([ca, root]);
    expect(c!.basicConstraints).toEqual({ ca: true, pathLen: 0, critical: true });
    expect(c!.keyUsage).toMatchObject({ keyCertSign: true, critical: true });
    expect(c!.authorityKeyIdentifier).toBe(r!.subjectKeyIdentifier);
    expect(r!.selfIssued).toBe(true);
    expect(c!.serialNumber).toBe(new X509Certificate(ca).serialNumber.toLowerCase().replace(/^00/, ''));
    expect(verifyCaChain([root])).toHaveLength(1);
  });

  it('refuses a chain without its root, in the wrong order, or with a broken signature', async () => {
    const { root, ca } = await softwarePki();
    expect(codeOf(() => verifyCaChain([ca]))).toBe('CA_CHAIN_INVALID');
    expect(codeOf(() => verifyCaChain([root, ca]))).toBe('CA_CHAIN_INVALID');
    const other = await softwarePki();
    expect(codeOf(() => verifyCaChain([ca, other.root]))).toBe('CA_CHAIN_INVALID');
    const tampered = Buffer.from(ca);
    tampered[tampered.length - 5]! ^= 0x01;
    expect(() => verifyCaChain([tampered, root])).toThrow(/signature of certificate 1 .* does not verify|not the issuer/);
    expect(codeOf(() => verifyCaChain([]))).toBe('CA_CHAIN_INVALID');
    expect(codeOf(() => verifyCaChain([Buffer.from('not a certificate')]))).toBe('CA_CHAIN_INVALID');
  });

  it('refuses a pathLen 0 CA issuing another CA, and certificates that are not CAs', async () => {
    const { root, ca, caKey } = await softwarePki();
    const caName = AsnConvert.parse(ca, Certificate).tbsCertificate.subject;
    const sub = newKeyPair();
    const below = await buildIssuingCaCertificate(buildName([{ oid: OID_COMMON_NAME, value: 'Too deep' }]), sub.spki, { name: caName, signer: softwareSigner(caKey.key, caKey.spki) });
    expect(() => verifyCaChain([below, ca, root])).toThrow(/allows 0 CA certificate\(s\) below it, the chain has 1/);

    const leafKey = newKeyPair();
    const name = buildName([{ oid: OID_COMMON_NAME, value: 'Not a CA' }]);
    const notCa = await buildCertificate(
      {
        serialNumber: randomCertificateSerial(),
        issuer: name,
        subject: name,
        notBefore: new Date(),
        notAfter: NO_EXPIRY,
        subjectPublicKeySpki: leafKey.spki,
        extensions: [
          extension(id_ce_basicConstraints, false, AsnConvert.serialize(new BasicConstraints({ cA: true }))),
          extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.digitalSignature))),
          skiExtension(leafKey.spki),
        ],
      },
      softwareSigner(leafKey.key, leafKey.spki),
    );
    expect(() => verifyCaChain([notCa])).toThrow(/basicConstraints not marked critical.*lacks keyUsage keyCertSign/);
  });

  it('refuses certificates that are not yet or no longer valid', async () => {
    const { root, ca } = await softwarePki();
    expect(() => verifyCaChain([ca, root], new Date(Date.now() - 86_400_000))).toThrow(/is not valid before/);
  });
});
