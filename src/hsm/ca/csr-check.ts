/**
 * Checks a device's PKCS#10 request before anything is issued: well-formed DER, ecdsa-with-SHA256,
 * a P-256 key, a signature that verifies with that key (proof of possession), the subject
 * serialNumber the station assigned, no requested extension outside what the profile issues
 * (extensionRequest, 1.2.840.113549.1.9.14), and a key not already certified for another
 * device. Each failure has its own code.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import {
  BasicConstraints,
  Extensions,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectAltName,
} from '@peculiar/asn1-x509';
import type { IdevidProfile } from '../../core/config';
import { CaError } from '../../core/errors';
import { EcPublicKeyError, p256PointFromSpki, p256SpkiFromPoint } from '../../core/ec-public-key';
import type { IssuanceJournal } from '../../core/ports/issuance-journal';
import { OID_HARDWARE_MODULE_NAME, idevidExtensionOids } from './idevid-profile';
import { extensionName } from './profile-lint';
import { OID_ECDSA_WITH_SHA256, OID_SERIAL_NUMBER, nameValue } from './x509-builder';
import { derSpanAt, type DerSpan } from './der';
import { InProcessSignatureChecker, type SignatureChecker } from './signature-checker';

/** PKCS#9 extensionRequest. */
export const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

export interface CheckedCsr {
  /** DER SPKI, uncompressed point. */
  spki: Buffer;
  subjectSerial: string | undefined;
  /** SHA-256 of `spki`, hex: the key's id in the issuance journal. */
  publicKeySha256Hex: string;
}

export interface CsrExpectations {
  serial: string;
  /**
   * The product's profile: requested extensions must be ones it issues. Without it, the
   * policy is that of a profile with every part switched on.
   */
  profile?: IdevidProfile;
  /** Where to look for another device holding the same key (the issuance journal). */
  certifiedKeys?: Pick<IssuanceJournal, 'findDeviceByPublicKey'>;
}

const FULL_PROFILE_OIDS = idevidExtensionOids({
  organization: 'x',
  serialNumberInSubject: true,
  masaUrl: 'https://x',
  hardwareModuleName: { hwType: '1.2.3' },
  subjectKeyIdentifier: true,
  authorityKeyIdentifier: true,
  validityDays: null,
});

function notAllowed(oid: string, why: string): CaError {
  return new CaError('CSR_EXTENSION_NOT_ALLOWED', `The device's certificate request asks for ${extensionName(oid)}${why}; the product's IDevID profile does not issue that. Check the firmware's CSR template.`, {
    stage: 'obtain-key',
    details: { oid },
  });
}

/**
 * Requested extensions (the station never copies them) must be ones the profile issues, with
 * values it would issue: keyUsage digitalSignature only, subjectAltName hardwareModuleName only;
 * basicConstraints only as cA FALSE (what an end entity is anyway).
 */
function checkRequestedExtensions(csr: CertificationRequest, profile: IdevidProfile | undefined): void {
  const attributes = csr.certificationRequestInfo.attributes ?? [];
  const requests = attributes.filter((a) => a.type === OID_EXTENSION_REQUEST);
  if (requests.length === 0) return;
  if (requests.length > 1 || requests[0]!.values.length !== 1) {
    throw new CaError('CSR_MALFORMED', 'The device\'s certificate request carries more than one extensionRequest.', { stage: 'obtain-key' });
  }
  let extensions: Extensions;
  try {
    extensions = AsnConvert.parse(requests[0]!.values[0]!, Extensions);
  } catch (err) {
    throw new CaError('CSR_MALFORMED', `The extensionRequest in the device's certificate request is not valid DER: ${(err as Error).message}`, { stage: 'obtain-key', cause: err });
  }
  const allowed = new Set(profile ? idevidExtensionOids(profile) : FULL_PROFILE_OIDS);
  const seen = new Set<string>();
  for (const ext of extensions) {
    if (seen.has(ext.extnID)) throw new CaError('CSR_MALFORMED', `The device's certificate request asks for ${extensionName(ext.extnID)} twice.`, { stage: 'obtain-key' });
    seen.add(ext.extnID);
    const value = ext.extnValue.buffer;
    try {
      if (ext.extnID === id_ce_basicConstraints) {
        if (AsnConvert.parse(value, BasicConstraints).cA) throw notAllowed(ext.extnID, ' with cA TRUE (a CA certificate)');
        continue;
      }
      if (!allowed.has(ext.extnID)) throw notAllowed(ext.extnID, '');
      if (ext.extnID === id_ce_keyUsage) {
        const flags = AsnConvert.parse(value, KeyUsage).toNumber();
        if ((flags & ~KeyUsageFlags.digitalSignature) !== 0) throw notAllowed(ext.extnID, ` with usages besides digitalSignature (${new KeyUsage(flags).toJSON().join(', ')})`);
      }
      if (ext.extnID === id_ce_subjectAltName) {
        const san = AsnConvert.parse(value, SubjectAlternativeName);
        if (san.some((gn) => gn.otherName?.typeId !== OID_HARDWARE_MODULE_NAME)) throw notAllowed(ext.extnID, ' with names other than hardwareModuleName');
      }
    } catch (err) {
      if (err instanceof CaError) throw err;
      throw new CaError('CSR_MALFORMED', `The requested ${extensionName(ext.extnID)} is not valid DER: ${(err as Error).message}`, { stage: 'obtain-key', cause: err });
    }
  }
}

/**
 * The reference implementation on @peculiar/asn1-schema's object graph: every request the fast
 * path declines (anything but the plain shape, and every failure) is decided here, so that the
 * codes and messages are this function's.
 */
export function checkCsrGeneral(csrDer: Buffer, expect: CsrExpectations): CheckedCsr {
  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(csrDer, CertificationRequest);
  } catch (err) {
    throw new CaError('CSR_MALFORMED', `The device's certificate request is not valid DER PKCS#10: ${(err as Error).message}`, { stage: 'obtain-key', cause: err });
  }
  if (csr.signatureAlgorithm.algorithm !== OID_ECDSA_WITH_SHA256) {
    throw new CaError('CSR_ALGORITHM_UNSUPPORTED', `The device signed its request with ${csr.signatureAlgorithm.algorithm}; ecdsa-with-SHA256 is required.`, { stage: 'obtain-key' });
  }
  const rawSpki = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo));
  let spki: Buffer;
  try {
    spki = p256SpkiFromPoint(p256PointFromSpki(rawSpki));
  } catch (err) {
    const why = err instanceof EcPublicKeyError ? err.message : String(err);
    throw new CaError('CSR_KEY_UNSUPPORTED', `The device's request carries an unusable key: ${why}; P-256 is required.`, { stage: 'obtain-key', cause: err });
  }
  let key: ReturnType<typeof createPublicKey>;
  try {
    // p256PointFromSpki checks the encoding; OpenSSL checks that the point is on the curve.
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new CaError('CSR_KEY_UNSUPPORTED', 'The device\'s request carries a P-256 public key whose point is not on the curve.', { stage: 'obtain-key', cause: err });
  }
  const info = Buffer.from(csr.certificationRequestInfoRaw ?? AsnConvert.serialize(csr.certificationRequestInfo));
  let ok = false;
  try {
    ok = verify('sha256', info, { key, dsaEncoding: 'der' }, Buffer.from(csr.signature));
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new CaError('CSR_SIGNATURE_INVALID', 'The signature on the device\'s certificate request does not verify with the key it carries: the device does not prove possession of its key.', {
      stage: 'obtain-key',
    });
  }
  const subjectSerial = nameValue(csr.certificationRequestInfo.subject, OID_SERIAL_NUMBER);
  checkSerial(subjectSerial, expect);
  checkRequestedExtensions(csr, expect.profile);
  return finish(spki, subjectSerial, expect);
}

function checkSerial(subjectSerial: string | undefined, expect: CsrExpectations): void {
  if (subjectSerial !== expect.serial) {
    throw new CaError(
      'CSR_SERIAL_MISMATCH',
      `The device asked for a certificate for serial ${JSON.stringify(subjectSerial ?? '(none)')}, but the station assigned ${expect.serial}.`,
      { stage: 'obtain-key', details: { expected: expect.serial, got: subjectSerial ?? null } },
    );
  }
}

function finish(spki: Buffer, subjectSerial: string | undefined, expect: CsrExpectations): CheckedCsr {
  const publicKeySha256Hex = createHash('sha256').update(spki).digest('hex');
  const holder = expect.certifiedKeys?.findDeviceByPublicKey(publicKeySha256Hex);
  if (holder !== undefined && holder !== expect.serial) {
    throw new CaError(
      'CSR_KEY_ALREADY_CERTIFIED',
      `The device asks a certificate for serial ${expect.serial} with a key already certified for device ${holder}: a duplicate key means a cloned or broken device. Set both aside; do not ship either.`,
      { stage: 'obtain-key', details: { serial: expect.serial, otherSerial: holder, publicKeySha256: publicKeySha256Hex } },
    );
  }
  return { spki, subjectSerial, publicKeySha256Hex };
}

// ---------------------------------------------------------------------------------------------
// Fast path (design/pitfalls.md 14: parsing a CSR through asn1-schema's object graph costs ~1 ms,
// the ECDSA verification ~0.1 ms). A strict DER walker over the plain PKCS#10 shape: version 0,
// a Name, an SPKI, an attributes set, ecdsa-with-SHA256 without parameters, a BIT STRING with no
// unused bits. It only ever ACCEPTS; anything it does not recognise, and every failure, is handed
// to checkCsrGeneral, which decides with its own codes. Nothing is cached between requests.


const ECDSA_SHA256_ALG = Buffer.from('300a06082a8648ce3d040302', 'hex');
const OID_SN_BYTES = Buffer.from('550405', 'hex');

/** The first subject serialNumber of a Name, or null when the Name needs the general path. */
function fastSubjectSerial(buf: Buffer, name: DerSpan): string | undefined | null {
  let found: string | undefined;
  for (let off = name.start; off < name.end; ) {
    const rdn = derSpanAt(buf, off, name.end);
    if (!rdn || rdn.tag !== 0x31) return null;
    for (let a = rdn.start; a < rdn.end; ) {
      const atv = derSpanAt(buf, a, rdn.end);
      if (!atv || atv.tag !== 0x30) return null;
      const oid = derSpanAt(buf, atv.start, atv.end);
      if (!oid || oid.tag !== 0x06) return null;
      const val = derSpanAt(buf, oid.end, atv.end);
      if (!val || val.end !== atv.end) return null;
      if (found === undefined && oid.end - oid.start === 3 && buf.compare(OID_SN_BYTES, 0, 3, oid.start, oid.end) === 0) {
        // PrintableString, IA5String: ASCII; UTF8String: UTF-8. Other string types: general path.
        if (val.tag === 0x13 || val.tag === 0x16) {
          for (let i = val.start; i < val.end; i++) if (buf[i]! > 0x7e || buf[i]! < 0x20) return null;
          found = buf.toString('latin1', val.start, val.end);
        } else if (val.tag === 0x0c) {
          for (let i = val.start; i < val.end; i++) if (buf[i]! > 0x7e || buf[i]! < 0x20) return null;
          found = buf.toString('utf8', val.start, val.end);
        } else return null;
      }
      a = atv.end;
    }
    off = rdn.end;
  }
  return found;
}

/** What the fast path needs to decide a plain request: everything but the signature check. */
interface FastCsrParts {
  /** The uncompressed point (0x04 || X || Y). */
  point: Buffer;
  /** The canonical DER SPKI of the point. */
  spki: Buffer;
  /** certificationRequestInfo, as signed. */
  signed: Buffer;
  /** DER ECDSA-Sig-Value. */
  signature: Buffer;
  subjectSerial: string;
}

/** The fast path's parse: the parts of a plain request with the expected serial, undefined for anything else. */
function fastParse(der: Buffer, expect: CsrExpectations): FastCsrParts | undefined {
  const outer = derSpanAt(der, 0, der.length);
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) return undefined;
  const info = derSpanAt(der, outer.start, outer.end);
  if (!info || info.tag !== 0x30) return undefined;
  const alg = derSpanAt(der, info.end, outer.end);
  if (!alg || alg.end - info.end !== ECDSA_SHA256_ALG.length || der.compare(ECDSA_SHA256_ALG, 0, ECDSA_SHA256_ALG.length, info.end, alg.end) !== 0) return undefined;
  const sig = derSpanAt(der, alg.end, outer.end);
  if (!sig || sig.tag !== 0x03 || sig.end !== outer.end || sig.end - sig.start < 2 || der[sig.start] !== 0) return undefined;
  // certificationRequestInfo: version 0, subject, SPKI, [0] attributes (empty: no extensionRequest).
  if (info.end - info.start < 3 || der[info.start] !== 0x02 || der[info.start + 1] !== 0x01 || der[info.start + 2] !== 0x00) return undefined;
  const subject = derSpanAt(der, info.start + 3, info.end);
  if (!subject || subject.tag !== 0x30) return undefined;
  const spkiTlv = derSpanAt(der, subject.end, info.end);
  if (!spkiTlv || spkiTlv.tag !== 0x30) return undefined;
  const attrs = derSpanAt(der, spkiTlv.end, info.end);
  if (!attrs || attrs.tag !== 0xa0 || attrs.end !== info.end || attrs.end !== attrs.start) return undefined;
  const subjectSerial = fastSubjectSerial(der, subject);
  if (subjectSerial === null || subjectSerial === undefined || subjectSerial !== expect.serial) return undefined;
  try {
    const point = p256PointFromSpki(der.subarray(subject.end, spkiTlv.end));
    return { point, spki: p256SpkiFromPoint(point), signed: der.subarray(outer.start, info.end), signature: der.subarray(sig.start + 1, sig.end), subjectSerial };
  } catch {
    return undefined;
  }
}

const inProcess = new InProcessSignatureChecker();

/** The fast path alone: a result for a plain valid request, undefined for anything else. */
export function fastCheck(der: Buffer, expect: CsrExpectations): CheckedCsr | undefined {
  const parts = fastParse(der, expect);
  if (!parts) return undefined;
  if (inProcess.checkNow({ key: { p256Point: parts.point }, data: parts.signed, signature: parts.signature }) !== 'valid') return undefined;
  return finish(parts.spki, parts.subjectSerial, expect);
}

/**
 * Checks a device's request: the DER fast path when the request has the plain shape and passes,
 * otherwise checkCsrGeneral (same policy, same codes).
 */
export function checkCsr(csrDer: Buffer, expect: CsrExpectations): CheckedCsr {
  return fastCheck(csrDer, expect) ?? checkCsrGeneral(csrDer, expect);
}

/**
 * checkCsr with the fast path's proof-of-possession check done by `checker` (a worker thread
 * shared by the issuances in flight: signature-checker.ts). Same policy, same codes: anything
 * the fast path does not accept is decided by checkCsrGeneral.
 */
export async function checkCsrWith(checker: SignatureChecker, csrDer: Buffer, expect: CsrExpectations): Promise<CheckedCsr> {
  const parts = fastParse(csrDer, expect);
  if (parts && (await checker.check({ key: { p256Point: parts.point }, data: parts.signed, signature: parts.signature })) === 'valid') {
    return finish(parts.spki, parts.subjectSerial, expect);
  }
  return checkCsrGeneral(csrDer, expect);
}
