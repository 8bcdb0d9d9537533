/**
 * Builds and signs X.509 v3 certificates with @peculiar/asn1-x509 and a Signer (the key stays
 * in the HSM). Certificates are re-parsed and their signature verified before they are returned.
 */
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  Certificate,
  Extension,
  Extensions,
  Name,
  RelativeDistinguishedName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_subjectKeyIdentifier,
  KeyIdentifier,
} from '@peculiar/asn1-x509';
import { toArrayBuffer } from '../../core/bytes';
import { CaError } from '../../core/errors';
import type { Signer } from '../../core/ports/signer';
import { derLen } from './der';

export const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
export const OID_COMMON_NAME = '2.5.4.3';
export const OID_SERIAL_NUMBER = '2.5.4.5';
export const OID_ORGANIZATION = '2.5.4.10';
export const OID_ORGANIZATIONAL_UNIT = '2.5.4.11';

/** The IEEE 802.1AR "no well-defined expiration date" value, encoded as GeneralizedTime. */
export const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

export type NameEntry = { oid: string; value: string };

/** Name with every attribute as PrintableString (our inputs are validated to its charset). */
export function buildName(entries: readonly NameEntry[]): Name {
  return new Name(
    entries.map(
      (e) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type: e.oid, value: new AttributeValue({ printableString: e.value }) })]),
    ),
  );
}

/** The first value of `oid` in a Name, whatever string type carries it. */
export function nameValue(name: Name, oid: string): string | undefined {
  for (const rdn of name) {
    for (const atv of rdn) {
      if (atv.type === oid) return atv.value.toString();
    }
  }
  return undefined;
}

/** A random, positive certificate serial of 127 bits (RFC 5280: at most 20 octets). */
export function randomCertificateSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifierOf(spkiDer: Uint8Array): Buffer {
  const spki = AsnConvert.parse(Buffer.from(spkiDer), SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
}

export function skiExtension(spkiDer: Uint8Array): Extension {
  return new Extension({
    extnID: id_ce_subjectKeyIdentifier,
    critical: false,
    extnValue: new OctetString(AsnConvert.serialize(new SubjectKeyIdentifier(keyIdentifierOf(spkiDer)))),
  });
}

export function akiExtension(issuerKeyId: Uint8Array): Extension {
  return new Extension({
    extnID: id_ce_authorityKeyIdentifier,
    critical: false,
    extnValue: new OctetString(AsnConvert.serialize(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(Buffer.from(issuerKeyId)) }))),
  });
}

export function extension(oid: string, critical: boolean, valueDer: ArrayBuffer | Uint8Array): Extension {
  return new Extension({ extnID: oid, critical, extnValue: new OctetString(valueDer instanceof Uint8Array ? Buffer.from(valueDer) : valueDer) });
}

export interface CertificateParams {
  serialNumber: Buffer;
  issuer: Name;
  subject: Name;
  notBefore: Date;
  notAfter: Date;
  subjectPublicKeySpki: Buffer;
  extensions: Extension[];
}

export async function buildCertificate(params: CertificateParams, signer: Signer): Promise<Buffer> {
  const sigAlg = new AlgorithmIdentifier({ algorithm: OID_ECDSA_WITH_SHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: toArrayBuffer(params.serialNumber),
    signature: sigAlg,
    issuer: params.issuer,
    validity: new Validity({ notBefore: params.notBefore, notAfter: params.notAfter }),
    subject: params.subject,
    subjectPublicKeyInfo: AsnConvert.parse(params.subjectPublicKeySpki, SubjectPublicKeyInfo),
    extensions: new Extensions(params.extensions),
  });
  // asn1-schema's Time picks GeneralizedTime only after 2049, as RFC 5280 requires.
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = await signer.sign(tbsDer);
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: sigAlg, signatureValue: toArrayBuffer(signature) });
  const der = Buffer.from(AsnConvert.serialize(cert));
  verifyCertificateSignature(der, signer.publicKeySpki);
  return der;
}

/** Issuer public keys, parsed once: there are a handful of CAs and thousands of issuances. */
const issuerKeys = new Map<string, KeyObject>();

/** Throws unless `der` is a certificate whose signature verifies with `issuerSpki`. */
export function verifyCertificateSignature(der: Buffer, issuerSpki: Buffer): void {
  const cert = AsnConvert.parse(der, Certificate);
  const tbsRaw = Buffer.from(cert.tbsCertificateRaw ?? AsnConvert.serialize(cert.tbsCertificate));
  const cacheKey = issuerSpki.toString('base64');
  let key = issuerKeys.get(cacheKey);
  if (!key) {
    key = createPublicKey({ key: issuerSpki, format: 'der', type: 'spki' });
    if (issuerKeys.size > 16) issuerKeys.clear();
    issuerKeys.set(cacheKey, key);
  }
  const ok = verify('sha256', tbsRaw, { key, dsaEncoding: 'der' }, Buffer.from(cert.signatureValue));
  if (!ok) throw new CaError('CA_SIGNATURE_CHECK_FAILED', 'A certificate the HSM just signed does not verify with the CA public key; the HSM key and the CA certificate do not match.');
}

/** DER IA5String (tag 22). Written by hand: a tag, a length and ASCII bytes. */
export function derIa5String(value: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(value)) throw new CaError('CA_PROFILE_INVALID', 'an IA5String holds ASCII only');
  const body = Buffer.from(value, 'ascii');
  return Buffer.concat([Buffer.from([0x16]), derLen(body.length), body]);
}

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function fromPem(pem: string, label = 'CERTIFICATE'): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Buffer[] = [];
  for (const m of pem.matchAll(re)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return out;
}
