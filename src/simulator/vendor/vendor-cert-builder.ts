/**
 * The simulated SE vendor's minimal X.509 builder (@peculiar/asn1-x509, signed with a software
 * key). The simulator may not import the station's CA code (src/hsm/ca), and a vendor's tooling
 * is not the manufacturer's anyway: this is the vendor side, kept to what its certificates need.
 */
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { toArrayBuffer } from '../../core/bytes';

const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
export const OID_COMMON_NAME = '2.5.4.3';
export const OID_SERIAL_NUMBER = '2.5.4.5';
export const OID_ORGANIZATION = '2.5.4.10';

/** "No well-defined expiration" (IEEE 802.1AR), encoded as GeneralizedTime 99991231235959Z. */
export const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

/** A Name with one PrintableString attribute per RDN, in the order given. */
export function printableName(entries: ReadonlyArray<[oid: string, value: string]>): Name {
  return new Name(entries.map(([type, value]) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ printableString: value }) })])));
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  return createHash('sha1').update(Buffer.from(AsnConvert.parse(spkiDer, SubjectPublicKeyInfo).subjectPublicKey)).digest();
}

function ext(extnID: string, critical: boolean, value: ArrayBuffer): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(value) });
}

export function caExtensions(spki: Buffer): Extension[] {
  return [
    ext(id_ce_basicConstraints, true, AsnConvert.serialize(new BasicConstraints({ cA: true }))),
    ext(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign))),
    ext(id_ce_subjectKeyIdentifier, false, AsnConvert.serialize(new SubjectKeyIdentifier(keyIdentifier(spki)))),
  ];
}

export function endEntityExtensions(spki: Buffer, issuerSpki: Buffer): Extension[] {
  return [
    ext(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.digitalSignature))),
    ext(id_ce_subjectKeyIdentifier, false, AsnConvert.serialize(new SubjectKeyIdentifier(keyIdentifier(spki)))),
    ext(id_ce_authorityKeyIdentifier, false, AsnConvert.serialize(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyIdentifier(issuerSpki)) }))),
  ];
}

export interface VendorCertificateParams {
  issuer: Name;
  subject: Name;
  subjectSpki: Buffer;
  extensions: Extension[];
  /** The issuer's P-256 private key. */
  signingKey: KeyObject;
  notBefore?: Date;
  notAfter?: Date;
}

/** Build and sign (ecdsa-with-SHA256) an X.509 v3 certificate; returns DER. */
export function buildVendorCertificate(p: VendorCertificateParams): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, 16 bytes
  const sigAlg = new AlgorithmIdentifier({ algorithm: OID_ECDSA_WITH_SHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: toArrayBuffer(serial),
    signature: sigAlg,
    issuer: p.issuer,
    validity: new Validity({ notBefore: p.notBefore ?? new Date(), notAfter: p.notAfter ?? NO_EXPIRY }),
    subject: p.subject,
    subjectPublicKeyInfo: AsnConvert.parse(p.subjectSpki, SubjectPublicKeyInfo),
    extensions: new Extensions(p.extensions),
  });
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(tbs)), { key: p.signingKey, dsaEncoding: 'der' });
  return Buffer.from(AsnConvert.serialize(new Certificate({ tbsCertificate: tbs, signatureAlgorithm: sigAlg, signatureValue: toArrayBuffer(signature) })));
}
