/**
 * Lints any X.509 certificate (ours or another tool's) against a product's IdevidProfile
 * (contracts.md §7, docs/idevid-profile.md) and reports every fault with a stable code.
 *
 * Pure over DER. It reads the raw encoding with a small DER walker instead of an ASN.1 library,
 * because the faults that matter here are exactly what a library normalises away: the string
 * tag of the MASA URL (IA5String, not UTF8String), the tag of hwSerialNum (OCTET STRING), the
 * time type of notAfter (GeneralizedTime for 99991231235959Z), and surname (2.5.4.4, what
 * "SN=" means) against serialNumber (2.5.4.5). It is also the issuer's own check of every
 * certificate it signs, so it must stay fast: one pass over the bytes, no crypto.
 */
import type { IdevidProfile } from '../../core/config';
import { fromPem } from './x509-builder';
import { DerError, TAG, derChildren, readDerExact, tagName, type DerNode } from './der';

// ---------------------------------------------------------------------------------------------
// Codes

/** Every lint code, with what it means. Codes are stable: scripts and docs switch on them. */
export const LINT_CODES = {
  LINT_DER_INVALID: 'the bytes are not a DER X.509 certificate',
  LINT_VERSION: 'not an X.509 v3 certificate',
  LINT_SIGNATURE_ALG: 'not signed with ecdsa-with-SHA256 (without parameters), or the two signature algorithm fields differ',
  LINT_CERT_SERIAL_NOT_POSITIVE: 'the certificate serial number is zero or negative',
  LINT_CERT_SERIAL_TOO_SHORT: 'the certificate serial number has fewer than 64 bits of value',
  LINT_CERT_SERIAL_TOO_LONG: 'the certificate serial number is longer than 20 octets',
  LINT_TIME_ENCODING: 'a validity time is not in the RFC 5280 form (UTCTime before 2050, GeneralizedTime from 2050, seconds, Z)',
  LINT_EXPIRY_NOT_GENERALIZED: 'the profile wants no expiry (notAfter 99991231235959Z), which must be a GeneralizedTime; the certificate has a UTCTime',
  LINT_EXPIRY_WRONG: 'notAfter is not what the profile asks for (99991231235959Z, or notBefore + validityDays)',
  LINT_SUBJECT_O_MISMATCH: 'subject organizationName (2.5.4.10) missing or not the profile\'s',
  LINT_SUBJECT_OU_MISMATCH: 'subject organizationalUnitName (2.5.4.11) missing, unexpected, or not the profile\'s',
  LINT_SUBJECT_CN_MISMATCH: 'subject commonName (2.5.4.3) missing, unexpected, or not matching the profile\'s template',
  LINT_SERIAL_NUMBER_ATTR_MISSING: 'subject serialNumber (2.5.4.5) missing (note: "SN=" is surname, 2.5.4.4)',
  LINT_SERIAL_NUMBER_NOT_PRINTABLE: 'subject serialNumber is not a PrintableString, or holds characters outside its set',
  LINT_SERIAL_NUMBER_TOO_LONG: 'subject serialNumber is longer than 64 characters',
  LINT_WRONG_CURVE: 'the subject key is an EC key on another curve than P-256',
  LINT_KEY_NOT_EC: 'the subject key is not an EC key (id-ecPublicKey)',
  LINT_KEY_INVALID: 'the subject EC point is not a 65-byte uncompressed or 33-byte compressed P-256 point',
  LINT_EXTENSION_DUPLICATE: 'an extension appears more than once (RFC 5280 4.2)',
  LINT_EXTENSION_UNEXPECTED: 'an extension the profile does not issue (warning)',
  LINT_CA_TRUE: 'basicConstraints says cA TRUE: an IDevID is not a CA',
  LINT_KEY_USAGE: 'keyUsage missing, not critical, without digitalSignature, or with keyCertSign/cRLSign',
  LINT_KEY_USAGE_EXTRA: 'keyUsage has bits besides digitalSignature (warning)',
  LINT_SKI_MISSING: 'subjectKeyIdentifier missing',
  LINT_SKI_CRITICAL: 'subjectKeyIdentifier marked critical (RFC 5280: MUST NOT)',
  LINT_AKI_MISSING: 'authorityKeyIdentifier missing',
  LINT_AKI_CRITICAL: 'authorityKeyIdentifier marked critical (RFC 5280: MUST NOT)',
  LINT_AKI_NO_KEY_ID: 'authorityKeyIdentifier without a keyIdentifier',
  LINT_HW_MODULE_NAME_MISSING: 'no hardwareModuleName otherName (1.3.6.1.5.5.7.8.4) in subjectAltName',
  LINT_HW_TYPE_MISMATCH: 'hardwareModuleName hwType is not the profile\'s',
  LINT_HWSERIAL_NOT_OCTET_STRING: 'hardwareModuleName hwSerialNum is not an OCTET STRING (e.g. a UTF8String)',
  LINT_HWSERIAL_MISMATCH: 'hardwareModuleName hwSerialNum differs from the subject serialNumber',
  LINT_MASA_URL_MISSING: 'MASA URL extension (1.3.6.1.5.5.7.1.32) missing',
  LINT_MASA_URL_CRITICAL: 'MASA URL extension marked critical (RFC 8995: non-critical)',
  LINT_MASA_URL_NOT_IA5: 'MASA URL is not an IA5String (e.g. a UTF8String)',
  LINT_MASA_URL_WRONG: 'MASA URL differs from the profile\'s',
} as const;

export type LintCode = keyof typeof LINT_CODES;

export interface LintFinding {
  code: LintCode;
  /** An error is a fault (exit 1); a warning is reported but the certificate still lints clean. */
  severity: 'error' | 'warning';
  message: string;
}

export interface LintContext {
  /** The product's model: replaces "{model}" in the profile's commonName template. */
  model?: string;
}

function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`${what} is missing`);
  if (node.tag !== tag) throw new DerError(`${what} is a ${tagName(node.tag)}, expected ${tagName(tag)}`);
  return node;
}

export function decodeOid(value: Buffer): string {
  if (value.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let n = 0;
  let started = false;
  for (const b of value) {
    if (!started && b === 0x80) throw new DerError('non-minimal OBJECT IDENTIFIER arc');
    started = true;
    n = n * 128 + (b & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER) throw new DerError('OBJECT IDENTIFIER arc too large');
    if ((b & 0x80) === 0) {
      arcs.push(n);
      n = 0;
      started = false;
    }
  }
  if (started) throw new DerError('truncated OBJECT IDENTIFIER');
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** The text of a directory string or IA5String, whatever its tag. */
export function decodeString(node: DerNode): string {
  switch (node.tag) {
    case TAG.UTF8_STRING:
      return node.value.toString('utf8');
    case TAG.BMP_STRING: {
      const swapped = Buffer.from(node.value);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case TAG.UNIVERSAL_STRING: {
      let s = '';
      for (let i = 0; i + 4 <= node.value.length; i += 4) s += String.fromCodePoint(node.value.readUInt32BE(i));
      return s;
    }
    default:
      return node.value.toString('latin1');
  }
}

// ---------------------------------------------------------------------------------------------
// OIDs and constants

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
  commonName: '2.5.4.3',
  surname: '2.5.4.4',
  serialNumber: '2.5.4.5',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  masaUrl: '1.3.6.1.5.5.7.1.32',
  hardwareModuleName: '1.3.6.1.5.5.7.8.4',
} as const;

const CURVE_NAMES: Record<string, string> = {
  [OID.prime256v1]: 'P-256',
  [OID.secp384r1]: 'P-384',
  [OID.secp521r1]: 'P-521',
  '1.3.132.0.10': 'secp256k1',
  '1.3.36.3.3.2.8.1.1.7': 'brainpoolP256r1',
};

const EXTENSION_NAMES: Record<string, string> = {
  [OID.subjectKeyIdentifier]: 'subjectKeyIdentifier',
  [OID.keyUsage]: 'keyUsage',
  [OID.subjectAltName]: 'subjectAltName',
  [OID.basicConstraints]: 'basicConstraints',
  [OID.authorityKeyIdentifier]: 'authorityKeyIdentifier',
  [OID.masaUrl]: 'MASA URL',
  '2.5.29.37': 'extendedKeyUsage',
  '2.5.29.31': 'cRLDistributionPoints',
  '2.5.29.32': 'certificatePolicies',
  '2.5.29.18': 'issuerAltName',
  '2.5.29.30': 'nameConstraints',
  '1.3.6.1.5.5.7.1.1': 'authorityInfoAccess',
  '2.16.840.1.113730.1.13': 'nsComment',
};

export function extensionName(oid: string): string {
  return EXTENSION_NAMES[oid] ? `${EXTENSION_NAMES[oid]} (${oid})` : oid;
}

/** IEEE 802.1AR: a device certificate without a well-defined expiration date. */
export const NO_EXPIRY_GENERALIZED_TIME = '99991231235959Z';

const PRINTABLE_CHARS = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

// KeyUsage bits (RFC 5280 4.2.1.3), as positions in the BIT STRING.
const KU_BITS = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'] as const;

// ---------------------------------------------------------------------------------------------
// Input

/** The certificates in a file: every PEM CERTIFICATE block, or the whole file as one DER certificate. */
export function certificatesFromFile(bytes: Buffer): Buffer[] {
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN ')) return fromPem(text);
  return [bytes];
}

// ---------------------------------------------------------------------------------------------
// The lint

interface Attribute {
  oid: string;
  node: DerNode;
}

interface ParsedExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

interface ParsedTime {
  tag: number;
  text: string;
  date: Date | undefined;
}

function parseTime(node: DerNode): ParsedTime {
  const text = node.value.toString('latin1');
  let date: Date | undefined;
  const m =
    node.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : node.tag === TAG.GENERALIZED_TIME ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (m) {
    let year = Number(m[1]);
    if (node.tag === TAG.UTC_TIME) year += year >= 50 ? 1900 : 2000;
    const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
    // 9999 is a valid year for Date; reject impossible calendar values (month 13, day 32...).
    if (!Number.isNaN(d.getTime()) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3])) date = d;
  }
  return { tag: node.tag, text, date };
}

class Findings {
  readonly list: LintFinding[] = [];
  error(code: LintCode, message: string): void {
    this.list.push({ code, severity: 'error', message });
  }
  warning(code: LintCode, message: string): void {
    this.list.push({ code, severity: 'warning', message });
  }
}

function parseName(node: DerNode, what: string): Attribute[] {
  expectTag(node, TAG.SEQUENCE, what);
  const out: Attribute[] = [];
  for (const rdn of derChildren(node)) {
    expectTag(rdn, TAG.SET, `an RDN of the ${what}`);
    for (const atv of derChildren(rdn)) {
      const [type, value] = derChildren(expectTag(atv, TAG.SEQUENCE, `an attribute of the ${what}`));
      if (!value) throw new DerError(`an attribute of the ${what} has no value`);
      out.push({ oid: decodeOid(expectTag(type, TAG.OID, `an attribute type of the ${what}`).value), node: value });
    }
  }
  return out;
}

function parseAlgorithm(node: DerNode | undefined, what: string): { oid: string; hasParams: boolean } {
  const parts = derChildren(expectTag(node, TAG.SEQUENCE, what));
  return { oid: decodeOid(expectTag(parts[0], TAG.OID, `${what} algorithm`).value), hasParams: parts.length > 1 };
}

function parseExtensions(node: DerNode): ParsedExtension[] {
  const seq = derChildren(node);
  if (seq.length !== 1) throw new DerError('extensions [3] must hold one SEQUENCE');
  return derChildren(expectTag(seq[0], TAG.SEQUENCE, 'extensions')).map((ext) => {
    const parts = derChildren(expectTag(ext, TAG.SEQUENCE, 'an extension'));
    const oid = decodeOid(expectTag(parts[0], TAG.OID, 'an extension id').value);
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === TAG.BOOLEAN) {
      critical = parts[i]!.value.length === 1 && parts[i]!.value[0] !== 0;
      i++;
    }
    const value = expectTag(parts[i], TAG.OCTET_STRING, `the value of extension ${oid}`).value;
    return { oid, critical, value };
  });
}

function bitLength(magnitude: Buffer): number {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  if (i === magnitude.length) return 0;
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]!));
}

/** The profile's commonName template as a regular expression over the actual CN. */
function commonNamePattern(template: string, model: string | undefined, serial: string | undefined): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const parts = template.split(/(\{model\}|\{serial\})/);
  const source = parts
    .map((p) => (p === '{model}' ? (model !== undefined ? escape(model) : '.+') : p === '{serial}' ? (serial !== undefined ? escape(serial) : '.+') : escape(p)))
    .join('');
  return new RegExp(`^${source}$`, 's');
}

function checkValidity(validity: DerNode, profile: IdevidProfile, f: Findings): void {
  const [nbNode, naNode] = derChildren(expectTag(validity, TAG.SEQUENCE, 'validity'));
  for (const [node, what] of [
    [nbNode, 'notBefore'],
    [naNode, 'notAfter'],
  ] as const) {
    if (!node || (node.tag !== TAG.UTC_TIME && node.tag !== TAG.GENERALIZED_TIME)) throw new DerError(`validity ${what} is not a time`);
  }
  const nb = parseTime(nbNode!);
  const na = parseTime(naNode!);
  const rfc5280 = (t: ParsedTime, what: string): void => {
    if (!t.date) {
      f.error('LINT_TIME_ENCODING', `${what} ${tagName(t.tag)} "${t.text}" is not YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ.`);
      return;
    }
    const wantTag = t.date.getUTCFullYear() < 2050 ? TAG.UTC_TIME : TAG.GENERALIZED_TIME;
    if (t.tag !== wantTag) f.error('LINT_TIME_ENCODING', `${what} ${t.text} is a ${tagName(t.tag)}; RFC 5280 wants a ${tagName(wantTag)} for the year ${t.date.getUTCFullYear()}.`);
  };
  rfc5280(nb, 'notBefore');
  if (profile.validityDays === null) {
    if (na.tag !== TAG.GENERALIZED_TIME) {
      f.error('LINT_EXPIRY_NOT_GENERALIZED', `notAfter is the ${tagName(na.tag)} ${na.text}; the profile wants no expiry: GeneralizedTime ${NO_EXPIRY_GENERALIZED_TIME} (IEEE 802.1AR).`);
    } else if (na.text !== NO_EXPIRY_GENERALIZED_TIME) {
      f.error('LINT_EXPIRY_WRONG', `notAfter is ${na.text}; the profile wants no expiry: ${NO_EXPIRY_GENERALIZED_TIME}.`);
    }
    return;
  }
  rfc5280(na, 'notAfter');
  if (nb.date && na.date) {
    const days = (na.date.getTime() - nb.date.getTime()) / 86_400_000;
    if (days !== profile.validityDays) f.error('LINT_EXPIRY_WRONG', `notAfter is ${days} days after notBefore; the profile wants ${profile.validityDays}.`);
  }
}

function checkSubject(attrs: Attribute[], profile: IdevidProfile, ctx: LintContext, f: Findings): string | undefined {
  const values = (oid: string) => attrs.filter((a) => a.oid === oid).map((a) => decodeString(a.node));
  const expectOne = (oid: string, code: LintCode, label: string, want: string | undefined, matches: (v: string) => boolean = (v) => v === want, shown = JSON.stringify(want)) => {
    const got = values(oid);
    if (want === undefined) {
      if (got.length > 0) f.error(code, `subject has ${label} ${JSON.stringify(got[0])}; the profile has none.`);
      return;
    }
    if (got.length === 0) f.error(code, `subject has no ${label}; the profile wants ${shown}.`);
    else if (got.length > 1) f.error(code, `subject has ${got.length} ${label} attributes; the profile wants one.`);
    else if (!matches(got[0]!)) f.error(code, `subject ${label} is ${JSON.stringify(got[0])}; the profile wants ${shown}.`);
  };

  expectOne(OID.organization, 'LINT_SUBJECT_O_MISMATCH', 'organizationName (O)', profile.organization);
  expectOne(OID.organizationalUnit, 'LINT_SUBJECT_OU_MISMATCH', 'organizationalUnitName (OU)', profile.organizationalUnit);

  const serialAttrs = attrs.filter((a) => a.oid === OID.serialNumber);
  let serial: string | undefined;
  if (serialAttrs.length > 0) serial = decodeString(serialAttrs[0]!.node);
  if (profile.serialNumberInSubject) {
    if (serialAttrs.length === 0) {
      const surname = values(OID.surname);
      f.error(
        'LINT_SERIAL_NUMBER_ATTR_MISSING',
        surname.length > 0
          ? `subject has no serialNumber (2.5.4.5), but a surname (2.5.4.4) ${JSON.stringify(surname[0])}: "SN=" means surname; use "serialNumber=" or the OID 2.5.4.5.`
          : 'subject has no serialNumber (2.5.4.5); RFC 8995 needs the device serial there.',
      );
    } else {
      if (serialAttrs.length > 1) f.error('LINT_SERIAL_NUMBER_ATTR_MISSING', `subject has ${serialAttrs.length} serialNumber attributes; an IDevID has exactly one.`);
      const node = serialAttrs[0]!.node;
      if (node.tag !== TAG.PRINTABLE_STRING) {
        f.error('LINT_SERIAL_NUMBER_NOT_PRINTABLE', `subject serialNumber is a ${tagName(node.tag)}; X.520 and contracts.md §7 want a PrintableString.`);
      } else if (!PRINTABLE_CHARS.test(serial!)) {
        f.error('LINT_SERIAL_NUMBER_NOT_PRINTABLE', `subject serialNumber ${JSON.stringify(serial)} holds characters outside the PrintableString set.`);
      }
      if (serial!.length > 64) f.error('LINT_SERIAL_NUMBER_TOO_LONG', `subject serialNumber is ${serial!.length} characters; at most 64.`);
    }
  }

  const cnTemplate = profile.commonName;
  if (cnTemplate === undefined) {
    expectOne(OID.commonName, 'LINT_SUBJECT_CN_MISMATCH', 'commonName (CN)', undefined);
  } else {
    const pattern = commonNamePattern(cnTemplate, ctx.model, serial);
    const expanded = ctx.model !== undefined ? cnTemplate.replaceAll('{model}', () => ctx.model!) : cnTemplate;
    const shown = expanded === cnTemplate ? JSON.stringify(cnTemplate) : `${JSON.stringify(expanded)} (template ${JSON.stringify(cnTemplate)})`;
    expectOne(OID.commonName, 'LINT_SUBJECT_CN_MISMATCH', 'commonName (CN)', cnTemplate, (v) => pattern.test(v), shown);
  }
  return serial;
}

function checkKey(spkiNode: DerNode | undefined, f: Findings): void {
  const [alg, key] = derChildren(expectTag(spkiNode, TAG.SEQUENCE, 'subjectPublicKeyInfo'));
  const algParts = derChildren(expectTag(alg, TAG.SEQUENCE, 'the key algorithm'));
  const keyAlg = decodeOid(expectTag(algParts[0], TAG.OID, 'the key algorithm').value);
  const bits = expectTag(key, TAG.BIT_STRING, 'subjectPublicKey');
  if (keyAlg !== OID.ecPublicKey) {
    f.error('LINT_KEY_NOT_EC', `the subject key algorithm is ${keyAlg}; an IDevID key is EC P-256 (id-ecPublicKey, prime256v1).`);
    return;
  }
  const params = algParts[1];
  if (!params || params.tag !== TAG.OID) {
    f.error('LINT_WRONG_CURVE', 'the EC key does not name its curve (namedCurve); P-256 (prime256v1) is required.');
    return;
  }
  const curve = decodeOid(params.value);
  if (curve !== OID.prime256v1) {
    f.error('LINT_WRONG_CURVE', `the subject key is on ${CURVE_NAMES[curve] ?? curve}; the profile needs P-256 (prime256v1).`);
    return;
  }
  const point = bits.value.subarray(1);
  const ok = bits.value[0] === 0 && ((point.length === 65 && point[0] === 4) || (point.length === 33 && (point[0] === 2 || point[0] === 3)));
  if (!ok) f.error('LINT_KEY_INVALID', `the subject key is not a P-256 point (${point.length} bytes, first 0x${(point[0] ?? 0).toString(16)}).`);
}

function checkSerial(node: DerNode, f: Findings): void {
  const v = node.value;
  if (v.length === 0) throw new DerError('empty certificate serial INTEGER');
  if ((v[0]! & 0x80) !== 0) {
    f.error('LINT_CERT_SERIAL_NOT_POSITIVE', 'the certificate serial number is negative (RFC 5280: a positive integer).');
    return;
  }
  const bits = bitLength(v);
  if (bits === 0) {
    f.error('LINT_CERT_SERIAL_NOT_POSITIVE', 'the certificate serial number is zero (RFC 5280: a positive integer).');
    return;
  }
  const magnitudeOctets = v[0] === 0 ? v.length - 1 : v.length;
  if (magnitudeOctets > 20) f.error('LINT_CERT_SERIAL_TOO_LONG', `the certificate serial number is ${magnitudeOctets} octets; RFC 5280 allows at most 20.`);
  if (bits < 64) f.error('LINT_CERT_SERIAL_TOO_SHORT', `the certificate serial number has ${bits} bits; at least 64 are expected (the station uses 127 random bits; CA/Browser Forum BR 7.1 asks for 64).`);
}

function checkExtensions(exts: ParsedExtension[], profile: IdevidProfile, subjectSerial: string | undefined, f: Findings): void {
  const seen = new Map<string, ParsedExtension>();
  for (const e of exts) {
    if (seen.has(e.oid)) f.error('LINT_EXTENSION_DUPLICATE', `extension ${extensionName(e.oid)} appears more than once.`);
    else seen.set(e.oid, e);
  }

  // basicConstraints: cA FALSE (or absent) is harmless and common; cA TRUE is a fault.
  const bc = seen.get(OID.basicConstraints);
  if (bc) {
    const parts = derChildren(expectTag(readDerExact(bc.value), TAG.SEQUENCE, 'basicConstraints'));
    const ca = parts[0]?.tag === TAG.BOOLEAN && parts[0].value[0] !== 0;
    if (ca) f.error('LINT_CA_TRUE', 'basicConstraints has cA TRUE: an IDevID is an end-entity certificate, never a CA.');
  }

  // keyUsage: critical, digitalSignature; never keyCertSign / cRLSign.
  const ku = seen.get(OID.keyUsage);
  if (!ku) {
    f.error('LINT_KEY_USAGE', 'keyUsage is missing; the profile wants keyUsage digitalSignature, critical.');
  } else {
    const bitsNode = expectTag(readDerExact(ku.value), TAG.BIT_STRING, 'keyUsage');
    const bytes = bitsNode.value.subarray(1);
    const totalBits = bytes.length * 8 - (bitsNode.value[0] ?? 0);
    const set = KU_BITS.filter((_, i) => i < totalBits && (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0);
    const names = set.length ? set.join(', ') : 'no bits';
    if (!ku.critical) f.error('LINT_KEY_USAGE', `keyUsage (${names}) is not critical; the profile wants it critical.`);
    if (!set.includes('digitalSignature')) f.error('LINT_KEY_USAGE', `keyUsage is ${names}; an IDevID needs digitalSignature (TLS client authentication, voucher-request signing).`);
    const caBits = set.filter((b) => b === 'keyCertSign' || b === 'cRLSign');
    if (caBits.length > 0) f.error('LINT_KEY_USAGE', `keyUsage has ${caBits.join(' and ')}: CA usages in a device certificate.`);
    const extra = set.filter((b) => b !== 'digitalSignature' && b !== 'keyCertSign' && b !== 'cRLSign');
    if (set.includes('digitalSignature') && extra.length > 0) f.warning('LINT_KEY_USAGE_EXTRA', `keyUsage also has ${extra.join(', ')}; the profile issues digitalSignature only.`);
  }

  const ski = seen.get(OID.subjectKeyIdentifier);
  if (profile.subjectKeyIdentifier && !ski) f.error('LINT_SKI_MISSING', 'subjectKeyIdentifier is missing; the profile issues it.');
  if (ski) {
    if (ski.critical) f.error('LINT_SKI_CRITICAL', 'subjectKeyIdentifier is marked critical; RFC 5280 says it MUST NOT be.');
    expectTag(readDerExact(ski.value), TAG.OCTET_STRING, 'subjectKeyIdentifier');
  }

  const aki = seen.get(OID.authorityKeyIdentifier);
  if (profile.authorityKeyIdentifier && !aki) f.error('LINT_AKI_MISSING', 'authorityKeyIdentifier is missing; the profile issues it (chain building needs it).');
  if (aki) {
    if (aki.critical) f.error('LINT_AKI_CRITICAL', 'authorityKeyIdentifier is marked critical; RFC 5280 says it MUST NOT be.');
    const parts = derChildren(expectTag(readDerExact(aki.value), TAG.SEQUENCE, 'authorityKeyIdentifier'));
    if (!parts.some((p) => p.tag === 0x80)) f.error('LINT_AKI_NO_KEY_ID', 'authorityKeyIdentifier has no keyIdentifier [0].');
  }

  // subjectAltName: hardwareModuleName otherName (RFC 4108).
  const san = seen.get(OID.subjectAltName);
  if (profile.hardwareModuleName) {
    const hmns: DerNode[] = [];
    if (san) {
      for (const gn of derChildren(expectTag(readDerExact(san.value), TAG.SEQUENCE, 'subjectAltName'))) {
        if (gn.tag !== 0xa0) continue; // otherName [0]
        const [typeId, explicit] = derChildren(gn);
        if (decodeOid(expectTag(typeId, TAG.OID, 'otherName type-id').value) !== OID.hardwareModuleName) continue;
        const inner = derChildren(expectTag(explicit, 0xa0, 'otherName value [0]'));
        hmns.push(expectTag(inner[0], TAG.SEQUENCE, 'hardwareModuleName'));
      }
    }
    if (hmns.length === 0) {
      f.error('LINT_HW_MODULE_NAME_MISSING', `no hardwareModuleName otherName (${OID.hardwareModuleName}) in ${san ? 'subjectAltName' : 'the certificate (no subjectAltName)'}; the profile issues one.`);
    } else {
      const [hwType, hwSerial] = derChildren(hmns[0]!);
      const type = decodeOid(expectTag(hwType, TAG.OID, 'hardwareModuleName hwType').value);
      if (type !== profile.hardwareModuleName.hwType) f.error('LINT_HW_TYPE_MISMATCH', `hardwareModuleName hwType is ${type}; the profile wants ${profile.hardwareModuleName.hwType}.`);
      if (!hwSerial) throw new DerError('hardwareModuleName has no hwSerialNum');
      if (hwSerial.tag !== TAG.OCTET_STRING) {
        f.error('LINT_HWSERIAL_NOT_OCTET_STRING', `hardwareModuleName hwSerialNum is a ${tagName(hwSerial.tag)}; RFC 4108 defines it as an OCTET STRING.`);
      } else if (subjectSerial !== undefined && !hwSerial.value.equals(Buffer.from(subjectSerial, 'utf8'))) {
        f.error('LINT_HWSERIAL_MISMATCH', `hardwareModuleName hwSerialNum is ${JSON.stringify(hwSerial.value.toString('latin1'))}; the subject serialNumber is ${JSON.stringify(subjectSerial)}.`);
      }
    }
  }

  // MASA URL (RFC 8995 2.3.2): non-critical IA5String.
  const masa = seen.get(OID.masaUrl);
  if (profile.masaUrl) {
    if (!masa) {
      f.error('LINT_MASA_URL_MISSING', `the MASA URL extension (${OID.masaUrl}) is missing; the profile wants ${profile.masaUrl}.`);
    } else {
      if (masa.critical) f.error('LINT_MASA_URL_CRITICAL', 'the MASA URL extension is marked critical; RFC 8995 makes it non-critical.');
      const node = readDerExact(masa.value);
      if (node.tag !== TAG.IA5_STRING) {
        f.error('LINT_MASA_URL_NOT_IA5', `the MASA URL is a ${tagName(node.tag)}; RFC 8995 defines it as an IA5String.`);
      } else if (node.value.toString('latin1') !== profile.masaUrl) {
        f.error('LINT_MASA_URL_WRONG', `the MASA URL is ${JSON.stringify(node.value.toString('latin1'))}; the profile wants ${profile.masaUrl}.`);
      }
    }
  }

  const issued = new Set<string>([OID.keyUsage, OID.basicConstraints]);
  if (profile.subjectKeyIdentifier) issued.add(OID.subjectKeyIdentifier);
  if (profile.authorityKeyIdentifier) issued.add(OID.authorityKeyIdentifier);
  if (profile.hardwareModuleName) issued.add(OID.subjectAltName);
  if (profile.masaUrl) issued.add(OID.masaUrl);
  for (const oid of seen.keys()) {
    if (!issued.has(oid)) f.warning('LINT_EXTENSION_UNEXPECTED', `extension ${extensionName(oid)}${seen.get(oid)!.critical ? ' (critical)' : ''} is not one the profile issues.`);
  }
}

/**
 * Every fault of `der` against `profile`; an empty list (or warnings only) means it lints clean.
 * Malformed DER gives one LINT_DER_INVALID finding and stops.
 */
export function lintIdevid(der: Uint8Array, profile: IdevidProfile, ctx: LintContext = {}): LintFinding[] {
  const f = new Findings();
  try {
    const cert = readDerExact(Buffer.from(der.buffer, der.byteOffset, der.byteLength));
    const [tbs, sigAlg, sigValue] = derChildren(expectTag(cert, TAG.SEQUENCE, 'Certificate'));
    expectTag(sigValue, TAG.BIT_STRING, 'signatureValue');
    const fields = derChildren(expectTag(tbs, TAG.SEQUENCE, 'tbsCertificate'));
    let i = 0;
    let version = 0;
    if (fields[i]?.tag === 0xa0) {
      const v = expectTag(derChildren(fields[i]!)[0], TAG.INTEGER, 'version');
      version = v.value.length === 1 ? v.value[0]! : -1;
      i++;
    }
    if (version !== 2) f.error('LINT_VERSION', `the certificate is version ${version + 1}; an IDevID is X.509 v3.`);
    checkSerial(expectTag(fields[i++], TAG.INTEGER, 'serialNumber'), f);
    const innerAlg = parseAlgorithm(fields[i++], 'tbsCertificate.signature');
    parseName(fields[i++]!, 'issuer');
    const validity = expectTag(fields[i++], TAG.SEQUENCE, 'validity');
    const subject = parseName(fields[i++]!, 'subject');
    const spki = fields[i++];
    let extensions: ParsedExtension[] | undefined;
    for (; i < fields.length; i++) {
      if (fields[i]!.tag === 0xa3) extensions = parseExtensions(fields[i]!);
    }

    const outerAlg = parseAlgorithm(sigAlg, 'signatureAlgorithm');
    if (outerAlg.oid !== OID.ecdsaWithSha256 || outerAlg.hasParams) {
      f.error('LINT_SIGNATURE_ALG', `the certificate is signed with ${outerAlg.oid}${outerAlg.hasParams ? ' with parameters' : ''}; the profile wants ecdsa-with-SHA256 (${OID.ecdsaWithSha256}) without parameters.`);
    } else if (innerAlg.oid !== outerAlg.oid || innerAlg.hasParams !== outerAlg.hasParams) {
      f.error('LINT_SIGNATURE_ALG', `tbsCertificate.signature (${innerAlg.oid}) differs from signatureAlgorithm (${outerAlg.oid}).`);
    }
    checkValidity(validity, profile, f);
    const serial = checkSubject(subject, profile, ctx, f);
    checkKey(spki, f);
    checkExtensions(extensions ?? [], profile, serial, f);
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
    return [{ code: 'LINT_DER_INVALID', severity: 'error', message: `not a DER X.509 certificate: ${err.message}.` }];
  }
  return f.list;
}

/** Errors only: what makes a certificate fail the lint. */
export function lintFaults(findings: readonly LintFinding[]): LintFinding[] {
  return findings.filter((x) => x.severity === 'error');
}
