/**
 * The profile lint against certificates OpenSSL made (fixtures/certs/make-broken.sh: one fault
 * each, plus a correct one), against our own issuer's output with every profile switch, and
 * against hand-made faults the fixtures do not cover.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AttributeTypeAndValue, AttributeValue, ExtendedKeyUsage, Name, RelativeDistinguishedName, id_ce_extKeyUsage, id_kp_clientAuth } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, type IdevidProfile } from '../../../src/core/config';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { idevidExtensions, idevidSubject } from '../../../src/hsm/ca/idevid-profile';
import { LINT_CODES, certificatesFromFile, lintFaults, lintIdevid, type LintFinding } from '../../../src/hsm/ca/profile-lint';
import { NO_EXPIRY, buildCertificate, extension, fromPem, keyIdentifierOf, randomCertificateSerial } from '../../../src/hsm/ca/x509-builder';
import { katDir } from '../../helpers/kat';
import { REPO } from '../../helpers/station-cli';
import { makeSoftwareCa, newKeyPair, softwareSigner } from '../../helpers/test-certs';

const FIXTURES = join(REPO, 'fixtures/certs');
const demo = defaultStationConfig().products['demo-sensor']!;
const codes = (findings: LintFinding[]) => findings.map((f) => f.code).sort();
const lintFile = (name: string, profile: IdevidProfile = demo.idevid) => {
  const [der] = fromPem(readFileSync(join(FIXTURES, name), 'utf8'));
  return lintIdevid(der!, profile, { model: demo.model });
};

/** Each OpenSSL fixture and the one code it must get (every finding, warnings included). */
const EXPECTED: Record<string, string[]> = {
  'correct.pem': [],
  'masa-utf8string.pem': ['LINT_MASA_URL_NOT_IA5'],
  'masa-critical.pem': ['LINT_MASA_URL_CRITICAL'],
  'masa-missing.pem': ['LINT_MASA_URL_MISSING'],
  'ca-true.pem': ['LINT_CA_TRUE'],
  'utctime-expiry.pem': ['LINT_EXPIRY_NOT_GENERALIZED'],
  'no-ski.pem': ['LINT_SKI_MISSING'],
  'no-aki.pem': ['LINT_AKI_MISSING'],
  'key-agreement-only.pem': ['LINT_KEY_USAGE'],
  'hwserial-utf8string.pem': ['LINT_HWSERIAL_NOT_OCTET_STRING'],
  'hwtype-wrong.pem': ['LINT_HW_TYPE_MISMATCH'],
  'hmn-missing.pem': ['LINT_HW_MODULE_NAME_MISSING'],
  'p384-key.pem': ['LINT_WRONG_CURVE'],
  'sn-is-surname.pem': ['LINT_SERIAL_NUMBER_ATTR_MISSING'],
  'organization-wrong.pem': ['LINT_SUBJECT_O_MISMATCH'],
  'cn-wrong.pem': ['LINT_SUBJECT_CN_MISMATCH'],
  'serial-48-bits.pem': ['LINT_CERT_SERIAL_TOO_SHORT'],
  'signed-sha384.pem': ['LINT_SIGNATURE_ALG'],
};

describe('profile lint: OpenSSL fixtures', () => {
  it('kat-openssl.pem (made at test time by fixtures/certs/kat/make-kat.sh): clean', () => {
    const [der] = fromPem(readFileSync(join(katDir(), 'kat-openssl.pem'), 'utf8'));
    expect(codes(lintIdevid(der!, demo.idevid, { model: demo.model }))).toEqual([]);
  });

  it('has an expectation for every fixture the script makes', () => {
    const made = readdirSync(FIXTURES).filter((f) => f.endsWith('.pem'));
    expect(made.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [file, expected] of Object.entries(EXPECTED)) {
    it(`${file}: ${expected.length ? expected.join(', ') : 'clean'}`, () => {
      const findings = lintFile(file);
      expect(codes(findings)).toEqual(expected);
      for (const f of findings) expect(f.message.length).toBeGreaterThan(10);
    });
  }

  it('names surname in the message when SN= was used for the serial', () => {
    expect(lintFile('sn-is-surname.pem')[0]!.message).toContain('surname (2.5.4.4)');
  });

  it('reports every fault of a certificate, not only the first', () => {
    const profile: IdevidProfile = { ...demo.idevid, organization: 'Someone Else', masaUrl: 'https://other.example', hardwareModuleName: { hwType: '1.2.3.4' } };
    expect(codes(lintFile('ca-true.pem', profile))).toEqual(['LINT_CA_TRUE', 'LINT_HW_TYPE_MISMATCH', 'LINT_MASA_URL_WRONG', 'LINT_SUBJECT_O_MISMATCH']);
  });

  it('checks the profile switches: OU, expiry in days, parts the profile does not issue', () => {
    expect(codes(lintFile('correct.pem', { ...demo.idevid, organizationalUnit: 'Other' }))).toEqual(['LINT_SUBJECT_OU_MISMATCH']);
    expect(codes(lintFile('correct.pem', { ...demo.idevid, organizationalUnit: undefined }))).toEqual(['LINT_SUBJECT_OU_MISMATCH']);
    expect(codes(lintFile('correct.pem', { ...demo.idevid, validityDays: 365 }))).toEqual(['LINT_EXPIRY_WRONG']);
    expect(codes(lintFile('utctime-expiry.pem', { ...demo.idevid, validityDays: 3652 }))).toEqual([]);
    // a MASA URL the profile does not issue is a warning, not a fault
    const noMasa = lintFile('correct.pem', { ...demo.idevid, masaUrl: undefined });
    expect(noMasa.map((f) => [f.code, f.severity])).toEqual([['LINT_EXTENSION_UNEXPECTED', 'warning']]);
    expect(lintFaults(noMasa)).toEqual([]);
  });

  it('reads PEM (one or several certificates) and DER', () => {
    const pem = readFileSync(join(FIXTURES, 'correct.pem'));
    const der = fromPem(pem.toString('utf8'))[0]!;
    expect(certificatesFromFile(pem)).toEqual([der]);
    expect(certificatesFromFile(der)).toEqual([der]);
    expect(certificatesFromFile(Buffer.concat([pem, readFileSync(join(FIXTURES, 'no-ski.pem'))]))).toHaveLength(2);
  });

  it('gives LINT_DER_INVALID, and nothing else, for bytes that are not a certificate', () => {
    const der = fromPem(readFileSync(join(FIXTURES, 'correct.pem'), 'utf8'))[0]!;
    for (const bad of [Buffer.from('not a certificate'), der.subarray(0, der.length - 10), Buffer.concat([der, Buffer.from([0])]), Buffer.from('3080', 'hex')]) {
      expect(codes(lintIdevid(bad, demo.idevid))).toEqual(['LINT_DER_INVALID']);
    }
  });

  it('documents every code it can report', () => {
    const doc = readFileSync(join(REPO, 'docs/idevid-profile.md'), 'utf8');
    for (const code of Object.keys(LINT_CODES)) expect(doc).toContain(`\`${code}\``);
  });
});

describe('profile lint: our own issuer', () => {
  const journal = { recordIssued: () => undefined, recordIntent: () => undefined, findDeviceByPublicKey: () => undefined };

  async function issueWith(profile: IdevidProfile, serial = 'DEMO-000123') {
    const ca = await makeSoftwareCa('Lint Test Issuing CA');
    const issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], journal);
    const { spki } = newKeyPair();
    return (await issuer.issue({ spki, serial, model: demo.model, workOrderId: 'WO', profile })).certificateDer;
  }

  const variants: Record<string, IdevidProfile> = {
    demo: demo.idevid,
    minimal: { organization: 'Example Devices Inc', serialNumberInSubject: true, subjectKeyIdentifier: false, authorityKeyIdentifier: false, validityDays: null },
    'expiry in days': { ...demo.idevid, validityDays: 3650 },
    'expiry after 2049': { ...demo.idevid, validityDays: 365 * 40 },
    'CN with both placeholders': { ...demo.idevid, commonName: '{model} #{serial}' },
    'no serialNumber, literal CN': { ...demo.idevid, serialNumberInSubject: false, commonName: 'Sensor', hardwareModuleName: undefined },
  };
  for (const [name, profile] of Object.entries(variants)) {
    it(`issues certificates that lint clean: ${name}`, async () => {
      const der = await issueWith(profile);
      expect(lintIdevid(der, profile, { model: demo.model })).toEqual([]);
    });
  }

  it('a {serial} in the CN template must be the subject serialNumber', async () => {
    const profile = { ...demo.idevid, commonName: '{model} #{serial}' };
    const der = await issueWith(profile);
    // the same certificate against a template whose literal part differs
    expect(codes(lintIdevid(der, { ...profile, commonName: '{model} / {serial}' }, { model: demo.model }))).toEqual(['LINT_SUBJECT_CN_MISMATCH']);
    expect(codes(lintIdevid(der, profile, { model: 'OtherModel' }))).toEqual(['LINT_SUBJECT_CN_MISMATCH']);
  });
});

describe('profile lint: hand-made faults', () => {
  async function build(opts: { serialNumber?: Buffer; subject?: Name; extra?: ReturnType<typeof extension>[]; hwSerial?: string }) {
    const ca = await makeSoftwareCa('Lint Test Issuing CA');
    const { spki } = newKeyPair();
    const serial = 'DEMO-000123';
    return buildCertificate(
      {
        serialNumber: opts.serialNumber ?? randomCertificateSerial(),
        issuer: idevidSubject({ organization: 'CA', serialNumberInSubject: false, subjectKeyIdentifier: false, authorityKeyIdentifier: false, validityDays: null }, { serial, model: demo.model }),
        subject: opts.subject ?? idevidSubject(demo.idevid, { serial, model: demo.model }),
        notBefore: new Date('2025-06-01T00:00:00Z'),
        notAfter: NO_EXPIRY,
        subjectPublicKeySpki: spki,
        extensions: [...idevidExtensions(demo.idevid, { spki, issuerKeyId: keyIdentifierOf(ca.spki), serial: opts.hwSerial ?? serial }), ...(opts.extra ?? [])],
      },
      softwareSigner(ca.key, ca.spki),
    );
  }
  const lint = (der: Buffer) => codes(lintIdevid(der, demo.idevid, { model: demo.model }));

  it('a negative or zero certificate serial', async () => {
    expect(lint(await build({ serialNumber: Buffer.from('ff112233445566778899', 'hex') }))).toEqual(['LINT_CERT_SERIAL_NOT_POSITIVE']);
    expect(lint(await build({ serialNumber: Buffer.from([0]) }))).toEqual(['LINT_CERT_SERIAL_NOT_POSITIVE']);
  });

  it('a serialNumber attribute that is a UTF8String', async () => {
    const rdn = (type: string, value: AttributeValue) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
    const subject = new Name([
      rdn('2.5.4.10', new AttributeValue({ printableString: demo.idevid.organization })),
      rdn('2.5.4.11', new AttributeValue({ printableString: 'IDevID' })),
      rdn('2.5.4.3', new AttributeValue({ utf8String: demo.model })),
      rdn('2.5.4.5', new AttributeValue({ utf8String: 'DEMO-000123' })),
    ]);
    // a UTF8String CN is fine; a UTF8String serialNumber is not
    expect(lint(await build({ subject }))).toEqual(['LINT_SERIAL_NUMBER_NOT_PRINTABLE']);
  });

  it('a hwSerialNum that differs from the subject serialNumber', async () => {
    expect(lint(await build({ hwSerial: 'DEMO-999999' }))).toEqual(['LINT_HWSERIAL_MISMATCH']);
  });

  it('an extension the profile does not issue (warning), and a duplicate (fault)', async () => {
    const eku = extension(id_ce_extKeyUsage, false, AsnConvert.serialize(new ExtendedKeyUsage([id_kp_clientAuth])));
    const withEku = lintIdevid(await build({ extra: [eku] }), demo.idevid, { model: demo.model });
    expect(withEku.map((f) => [f.code, f.severity])).toEqual([['LINT_EXTENSION_UNEXPECTED', 'warning']]);
    const ku = extension('2.5.29.15', true, Buffer.from('03020780', 'hex'));
    expect(lint(await build({ extra: [ku] }))).toEqual(['LINT_EXTENSION_DUPLICATE']);
  });
});
