/**
 * Software P-256 keys and X.509 certificates for the reference services' own PKI: the TLS server
 * CA and certificates, the MASA's voucher-signing identity, the owner CA of the supply-chain
 * service, and the QA registrar's domain. Keys are node KeyObjects (PKCS#8 PEM files, 0600, when
 * stored); certificates are built with pkijs and signed with node:crypto (ecdsa-with-SHA256).
 * Never for device birth credentials: those come from the HSM (src/hsm).
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';
const OID_SERIAL_NUMBER = '2.5.4.5';

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** id-kp-cmcRA (RFC 6402): RFC 8995 §2.3.2 marks a registrar's certificate with it. */
export const EKU_CMC_RA = '1.3.6.1.5.5.7.3.28';

export type KeyUsageName = 'digitalSignature' | 'keyCertSign' | 'cRLSign';
const KEY_USAGE_BITS: Record<KeyUsageName, number> = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 };

export interface CertificateName {
  commonName: string;
  organization?: string;
  serialNumber?: string;
}

export interface CertificateRequest {
  subject: CertificateName;
  /** The certified public key. */
  publicKey: KeyObject;
  /** Absent: self-signed with `signingKey`. */
  issuerCertificate?: Buffer;
  /** The issuer's private key (the subject's own for a self-signed certificate). */
  signingKey: KeyObject;
  validityDays: number;
  ca?: { pathLength?: number };
  keyUsage: KeyUsageName[];
  extendedKeyUsage?: string[];
  /** DNS names and IP addresses for a TLS server certificate. */
  subjectAltNames?: string[];
}

export function generateP256Key(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

function ab(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function rdn(name: CertificateName): pkijs.RelativeDistinguishedNames {
  const atv = (type: string, value: string, printable: boolean) =>
    new pkijs.AttributeTypeAndValue({ type, value: printable ? new asn1js.PrintableString({ value }) : new asn1js.Utf8String({ value }) });
  const values = [
    ...(name.organization ? [atv(OID_O, name.organization, false)] : []),
    atv(OID_CN, name.commonName, false),
    ...(name.serialNumber ? [atv(OID_SERIAL_NUMBER, name.serialNumber, true)] : []),
  ];
  // one attribute per RDN (pkijs would put them all in one multi-valued RDN): encode, then parse back
  const der = new asn1js.Sequence({ value: values.map((v) => new asn1js.Set({ value: [v.toSchema()] })) }).toBER(false);
  return new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(der).result });
}

function parseCertificate(der: Buffer): pkijs.Certificate {
  const parsed = asn1js.fromBER(ab(der));
  if (parsed.offset === -1) throw new Error('not a DER certificate');
  return new pkijs.Certificate({ schema: parsed.result });
}

function spkiDer(key: KeyObject): Buffer {
  return (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const info = new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(ab(spkiDer(publicKey))).result });
  return createHash('sha1').update(Buffer.from(info.subjectPublicKey.valueBlock.valueHexView)).digest();
}

function keyUsageBits(names: KeyUsageName[]): asn1js.BitString {
  let bits = 0;
  for (const n of names) bits |= 0x80 >> KEY_USAGE_BITS[n];
  let unused = 0;
  while (unused < 7 && !(bits & (1 << unused))) unused++;
  return new asn1js.BitString({ valueHex: ab(Buffer.from([bits])), unusedBits: unused });
}

function extension(extnID: string, critical: boolean, value: { toBER(sizeOnly?: boolean): ArrayBuffer }): pkijs.Extension {
  return new pkijs.Extension({ extnID, critical, extnValue: value.toBER(false) });
}

function altName(value: string): pkijs.GeneralName {
  const ip = isIP(value);
  if (ip === 4) return new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: ab(Buffer.from(value.split('.').map(Number))) }) });
  if (ip === 6) throw new Error('IPv6 subjectAltNames are not needed by the reference services');
  return new pkijs.GeneralName({ type: 2, value });
}

/** A DER certificate for `request`, signed ecdsa-with-SHA256. */
export function issueCertificate(request: CertificateRequest): Buffer {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, and minimal (a leading 0x00 would be illegal DER padding)
  cert.serialNumber = new asn1js.Integer({ valueHex: ab(serial) });
  const algorithm = new pkijs.AlgorithmIdentifier({ algorithmId: OID_ECDSA_WITH_SHA256 });
  cert.signature = algorithm;
  cert.signatureAlgorithm = algorithm;
  const issuer = request.issuerCertificate ? parseCertificate(request.issuerCertificate) : undefined;
  cert.subject = rdn(request.subject);
  cert.issuer = issuer ? issuer.subject : rdn(request.subject);
  const now = Date.now();
  cert.notBefore = new pkijs.Time({ type: 0, value: new Date(Math.floor((now - 60_000) / 1000) * 1000) });
  cert.notAfter = new pkijs.Time({ type: 0, value: new Date(Math.floor((now + request.validityDays * 86_400_000) / 1000) * 1000) });
  cert.subjectPublicKeyInfo = new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(ab(spkiDer(request.publicKey))).result });
  const issuerKeyId = keyIdentifier(issuer ? createPublicKey(request.signingKey) : request.publicKey);
  const extensions = [
    extension('2.5.29.19', true, new pkijs.BasicConstraints({ cA: request.ca !== undefined, ...(request.ca?.pathLength !== undefined ? { pathLenConstraint: request.ca.pathLength } : {}) }).toSchema()),
    extension('2.5.29.15', true, keyUsageBits(request.keyUsage)),
    extension('2.5.29.14', false, new asn1js.OctetString({ valueHex: ab(keyIdentifier(request.publicKey)) })),
    extension('2.5.29.35', false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: ab(issuerKeyId) }) }).toSchema()),
  ];
  if (request.extendedKeyUsage?.length) extensions.push(extension('2.5.29.37', false, new pkijs.ExtKeyUsage({ keyPurposes: request.extendedKeyUsage }).toSchema()));
  if (request.subjectAltNames?.length) extensions.push(extension('2.5.29.17', false, new pkijs.GeneralNames({ names: request.subjectAltNames.map(altName) }).toSchema()));
  cert.extensions = extensions;
  const tbs = Buffer.from(cert.encodeTBS().toBER(false));
  cert.tbsView = new Uint8Array(tbs);
  const signature = sign('sha256', tbs, { key: request.signingKey, dsaEncoding: 'der' });
  cert.signatureValue = new asn1js.BitString({ valueHex: ab(signature) });
  return Buffer.from(cert.toSchema().toBER(false));
}

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every certificate in a PEM bundle, DER. */
export function pemCertificates(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}
