/**
 * The DER fast path (src/hsm/ca/fast-tbs.ts) against the general library: for random P-256 keys,
 * random positive serials of 8–20 octets, random notBefore and random profiles (every
 * IdevidProfile switch), the whole certificate the fast path assembles is byte-for-byte the one
 * @peculiar/x509's X509CertificateGenerator builds for the same inputs and the same signature
 * value (a fixed signature makes the comparison deterministic). The issuer's fast path is also
 * checked against its own general builder through the public API.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Certificate, GeneralName, OtherName, SubjectAlternativeName } from '@peculiar/asn1-x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IdevidProfile } from '../../../src/core/config';
import type { IssuanceJournal } from '../../../src/core/ports/issuance-journal';
import type { Signer } from '../../../src/core/ports/signer';
import { FastTbsTemplate, assembleCertificate } from '../../../src/hsm/ca/fast-tbs';
import { HardwareModuleName, OID_HARDWARE_MODULE_NAME, OID_MASA_URL, idevidNotAfter } from '../../../src/hsm/ca/idevid-profile';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { derIa5String, fromPem, keyIdentifierOf } from '../../../src/hsm/ca/x509-builder';
import { katDir } from '../../helpers/kat';

const KAT = katDir();
const caKey = createPrivateKey(readFileSync(join(KAT, 'ca-key.pem')));
const caSpki = createPublicKey(caKey).export({ format: 'der', type: 'spki' });
const caDer = fromPem(readFileSync(join(KAT, 'ca.pem'), 'utf8'))[0]!;
const caCert = AsnConvert.parse(caDer, Certificate);
const issuerNameDer = Buffer.from(AsnConvert.serialize(caCert.tbsCertificate.subject));
const issuerKeyId = keyIdentifierOf(caSpki);

const printable = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -.:'.split('')), minLength: min, maxLength: max });
const alnum = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-'.split('')), minLength: min, maxLength: max });

const profileArb: fc.Arbitrary<IdevidProfile> = fc.record(
  {
    organization: printable(1, 64),
    organizationalUnit: fc.option(printable(1, 64), { nil: undefined }),
    commonName: fc.option(fc.constantFrom('{model}', '{serial}', 'IDevID {model} {serial}', 'Literal CN', '{model}-{serial}-{model}'), { nil: undefined }),
    serialNumberInSubject: fc.boolean(),
    masaUrl: fc.option(alnum(1, 180).map((p) => `https://masa.example.com/${p}`), { nil: undefined }),
    hardwareModuleName: fc.option(
      fc.tuple(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 0, max: 100_000 })).map(([a, b]) => ({ hwType: `1.3.6.1.4.1.${a}.${b}` })),
      { nil: undefined },
    ),
    subjectKeyIdentifier: fc.boolean(),
    authorityKeyIdentifier: fc.boolean(),
    validityDays: fc.option(fc.integer({ min: 1, max: 40_000 }), { nil: null }),
  },
  { requiredKeys: ['organization', 'serialNumberInSubject', 'subjectKeyIdentifier', 'authorityKeyIdentifier', 'validityDays'] },
);

const serialArb = fc.uint8Array({ minLength: 8, maxLength: 20 }).map((b) => {
  const s = Buffer.from(b);
  s[0] = (s[0]! & 0x7f) || 0x01; // positive and minimal
  return s;
});

/** What the issuer's lint accepts: at least 64 bits. */
const lintableSerialArb = fc.uint8Array({ minLength: 9, maxLength: 20 }).map((b) => {
  const s = Buffer.from(b);
  s[0] = (s[0]! & 0x3f) | 0x40;
  return s;
});

/** A Date from 2000 to 2049 with milliseconds (UTCTime drops them). */
const notBeforeArb = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2049, 11, 31, 23, 59, 59) }).map((t) => new Date(t));

function referenceSubject(p: IdevidProfile, serial: string, model: string): x509.JsonName {
  // Every attribute as PrintableString, as the station's names are.
  const name: Record<string, x509.JsonAttributeObject[]>[] = [{ '2.5.4.10': [{ printableString: p.organization }] }];
  if (p.organizationalUnit) name.push({ '2.5.4.11': [{ printableString: p.organizationalUnit }] });
  if (p.commonName) name.push({ '2.5.4.3': [{ printableString: p.commonName.replaceAll('{model}', model).replaceAll('{serial}', serial) }] });
  if (p.serialNumberInSubject) name.push({ '2.5.4.5': [{ printableString: serial }] });
  // The runtime takes typed values (JsonAttributeObject); the declared JsonName lists strings only.
  return name as unknown as x509.JsonName;
}

async function referenceCertificate(
  p: IdevidProfile,
  input: { serialNumber: Buffer; notBefore: Date; notAfter: Date; spki: Buffer; serial: string; model: string },
  p1363Signature: Buffer,
): Promise<Buffer> {
  const exts: x509.Extension[] = [];
  if (p.subjectKeyIdentifier) exts.push(await x509.SubjectKeyIdentifierExtension.create(input.spki));
  if (p.authorityKeyIdentifier) exts.push(new x509.AuthorityKeyIdentifierExtension(issuerKeyId.toString('hex')));
  exts.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true));
  if (p.hardwareModuleName) {
    const hmn = new HardwareModuleName({ hwType: p.hardwareModuleName.hwType, hwSerialNum: new OctetString(Buffer.from(input.serial, 'utf8')) });
    const san = new SubjectAlternativeName([new GeneralName({ otherName: new OtherName({ typeId: OID_HARDWARE_MODULE_NAME, value: AsnConvert.serialize(hmn) }) })]);
    exts.push(new x509.Extension('2.5.29.17', false, AsnConvert.serialize(san)));
  }
  if (p.masaUrl) exts.push(new x509.Extension(OID_MASA_URL, false, derIa5String(p.masaUrl)));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: input.serialNumber.toString('hex'),
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    issuer: new x509.Name(issuerNameDer),
    subject: referenceSubject(p, input.serial, input.model),
    publicKey: input.spki,
    signature: p1363Signature,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as x509.X509CertificateCreateParamsBase['signingAlgorithm'],
    extensions: exts,
  });
  return Buffer.from(cert.rawData);
}

function derUint(v: Buffer): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const body = v[i]! & 0x80 ? Buffer.concat([Buffer.from([0]), v.subarray(i)]) : v.subarray(i);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}
function p1363ToDer(sig: Buffer): Buffer {
  const body = Buffer.concat([derUint(sig.subarray(0, 32)), derUint(sig.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

const keys = Array.from({ length: 8 }, () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { spki: publicKey.export({ type: 'spki', format: 'der' }), privateKey };
});

describe('IDevID DER fast path', () => {
  it('equals @peculiar/x509 byte for byte for random serials, keys, times and profiles', async () => {
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(profileArb, serialArb, notBeforeArb, fc.nat({ max: keys.length - 1 }), alnum(1, 24), alnum(1, 24), async (profile, serialNumber, notBefore, k, serial, model) => {
        const spki = keys[k]!.spki;
        const notAfter = idevidNotAfter(profile, notBefore);
        const input = { serialNumber, notBefore, notAfter, spki, serial, model };
        const tbs = new FastTbsTemplate(profile, issuerNameDer, issuerKeyId).encode(input);
        if (!tbs) {
          // The only declined shape here: fractional seconds in a GeneralizedTime notAfter.
          expect(notAfter.getUTCFullYear() >= 2050 && notAfter.getUTCMilliseconds() !== 0).toBe(true);
          return;
        }
        const sigP1363 = nodeSign('sha256', tbs, { key: caKey, dsaEncoding: 'ieee-p1363' });
        // The same signature value both ways: DER for the fast path, r||s for @peculiar/x509.
        const fromP1363 = p1363ToDer(sigP1363);
        const fast = assembleCertificate(tbs, fromP1363);
        const reference = await referenceCertificate(profile, input, sigP1363);
        expect(fast.toString('hex')).toBe(reference.toString('hex'));
        compared++;
      }),
      { numRuns: 300 },
    );
    expect(compared).toBeGreaterThan(100);
  }, 60_000);

  it('the issuer fast path equals its general builder (same serial, time, key, profile)', async () => {
    const signer: Signer = {
      algorithm: 'ecdsa-p256-sha256',
      publicKeySpki: caSpki,
      // Deterministic for the comparison: the signature is replaced below.
      sign: async (data) => nodeSign('sha256', data, { key: caKey, dsaEncoding: 'der' }),
    };
    const journal: IssuanceJournal = { recordIssued: () => undefined, recordIntent: () => undefined, findDeviceByPublicKey: () => undefined };
    await fc.assert(
      fc.asyncProperty(profileArb, lintableSerialArb, notBeforeArb, fc.nat({ max: keys.length - 1 }), alnum(1, 24), alnum(1, 24), async (profile, serialNumber, notBefore, k, serial, model) => {
        const opts = { now: () => new Date(notBefore), certificateSerial: () => Buffer.from(serialNumber) };
        const fast = new IdevidIssuer(signer, [caDer], journal, opts);
        const general = new IdevidIssuer(signer, [caDer], journal, { ...opts, generalBuilderOnly: true });
        const req = { spki: keys[k]!.spki, serial, model, workOrderId: 'WO-1', profile };
        const a = AsnConvert.parse((await fast.issue(req)).certificateDer, Certificate);
        const b = AsnConvert.parse((await general.issue(req)).certificateDer, Certificate);
        expect(Buffer.from(a.tbsCertificateRaw!).toString('hex')).toBe(Buffer.from(b.tbsCertificateRaw!).toString('hex'));
      }),
      { numRuns: 60 },
    );
  }, 60_000);
});
