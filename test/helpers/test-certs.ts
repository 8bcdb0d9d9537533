/**
 * Small software PKI for tests that need certificates the device checks: an IDevID for a birth
 * key, a MASA CA and its voucher-signing certificate. Keys are node KeyObjects; certificates are
 * built with the station's x509-builder (tests may use it; the simulator may not).
 */
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, KeyUsage, KeyUsageFlags, id_ce_basicConstraints, id_ce_keyUsage } from '@peculiar/asn1-x509';
import type { Signer } from '../../src/core/ports/signer';
import {
  NO_EXPIRY,
  OID_COMMON_NAME,
  OID_SERIAL_NUMBER,
  akiExtension,
  buildCertificate,
  buildName,
  extension,
  keyIdentifierOf,
  randomCertificateSerial,
  skiExtension,
} from '../../src/hsm/ca/x509-builder';

export interface SoftwareCa {
  name: string;
  key: KeyObject;
  spki: Buffer;
  certificate: Buffer;
}

export function softwareSigner(key: KeyObject, spki: Buffer): Signer {
  return { algorithm: 'ecdsa-p256-sha256', publicKeySpki: spki, sign: async (data) => nodeSign('sha256', data, { key, dsaEncoding: 'der' }) };
}

export function newKeyPair(): { key: KeyObject; spki: Buffer } {
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { key: pair.privateKey, spki: pair.publicKey.export({ format: 'der', type: 'spki' }) };
}

export async function makeSoftwareCa(commonName: string): Promise<SoftwareCa> {
  const { key, spki } = newKeyPair();
  const name = buildName([{ oid: OID_COMMON_NAME, value: commonName }]);
  const certificate = await buildCertificate(
    {
      serialNumber: randomCertificateSerial(),
      issuer: name,
      subject: name,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: NO_EXPIRY,
      subjectPublicKeySpki: spki,
      extensions: [
        extension(id_ce_basicConstraints, true, AsnConvert.serialize(new BasicConstraints({ cA: true }))),
        extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign))),
        skiExtension(spki),
      ],
    },
    softwareSigner(key, spki),
  );
  return { name: commonName, key, spki, certificate };
}

/** An end-entity certificate (keyUsage digitalSignature) for `spki`, optionally with serialNumber. */
export async function issueEndEntity(ca: SoftwareCa, spki: Buffer, subject: { cn: string; serial?: string }): Promise<Buffer> {
  const entries = [{ oid: OID_COMMON_NAME, value: subject.cn }];
  if (subject.serial !== undefined) entries.push({ oid: OID_SERIAL_NUMBER, value: subject.serial });
  return buildCertificate(
    {
      serialNumber: randomCertificateSerial(),
      issuer: buildName([{ oid: OID_COMMON_NAME, value: ca.name }]),
      subject: buildName(entries),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: NO_EXPIRY,
      subjectPublicKeySpki: spki,
      extensions: [
        extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.digitalSignature))),
        skiExtension(spki),
        akiExtension(keyIdentifierOf(ca.spki)),
      ],
    },
    softwareSigner(ca.key, ca.spki),
  );
}

/** A MASA: its CA (the trust anchor a device gets at the factory) and a voucher-signing key + certificate. */
export async function makeMasa(): Promise<{ ca: SoftwareCa; signingKey: KeyObject; signingCert: Buffer }> {
  const ca = await makeSoftwareCa('Test MASA CA');
  const { key, spki } = newKeyPair();
  const signingCert = await issueEndEntity(ca, spki, { cn: 'Test MASA voucher signer' });
  return { ca, signingKey: key, signingCert };
}

export function derSign(key: KeyObject): (data: Buffer) => Buffer {
  return (data) => nodeSign('sha256', data, { key, dsaEncoding: 'der' });
}
