/**
 * BRSKI vouchers and voucher-requests as CMS SignedData (RFC 8366 §5.2, RFC 8995 §3.3 and §5.5):
 * the JSON voucher is the encapsulated content (eContentType id-ct-animaJSONVoucher), signed by
 * one signer with ecdsa-with-SHA256 over DER signed attributes (contentType, messageDigest,
 * signingTime); the signer's certificate (and its chain) travel in `certificates`. The media type
 * on HTTP is `application/voucher-cms+json`. Pure: pkijs/asn1js for the structures, node:crypto
 * for hashes and signatures; the signature comes from a callback so that a device's SE, an HSM
 * or a software key can sign. The device firmware, the station's QA registrar and the MASA share
 * these helpers (docs/brski.md).
 */
import { X509Certificate, createHash, verify as nodeVerify } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export const VOUCHER_CMS_MEDIA_TYPE = 'application/voucher-cms+json';
/** id-ct-animaJSONVoucher (RFC 8366 §8.3). */
export const OID_ANIMA_JSON_VOUCHER = '1.2.840.113549.1.9.16.1.40';
const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_ATTR_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_ATTR_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_ATTR_SIGNING_TIME = '1.2.840.113549.1.9.5';

/** The pledge voucher-request object (RFC 8995 §3.2): `{ "ietf-voucher-request:voucher": {...} }`. */
export const VOUCHER_REQUEST_KEY = 'ietf-voucher-request:voucher';
/** The voucher object (RFC 8366 §5.3): `{ "ietf-voucher:voucher": {...} }`. */
export const VOUCHER_KEY = 'ietf-voucher:voucher';

export class VoucherCmsError extends Error {}

export interface ParsedVoucherCms {
  eContentType: string;
  /** The encapsulated content as received (the JSON bytes). */
  content: Buffer;
  /** The content as a JSON object. */
  json: Record<string, unknown>;
  /** Every certificate the SignedData carries, DER, in the order received. */
  certificates: Buffer[];
  /** The signer's certificate (matched by issuer and serial, or by subject key identifier), if carried. */
  signerCertificate: Buffer | undefined;
  /** What the signature covers: DER SET OF signed attributes, or the content when there are none. */
  signedBytes: Buffer;
  /** The messageDigest signed attribute, when present. */
  messageDigest: Buffer | undefined;
  contentTypeAttribute: string | undefined;
  signingTime: Date | undefined;
  digestAlgorithm: string;
  signatureAlgorithm: string;
  /** DER ECDSA-Sig-Value. */
  signature: Buffer;
}

function ab(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function fromBerExact(bytes: Uint8Array, what: string): asn1js.AsnType {
  const parsed = asn1js.fromBER(ab(bytes));
  if (parsed.offset === -1 || parsed.offset !== bytes.byteLength) throw new VoucherCmsError(`${what} is not one DER/BER element`);
  return parsed.result;
}

function derOf(schema: { toBER(sizeOnly?: boolean): ArrayBuffer }): Buffer {
  return Buffer.from(schema.toBER(false));
}

/** DER SET OF: elements sorted by their encodings (X.690 §11.6). */
function sortedAttributes(attributes: pkijs.Attribute[]): pkijs.Attribute[] {
  return attributes
    .map((a) => ({ a, der: derOf(a.toSchema()) }))
    .sort((x, y) => Buffer.compare(x.der, y.der))
    .map((x) => x.a);
}

export interface SignVoucherCmsOptions {
  /** The signer's certificate first, then any chain to carry (DER). */
  certificates: Buffer[];
  /** ECDSA P-256 / SHA-256 over `data`, DER ECDSA-Sig-Value (a Signer's output). */
  sign: (data: Buffer) => Buffer;
  signingTime?: Date;
}

/**
 * CMS SignedData (ContentInfo, DER) over the UTF-8 JSON of `payload`, eContentType
 * id-ct-animaJSONVoucher, version 3, one SignerInfo identified by issuer and serial number.
 */
export function signVoucherCms(payload: object, options: SignVoucherCmsOptions): Buffer {
  const signerDer = options.certificates[0];
  if (!signerDer) throw new VoucherCmsError('signVoucherCms needs the signer certificate');
  const content = Buffer.from(JSON.stringify(payload), 'utf8');
  const certificates = options.certificates.map((der) => new pkijs.Certificate({ schema: fromBerExact(der, 'a certificate') }));
  const signer = certificates[0]!;
  const attributes = sortedAttributes([
    new pkijs.Attribute({ type: OID_ATTR_CONTENT_TYPE, values: [new asn1js.ObjectIdentifier({ value: OID_ANIMA_JSON_VOUCHER })] }),
    new pkijs.Attribute({ type: OID_ATTR_MESSAGE_DIGEST, values: [new asn1js.OctetString({ valueHex: ab(createHash('sha256').update(content).digest()) })] }),
    new pkijs.Attribute({ type: OID_ATTR_SIGNING_TIME, values: [new asn1js.UTCTime({ valueDate: options.signingTime ?? new Date() })] }),
  ]);
  // What is signed is the DER SET OF the attributes; the SignerInfo carries them as [0] IMPLICIT.
  const signedSet = derOf(new asn1js.Set({ value: attributes.map((a) => a.toSchema()) }));
  const signature = options.sign(signedSet);
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.issuer, serialNumber: signer.serialNumber }),
    digestAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID_SHA256 }),
    signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
    signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID_ECDSA_WITH_SHA256 }),
    signature: new asn1js.OctetString({ valueHex: ab(signature) }),
  });
  const signedData = new pkijs.SignedData({
    version: 3,
    digestAlgorithms: [new pkijs.AlgorithmIdentifier({ algorithmId: OID_SHA256 })],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({
      eContentType: OID_ANIMA_JSON_VOUCHER,
      eContent: new asn1js.OctetString({ valueHex: ab(content) }),
    }),
    certificates,
    signerInfos: [signerInfo],
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: OID_SIGNED_DATA, content: signedData.toSchema() });
  const der = derOf(contentInfo.toSchema());
  const check = parseVoucherCms(der);
  if (!check.signedBytes.equals(signedSet)) throw new VoucherCmsError('internal: the signed attributes did not round-trip');
  return der;
}

function octets(value: asn1js.OctetString): Buffer {
  if (value.idBlock.isConstructed) {
    return Buffer.concat((value.valueBlock.value as asn1js.OctetString[]).map((part) => octets(part)));
  }
  return Buffer.from(value.valueBlock.valueHexView);
}

function jsonObject(bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new VoucherCmsError('the CMS content is not UTF-8 JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new VoucherCmsError('the CMS content is not a JSON object');
  return value as Record<string, unknown>;
}

function signerMatches(cert: pkijs.Certificate, sid: pkijs.SignerInfo['sid']): boolean {
  if (sid instanceof pkijs.IssuerAndSerialNumber) {
    return cert.issuer.isEqual(sid.issuer) && cert.serialNumber.isEqual(sid.serialNumber);
  }
  // [0] SubjectKeyIdentifier
  const ski = (cert.extensions ?? []).find((e) => e.extnID === '2.5.29.14');
  // [0] IMPLICIT OCTET STRING: asn1js leaves it a context-specific primitive with its bytes
  const wanted = Buffer.from((sid as { valueBlock?: { valueHexView?: Uint8Array } }).valueBlock?.valueHexView ?? new Uint8Array());
  if (!ski) return false;
  const inner = fromBerExact(Buffer.from(ski.extnValue.valueBlock.valueHexView), 'a subject key identifier') as asn1js.OctetString;
  const have = octets(inner);
  return wanted.length > 0 && have.equals(wanted);
}

function attribute(attrs: pkijs.Attribute[], type: string): asn1js.AsnType | undefined {
  const found = attrs.filter((a) => a.type === type);
  if (found.length > 1) throw new VoucherCmsError(`the signed attribute ${type} appears twice`);
  const values = found[0]?.values ?? [];
  if (found[0] && values.length !== 1) throw new VoucherCmsError(`the signed attribute ${type} must have one value`);
  return values[0] as asn1js.AsnType | undefined;
}

/** Decode a CMS SignedData voucher (signature unchecked); throws VoucherCmsError when malformed. */
export function parseVoucherCms(der: Uint8Array): ParsedVoucherCms {
  let contentInfo: pkijs.ContentInfo;
  let signedData: pkijs.SignedData;
  try {
    contentInfo = new pkijs.ContentInfo({ schema: fromBerExact(der, 'the voucher') });
    if (contentInfo.contentType !== OID_SIGNED_DATA) throw new VoucherCmsError(`the CMS content type is ${contentInfo.contentType}, not SignedData`);
    signedData = new pkijs.SignedData({ schema: contentInfo.content });
  } catch (err) {
    if (err instanceof VoucherCmsError) throw err;
    throw new VoucherCmsError(`not a CMS SignedData: ${(err as Error).message}`);
  }
  const eContent = signedData.encapContentInfo.eContent;
  if (!eContent) throw new VoucherCmsError('the CMS SignedData has no encapsulated content (detached signatures are not vouchers)');
  if (signedData.signerInfos.length !== 1) throw new VoucherCmsError(`a voucher has exactly one signer, not ${signedData.signerInfos.length}`);
  const signerInfo = signedData.signerInfos[0]!;
  const content = octets(eContent);
  const certs = (signedData.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
  const signerCert = certs.find((c) => signerMatches(c, signerInfo.sid));

  let signedBytes = content;
  let messageDigest: Buffer | undefined;
  let contentTypeAttribute: string | undefined;
  let signingTime: Date | undefined;
  if (signerInfo.signedAttrs) {
    signedBytes = Buffer.from(signerInfo.signedAttrs.encodedValue); // pkijs re-tags [0] as SET (0x31)
    if (signedBytes[0] !== 0x31) throw new VoucherCmsError('internal: signed attributes not re-tagged as a SET');
    const attrs = signerInfo.signedAttrs.attributes;
    const md = attribute(attrs, OID_ATTR_MESSAGE_DIGEST);
    if (md !== undefined) {
      if (!(md instanceof asn1js.OctetString)) throw new VoucherCmsError('the messageDigest attribute is not an OCTET STRING');
      messageDigest = octets(md);
    }
    const ct = attribute(attrs, OID_ATTR_CONTENT_TYPE);
    if (ct !== undefined) {
      if (!(ct instanceof asn1js.ObjectIdentifier)) throw new VoucherCmsError('the contentType attribute is not an OID');
      contentTypeAttribute = ct.valueBlock.toString();
    }
    const st = attribute(attrs, OID_ATTR_SIGNING_TIME);
    if (st instanceof asn1js.UTCTime || st instanceof asn1js.GeneralizedTime) signingTime = st.toDate();
  }
  return {
    eContentType: signedData.encapContentInfo.eContentType,
    content,
    json: jsonObject(content),
    certificates: certs.map((c) => derOf(c.toSchema())),
    signerCertificate: signerCert ? derOf(signerCert.toSchema()) : undefined,
    signedBytes,
    messageDigest,
    contentTypeAttribute,
    signingTime,
    digestAlgorithm: signerInfo.digestAlgorithm.algorithmId,
    signatureAlgorithm: signerInfo.signatureAlgorithm.algorithmId,
    signature: Buffer.from(signerInfo.signature.valueBlock.valueHexView),
  };
}

/**
 * Why the voucher's signature does not verify with `signerCertificate` (DER), or null when it
 * does: eContentType id-ct-animaJSONVoucher, SHA-256, ECDSA P-256, with signed attributes the
 * contentType attribute equal to the eContentType and messageDigest equal to SHA-256(content).
 */
export function voucherCmsSignatureProblem(parsed: ParsedVoucherCms, signerCertificate: Buffer): string | null {
  if (parsed.eContentType !== OID_ANIMA_JSON_VOUCHER) return `eContentType ${parsed.eContentType} is not id-ct-animaJSONVoucher`;
  if (parsed.digestAlgorithm !== OID_SHA256) return `digest algorithm ${parsed.digestAlgorithm} is not SHA-256`;
  if (parsed.signatureAlgorithm !== OID_ECDSA_WITH_SHA256 && parsed.signatureAlgorithm !== OID_EC_PUBLIC_KEY) {
    return `signature algorithm ${parsed.signatureAlgorithm} is not ecdsa-with-SHA256`;
  }
  if (!parsed.signedBytes.equals(parsed.content)) {
    if (parsed.contentTypeAttribute !== OID_ANIMA_JSON_VOUCHER) return 'the contentType signed attribute does not match the eContentType';
    if (!parsed.messageDigest || !parsed.messageDigest.equals(createHash('sha256').update(parsed.content).digest())) return 'the messageDigest signed attribute does not match the content';
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(signerCertificate);
  } catch {
    return 'the signer certificate is not a certificate';
  }
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return 'the signer key is not ECDSA P-256';
  try {
    return nodeVerify('sha256', parsed.signedBytes, { key, dsaEncoding: 'der' }, parsed.signature) ? null : 'the CMS signature does not verify with the signer certificate';
  } catch {
    return 'the CMS signature is malformed';
  }
}

/** The voucher or voucher-request object inside a parsed CMS (`key` is VOUCHER_KEY or VOUCHER_REQUEST_KEY). */
export function voucherBody(parsed: ParsedVoucherCms, key: string): Record<string, unknown> | undefined {
  const body = parsed.json[key];
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
}
