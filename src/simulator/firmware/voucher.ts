/**
 * BRSKI on the device (RFC 8995): the pledge voucher-request signed with the birth key, and the
 * check of the MASA's voucher against the trust anchor installed at the factory. Both are CMS
 * SignedData, `application/voucher-cms+json` (src/core/voucher-cms.ts, docs/brski.md,
 * docs/crypto-constructions.md §4).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { VOUCHER_KEY, VOUCHER_REQUEST_KEY, VoucherCmsError, parseVoucherCms, signVoucherCms, voucherBody, voucherCmsSignatureProblem, type ParsedVoucherCms } from '../../core/voucher-cms';
import { tlv, type TlvItem, type TlvReader } from '../../device/framing/tlv';
import { Item, Tag } from '../../device/protocol/commands';
import { DeviceStatus } from '../../device/protocol/status';
import { Refusal, type DeviceState } from './device-state';

const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_SERIAL_NUMBER = '2.5.4.5';
export const VOUCHER_NONCE_MIN_BYTES = 8;
export const VOUCHER_NONCE_MAX_BYTES = 64;
const ASSERTIONS = ['verified', 'logged', 'proximity'];

function parseCertificate(der: Buffer): Certificate | undefined {
  try {
    return AsnConvert.parse(der, Certificate);
  } catch {
    return undefined;
  }
}

function spkiOf(cert: Certificate): Buffer {
  return Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subjectPublicKeyInfo));
}

function publicKey(spki: Buffer): KeyObject | undefined {
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

/** True when `cert` carries an ecdsa-with-SHA256 signature that verifies with `issuerKey`. */
function signedBy(cert: Certificate, issuerKey: KeyObject): boolean {
  if (cert.signatureAlgorithm.algorithm !== OID_ECDSA_WITH_SHA256) return false;
  const tbs = Buffer.from(cert.tbsCertificateRaw ?? AsnConvert.serialize(cert.tbsCertificate));
  try {
    return verify('sha256', tbs, { key: issuerKey, dsaEncoding: 'der' }, Buffer.from(cert.signatureValue));
  } catch {
    return false;
  }
}

/**
 * The pledge's serial-number: the serialNumber attribute of its IDevID (RFC 8995 §2.3.1), or
 * the serial the station gave it when the leaf has none.
 */
function deviceSerial(s: DeviceState): string | undefined {
  const leaf = s.chain[0] ? parseCertificate(s.chain[0]) : undefined;
  for (const rdn of leaf?.tbsCertificate.subject ?? []) {
    for (const atv of rdn) if (atv.type === OID_SERIAL_NUMBER) return atv.value.toString();
  }
  return s.serial;
}

function failed(detail: string): Refusal {
  return new Refusal(DeviceStatus.VERIFY_FAILED, detail);
}

export class VoucherFirmware {
  buildVoucherRequest(s: DeviceState, req: TlvReader): TlvItem[] {
    const key = s.birthKey;
    if (!key) throw new Refusal(DeviceStatus.BAD_STATE, 'no birth key yet');
    if (s.chain.length === 0) throw new Refusal(DeviceStatus.BAD_STATE, 'no IDevID installed');
    const nonce = req.required(Tag.NONCE, 'NONCE');
    if (nonce.length < VOUCHER_NONCE_MIN_BYTES || nonce.length > VOUCHER_NONCE_MAX_BYTES) {
      throw new Refusal(DeviceStatus.BAD_REQUEST, `NONCE must be ${VOUCHER_NONCE_MIN_BYTES}..${VOUCHER_NONCE_MAX_BYTES} bytes`);
    }
    const registrarCert = req.optional(Tag.REGISTRAR_CERT);
    if (registrarCert && !parseCertificate(registrarCert)) throw new Refusal(DeviceStatus.BAD_REQUEST, 'REGISTRAR_CERT is not a DER certificate');
    const createdOnText = req.optional(Tag.CREATED_ON)?.toString('utf8');
    const createdOn = createdOnText === undefined ? new Date() : new Date(createdOnText);
    if (Number.isNaN(createdOn.getTime()) || (createdOnText !== undefined && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(createdOnText))) {
      throw new Refusal(DeviceStatus.BAD_REQUEST, 'CREATED_ON is not an RFC 3339 date-and-time');
    }
    const serial = deviceSerial(s);
    if (serial === undefined) throw new Refusal(DeviceStatus.BAD_STATE, 'no serial number assigned');
    const voucher: Record<string, string> = {
      assertion: 'proximity',
      'created-on': createdOn.toISOString(),
      'serial-number': serial,
      nonce: nonce.toString('base64'),
    };
    if (registrarCert) voucher['proximity-registrar-cert'] = registrarCert.toString('base64');
    const cms = signVoucherCms({ [VOUCHER_REQUEST_KEY]: voucher }, { certificates: s.chain, sign: (data) => key.sign(data), signingTime: createdOn });
    s.voucherNonce = Buffer.from(nonce);
    return [tlv.bytes(Tag.VOUCHER_REQUEST, cms)];
  }

  verifyVoucher(s: DeviceState, req: TlvReader, now: Date = new Date()): TlvItem[] {
    const anchorDer = s.items.get(Item.MASA_TRUST_ANCHOR);
    if (!anchorDer) throw new Refusal(DeviceStatus.BAD_STATE, 'no MASA trust anchor installed');
    const voucherBytes = req.required(Tag.VOUCHER, 'VOUCHER');
    const nonce = s.voucherNonce;
    if (!nonce) throw new Refusal(DeviceStatus.BAD_STATE, 'no voucher-request outstanding: ask BUILD_VOUCHER_REQUEST first');

    let cms: ParsedVoucherCms;
    try {
      cms = parseVoucherCms(voucherBytes);
    } catch (err) {
      throw failed(`voucher is not a CMS SignedData: ${err instanceof VoucherCmsError ? err.message : 'unreadable'}`);
    }
    // The MASA carries its signing certificate; a MASA that signs with the anchor's own key may leave it out.
    const signerDer = cms.signerCertificate ?? (cms.certificates.length === 0 ? anchorDer : undefined);
    if (!signerDer) throw failed('voucher carries no signer certificate');
    const signer = parseCertificate(signerDer);
    if (!signer) throw failed('voucher signer certificate is not a DER certificate');

    // The signer is the trust anchor itself, or a certificate the anchor signed.
    if (!signerDer.equals(anchorDer)) {
      const anchor = parseCertificate(anchorDer);
      const anchorKey = anchor ? publicKey(spkiOf(anchor)) : undefined;
      if (!anchorKey) throw failed('the installed MASA trust anchor has no usable public key');
      if (!signedBy(signer, anchorKey)) throw failed('voucher not signed by the MASA trust anchor');
    }
    const problem = voucherCmsSignatureProblem(cms, signerDer);
    if (problem) throw failed(`voucher signature does not verify: ${problem}`);

    const v = voucherBody(cms, VOUCHER_KEY);
    if (!v) throw failed(`voucher payload has no ${VOUCHER_KEY} object`);
    if (typeof v.assertion !== 'string' || !ASSERTIONS.includes(v.assertion)) throw failed('voucher has no valid assertion');
    const serial = deviceSerial(s);
    if (serial === undefined || v['serial-number'] !== serial) throw failed('voucher serial-number does not match this device');
    if (v.nonce !== nonce.toString('base64')) throw failed('voucher nonce does not match');
    if (typeof v['pinned-domain-cert'] !== 'string' || v['pinned-domain-cert'].length === 0) throw failed('voucher has no pinned-domain-cert');
    if (v['expires-on'] !== undefined) {
      const expires = typeof v['expires-on'] === 'string' ? Date.parse(v['expires-on']) : NaN;
      if (Number.isNaN(expires)) throw failed('voucher expires-on is not a date');
      if (expires < now.getTime()) throw failed('voucher has expired');
    }
    s.voucherNonce = undefined; // a nonce is good for one voucher
    return [];
  }
}
