/**
 * The simulated secure-element vendor's CA: a software P-256 key and a self-signed certificate,
 * created once under the vendor folder (or kept in memory). The vendor certifies each SE key it
 * provisions "at the SE factory", before the device exists (method 4).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, type Name } from '@peculiar/asn1-x509';
import {
  OID_COMMON_NAME,
  OID_ORGANIZATION,
  OID_SERIAL_NUMBER,
  buildVendorCertificate,
  caExtensions,
  endEntityExtensions,
  printableName,
} from './vendor-cert-builder';

export const SE_VENDOR_CA_KEY_FILE = 'se-vendor-ca-key.pem';
export const SE_VENDOR_CA_CERT_FILE = 'se-vendor-ca.pem';
const VENDOR_ORGANIZATION = 'Simulated SE Vendor';

function pem(der: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

function writeAtomically(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

export class SeVendorCa {
  private constructor(
    private readonly key: KeyObject,
    /** The vendor CA's self-signed certificate, DER. */
    readonly certificate: Buffer,
  ) {}

  get spki(): Buffer {
    return createPublicKey(this.key).export({ format: 'der', type: 'spki' });
  }

  get name(): Name {
    return AsnConvert.parse(this.certificate, Certificate).tbsCertificate.subject;
  }

  private static create(): SeVendorCa {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const name = printableName([
      [OID_ORGANIZATION, VENDOR_ORGANIZATION],
      [OID_COMMON_NAME, `${VENDOR_ORGANIZATION} CA`],
    ]);
    const certificate = buildVendorCertificate({ issuer: name, subject: name, subjectSpki: spki, extensions: caExtensions(spki), signingKey: privateKey });
    return new SeVendorCa(privateKey, certificate);
  }

  static inMemory(): SeVendorCa {
    return SeVendorCa.create();
  }

  /** Load the CA from `dir`, or create it there (key PKCS#8 PEM, mode 0600; certificate PEM). */
  static openOrCreate(dir: string): SeVendorCa {
    const keyPath = join(dir, SE_VENDOR_CA_KEY_FILE);
    const certPath = join(dir, SE_VENDOR_CA_CERT_FILE);
    if (existsSync(certPath) && existsSync(keyPath)) {
      const key = createPrivateKey(readFileSync(keyPath, 'utf8'));
      const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(readFileSync(certPath, 'utf8'));
      if (!m) throw new Error(`${certPath} holds no certificate`);
      const certificate = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
      const ca = new SeVendorCa(key, certificate);
      const certSpki = Buffer.from(AsnConvert.serialize(AsnConvert.parse(certificate, Certificate).tbsCertificate.subjectPublicKeyInfo));
      if (!certSpki.equals(ca.spki)) throw new Error(`the SE vendor CA key in ${dir} does not match its certificate`);
      return ca;
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca = SeVendorCa.create();
    writeAtomically(keyPath, ca.key.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
    writeAtomically(certPath, pem(ca.certificate, 'CERTIFICATE'), 0o644);
    return ca;
  }

  /** The vendor certificate for an SE key: subject CN = serialNumber = the SE serial. */
  issueSeCertificate(seSerial: string, seSpki: Buffer): Buffer {
    const subject = printableName([
      [OID_COMMON_NAME, seSerial],
      [OID_SERIAL_NUMBER, seSerial],
    ]);
    return buildVendorCertificate({ issuer: this.name, subject, subjectSpki: seSpki, extensions: endEntityExtensions(seSpki, this.spki), signingKey: this.key });
  }
}
