/**
 * Checks a device's PKCS#10 request before anything is issued: well-formed DER, ecdsa-with-SHA256,
 * a P-256 key, a signature that verifies with that key (proof of possession), and the subject
 * serialNumber the station assigned. Each failure has its own code.
 */
import { createPublicKey, verify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { CaError } from '../../core/errors';
import { EcPublicKeyError, p256PointFromSpki, p256SpkiFromPoint } from '../../core/ec-public-key';
import { OID_ECDSA_WITH_SHA256, OID_SERIAL_NUMBER, nameValue } from './x509-builder';

export interface CheckedCsr {
  /** DER SPKI, uncompressed point. */
  spki: Buffer;
  subjectSerial: string | undefined;
}

export interface CsrExpectations {
  serial: string;
}

export function checkCsr(csrDer: Buffer, expect: CsrExpectations): CheckedCsr {
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
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
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
  if (subjectSerial !== expect.serial) {
    throw new CaError(
      'CSR_SERIAL_MISMATCH',
      `The device asked for a certificate for serial ${JSON.stringify(subjectSerial ?? '(none)')}, but the station assigned ${expect.serial}.`,
      { stage: 'obtain-key', details: { expected: expect.serial, got: subjectSerial ?? null } },
    );
  }
  return { spki, subjectSerial };
}
