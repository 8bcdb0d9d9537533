/**
 * The declarative IEEE 802.1AR IDevID profile (contracts.md §7): subject, MASA URL (RFC 8995
 * id-pe 32), hardwareModuleName (RFC 4108 otherName in the subjectAltName), SKI/AKI,
 * keyUsage digitalSignature (critical), no basicConstraints CA, and 99991231235959Z expiry
 * unless the product asks for one. Each part is switched by the product profile.
 */
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  OtherName,
  SubjectAlternativeName,
  id_ce_authorityKeyIdentifier,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  type Extension,
  type Name,
} from '@peculiar/asn1-x509';
import { AsnProp, AsnPropTypes } from '@peculiar/asn1-schema';
import type { IdevidProfile } from '../../core/config';
import {
  NO_EXPIRY,
  OID_COMMON_NAME,
  OID_ORGANIZATION,
  OID_ORGANIZATIONAL_UNIT,
  OID_SERIAL_NUMBER,
  akiExtension,
  buildName,
  derIa5String,
  extension,
  skiExtension,
  type NameEntry,
} from './x509-builder';

/** id-pe-masa-url, RFC 8995 section 2.3.2. */
export const OID_MASA_URL = '1.3.6.1.5.5.7.1.32';
/** id-on-hardwareModuleName, RFC 4108 section 5. */
export const OID_HARDWARE_MODULE_NAME = '1.3.6.1.5.5.7.8.4';

/** HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING } */
export class HardwareModuleName {
  @AsnProp({ type: AsnPropTypes.ObjectIdentifier })
  hwType = '';

  @AsnProp({ type: OctetString })
  hwSerialNum = new OctetString();

  constructor(params: Partial<HardwareModuleName> = {}) {
    Object.assign(this, params);
  }
}

export interface IdevidSubjectInput {
  serial: string;
  model: string;
}

export function idevidSubject(profile: IdevidProfile, input: IdevidSubjectInput): Name {
  const entries: NameEntry[] = [{ oid: OID_ORGANIZATION, value: profile.organization }];
  if (profile.organizationalUnit) entries.push({ oid: OID_ORGANIZATIONAL_UNIT, value: profile.organizationalUnit });
  if (profile.commonName) {
    entries.push({ oid: OID_COMMON_NAME, value: profile.commonName.replaceAll('{model}', () => input.model).replaceAll('{serial}', () => input.serial) });
  }
  if (profile.serialNumberInSubject) entries.push({ oid: OID_SERIAL_NUMBER, value: input.serial });
  return buildName(entries);
}

export function idevidNotAfter(profile: IdevidProfile, notBefore: Date): Date {
  if (profile.validityDays === null) return NO_EXPIRY;
  return new Date(notBefore.getTime() + profile.validityDays * 86_400_000);
}

/**
 * The extensions this profile issues, by OID, in the order idevidExtensions writes them (the
 * order of fixtures/certs/kat/make-kat.sh's openssl section: SKI, AKI, keyUsage, SAN, MASA URL).
 */
export function idevidExtensionOids(profile: IdevidProfile): string[] {
  const oids: string[] = [];
  if (profile.subjectKeyIdentifier) oids.push(id_ce_subjectKeyIdentifier);
  if (profile.authorityKeyIdentifier) oids.push(id_ce_authorityKeyIdentifier);
  oids.push(id_ce_keyUsage);
  if (profile.hardwareModuleName) oids.push(id_ce_subjectAltName);
  if (profile.masaUrl) oids.push(OID_MASA_URL);
  return oids;
}

export function idevidExtensions(profile: IdevidProfile, opts: { spki: Buffer; issuerKeyId: Buffer; serial: string }): Extension[] {
  const exts: Extension[] = [];
  if (profile.subjectKeyIdentifier) exts.push(skiExtension(opts.spki));
  if (profile.authorityKeyIdentifier) exts.push(akiExtension(opts.issuerKeyId));
  exts.push(extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.digitalSignature))));
  if (profile.hardwareModuleName) {
    const hmn = new HardwareModuleName({
      hwType: profile.hardwareModuleName.hwType,
      hwSerialNum: new OctetString(Buffer.from(opts.serial, 'utf8')),
    });
    const san = new SubjectAlternativeName([
      new GeneralName({ otherName: new OtherName({ typeId: OID_HARDWARE_MODULE_NAME, value: AsnConvert.serialize(hmn) }) }),
    ]);
    exts.push(extension(id_ce_subjectAltName, false, AsnConvert.serialize(san)));
  }
  if (profile.masaUrl) {
    exts.push(extension(OID_MASA_URL, false, derIa5String(profile.masaUrl)));
  }
  return exts;
}
