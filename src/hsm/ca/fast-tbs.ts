/**
 * The hot-path TBSCertificate encoder for IDevIDs.
 *
 * Why DER is written by hand here (design/pitfalls.md 14): building the same TBSCertificate
 * through @peculiar/asn1-schema's object graph costs milliseconds per certificate, while the
 * HSM signs in ~60 µs. Everything that is constant for one (profile, issuer) pair — version,
 * signature algorithm, issuer Name, AKI, keyUsage, MASA URL, the organization/OU part of the
 * subject — is serialized ONCE by the general library (x509-builder / idevid-profile) and kept
 * as bytes; per certificate only the variable parts (serial, validity, subject serial/CN, SPKI,
 * SKI, hardwareModuleName hwSerialNum) are spliced in with the small length encoder below.
 *
 * The general builder (buildCertificate) stays the reference: the known-answer test uses it,
 * test/unit/hsm/fast-issuer.property.test.ts checks these bytes against @peculiar/x509 for random
 * serials, keys and every profile switch, and anything outside the shapes handled here (a
 * non-canonical serial or SPKI, a non-PrintableString subject value, fractional seconds in a
 * GeneralizedTime) returns undefined so that the caller falls back to the general builder.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, KeyUsage, KeyUsageFlags, id_ce_keyUsage } from '@peculiar/asn1-x509';
import type { IdevidProfile } from '../../core/config';
import { OID_MASA_URL } from './idevid-profile';
import { OID_ECDSA_WITH_SHA256, akiExtension, derIa5String, extension } from './x509-builder';
import { tlv } from './der';


const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** The canonical uncompressed P-256 SPKI header (what checkCsr hands the issuer). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

const OID_CN = Buffer.from('0603550403', 'hex');
const OID_SN = Buffer.from('0603550405', 'hex');
/** Extension { id-ce-subjectKeyIdentifier, OCTET STRING { OCTET STRING (20) } } header. */
const SKI_PREFIX = Buffer.from('301d0603551d0e04160414', 'hex');
const OID_SAN = Buffer.from('0603551d11', 'hex');
/** id-on-hardwareModuleName 1.3.6.1.5.5.7.8.4 */
const OID_HMN = Buffer.from('06082b06010505070804', 'hex');

function printableRdn(oidTlv: Buffer, value: string): Buffer {
  return tlv(0x31, tlv(0x30, oidTlv, tlv(0x13, Buffer.from(value, 'latin1'))));
}

function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const out: number[] = [];
  const push = (v: bigint) => {
    const bytes: number[] = [Number(v & 0x7fn)];
    v >>= 7n;
    while (v > 0n) {
      bytes.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(...bytes);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(0x06, Buffer.from(out));
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime after; undefined when not encodable here. */
function derTime(d: Date): Buffer | undefined {
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) return undefined;
  const rest = pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds()) + 'Z';
  if (y < 2050) return tlv(0x17, Buffer.from(pad2(y % 100) + rest, 'ascii'));
  // The general library writes fractional seconds in a GeneralizedTime; leave those to it.
  if (d.getUTCMilliseconds() !== 0) return undefined;
  return tlv(0x18, Buffer.from(String(y) + rest, 'ascii'));
}

export interface FastTbsInput {
  serialNumber: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  serial: string;
  model: string;
}

/** The per-(profile, issuer) constant parts, serialized once by the general library. */
export class FastTbsTemplate {
  private readonly head: Buffer;
  private readonly subjectFixed: Buffer;
  private readonly aki: Buffer | undefined;
  private readonly keyUsage: Buffer;
  private readonly masa: Buffer | undefined;
  private readonly hwType: Buffer | undefined;

  constructor(
    readonly profile: IdevidProfile,
    issuerNameDer: Buffer,
    issuerKeyId: Buffer,
  ) {
    const sigAlg = Buffer.from(AsnConvert.serialize(new AlgorithmIdentifier({ algorithm: OID_ECDSA_WITH_SHA256 })));
    // version [0] EXPLICIT INTEGER 2 is written per certificate with the serial; head = sigAlg + issuer.
    this.head = Buffer.concat([sigAlg, issuerNameDer]);
    const fixed: Buffer[] = [];
    if (!PRINTABLE.test(profile.organization)) throw new Error('organization is not a PrintableString');
    fixed.push(printableRdn(Buffer.from('06035504' + '0a', 'hex'), profile.organization));
    if (profile.organizationalUnit) {
      if (!PRINTABLE.test(profile.organizationalUnit)) throw new Error('organizationalUnit is not a PrintableString');
      fixed.push(printableRdn(Buffer.from('06035504' + '0b', 'hex'), profile.organizationalUnit));
    }
    this.subjectFixed = Buffer.concat(fixed);
    this.aki = profile.authorityKeyIdentifier ? Buffer.from(AsnConvert.serialize(akiExtension(issuerKeyId))) : undefined;
    this.keyUsage = Buffer.from(AsnConvert.serialize(extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.digitalSignature)))));
    this.masa = profile.masaUrl ? Buffer.from(AsnConvert.serialize(extension(OID_MASA_URL, false, derIa5String(profile.masaUrl)))) : undefined;
    this.hwType = profile.hardwareModuleName ? encodeOid(profile.hardwareModuleName.hwType) : undefined;
  }

  /** The DER TBSCertificate, or undefined when the input needs the general builder. */
  encode(input: FastTbsInput): Buffer | undefined {
    const sn = input.serialNumber;
    // A positive, minimally encoded INTEGER of 1..20 octets; anything else goes the general way.
    if (sn.length === 0 || sn.length > 20 || (sn[0]! & 0x80) !== 0 || (sn.length > 1 && sn[0] === 0 && (sn[1]! & 0x80) === 0)) return undefined;
    if (input.spki.length !== 91 || input.spki.compare(P256_SPKI_PREFIX, 0, P256_SPKI_PREFIX.length, 0, P256_SPKI_PREFIX.length) !== 0) return undefined;
    const nb = derTime(input.notBefore);
    const na = derTime(input.notAfter);
    if (!nb || !na) return undefined;
    const p = this.profile;
    const subjectParts: Buffer[] = [this.subjectFixed];
    if (p.commonName) {
      const cn = p.commonName.replaceAll('{model}', () => input.model).replaceAll('{serial}', () => input.serial);
      if (!PRINTABLE.test(cn)) return undefined;
      subjectParts.push(printableRdn(OID_CN, cn));
    }
    if (p.serialNumberInSubject) {
      if (!PRINTABLE.test(input.serial)) return undefined;
      subjectParts.push(printableRdn(OID_SN, input.serial));
    }
    const exts: Buffer[] = [];
    if (p.subjectKeyIdentifier) {
      // RFC 5280 method 1: SHA-1 of the BIT STRING contents (after the unused-bits octet).
      exts.push(SKI_PREFIX, createHash('sha1').update(input.spki.subarray(P256_SPKI_PREFIX.length)).digest());
    }
    if (this.aki) exts.push(this.aki);
    exts.push(this.keyUsage);
    if (this.hwType) {
      const hmn = tlv(0x30, this.hwType, tlv(0x04, Buffer.from(input.serial, 'utf8')));
      const san = tlv(0x30, tlv(0xa0, OID_HMN, tlv(0xa0, hmn)));
      exts.push(tlv(0x30, OID_SAN, tlv(0x04, san)));
    }
    if (this.masa) exts.push(this.masa);
    return tlv(
      0x30,
      Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]),
      tlv(0x02, sn),
      this.head,
      tlv(0x30, nb, na),
      tlv(0x30, ...subjectParts),
      input.spki,
      tlv(0xa3, tlv(0x30, ...exts)),
    );
  }
}

/** Certificate ::= SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature }. */
const SIG_ALG = Buffer.from('300a06082a8648ce3d040302', 'hex');
export function assembleCertificate(tbs: Buffer, signature: Buffer): Buffer {
  return tlv(0x30, tbs, SIG_ALG, tlv(0x03, Buffer.from([0]), signature));
}
