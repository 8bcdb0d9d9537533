/**
 * The station's own PKI (docs/records-and-sync.md, docs/hsm.md "Station certificates"):
 *
 * - the **station CA**: a self-signed CA whose key is on the station's token (label
 *   `station-root-ca`; token, sensitive, never extractable, SIGN only). It issues station
 *   certificates and nothing else, so a service that trusts it trusts stations, never devices
 *   (IDevIDs chain to the IDevID root, a different anchor). `DATA/pki/station-ca.pem` is the file
 *   the MASA and the supply-chain service are configured with.
 * - the **station identity**: the key that signs device records (label `station-identity`, same
 *   template), certified by the station CA: CN = stationId, OU "Station Record Signing",
 *   keyUsage digitalSignature, EKU clientAuth. `DATA/pki/station-identity.pem`.
 * - the **TLS client key**: a P-256 key in a 0600 PEM file (`DATA/sync/client-key.pem`), separate
 *   from the HSM key (contracts.md §5), certified by the station CA: CN = stationId, OU "Station
 *   TLS", EKU clientAuth. `DATA/sync/client-cert.pem` (leaf, then the station CA).
 *
 * CLI-time work (`station pki init`, `station ca station-cert`): runs in the calling process, one
 * synchronous PKCS#11 call at a time, before any worker exists. Running it again changes nothing
 * unless a certificate is missing, names another station, no longer matches its key, or
 * `reissue` is asked for. Private keys are never written anywhere except the TLS key file.
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, Certificate, ExtendedKeyUsage, KeyUsage, KeyUsageFlags, id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage, id_kp_clientAuth, type Name } from '@peculiar/asn1-x509';
import type { HsmConfig } from '../../core/config';
import { HsmError } from '../../core/errors';
import type { Signer } from '../../core/ports/signer';
import { ensureSigningKeyPair } from '../ca/ca-key-audit';
import { buildRootCaCertificate } from '../ca/ca-certificates';
import { OID_COMMON_NAME, OID_ORGANIZATION, OID_ORGANIZATIONAL_UNIT, akiExtension, buildCertificate, buildName, extension, fromPem, keyIdentifierOf, randomCertificateSerial, skiExtension, toPem } from '../ca/x509-builder';
import { readPin } from '../pkcs11/pin-source';
import { Pkcs11Library } from '../pkcs11/pkcs11-library';
import { Pkcs11Token } from '../pkcs11/pkcs11-token';
import { ensureSoftHsmConfig, useSoftHsmConfig } from '../pkcs11/softhsm-config';
import { STATION_IDENTITY_LABEL } from './hsm-identity-signer';

export const STATION_CA_LABEL = 'station-root-ca';
export const STATION_RECORD_OU = 'Station Record Signing';
export const STATION_TLS_OU = 'Station TLS';
/** Station certificates are renewed by running `station ca station-cert --reissue`; ten years. */
const STATION_CERT_DAYS = 3650;

export interface StationPkiPaths {
  /** The station CA certificate: the trust anchor a service is configured with. */
  stationCa: string;
  /** The station identity certificate (record signing), PEM, leaf only. */
  identityCertificate: string;
  /** The TLS client key, PEM PKCS#8, mode 0600. */
  clientKey: string;
  /** The TLS client certificate, then the station CA, PEM. */
  clientCertificate: string;
}

export function stationPkiPaths(dataDir: string): StationPkiPaths {
  const d = resolve(dataDir);
  return {
    stationCa: join(d, 'pki', 'station-ca.pem'),
    identityCertificate: join(d, 'pki', 'station-identity.pem'),
    clientKey: join(d, 'sync', 'client-key.pem'),
    clientCertificate: join(d, 'sync', 'client-cert.pem'),
  };
}

export interface StationPkiOptions {
  hsm: HsmConfig;
  dataDir: string;
  stationId: string;
  organization: string;
  env?: NodeJS.ProcessEnv;
  /** Issue new identity and TLS certificates (and a new TLS key) even when the present ones are good. */
  reissue?: boolean;
}

export interface StationPkiResult {
  created: { caKey: boolean; caCertificate: boolean; identityKey: boolean; identityCertificate: boolean; tlsKey: boolean; tlsCertificate: boolean };
  paths: StationPkiPaths;
  identityCertificateDer: Buffer;
}

function spkiOf(der: Buffer): Buffer {
  return Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate).tbsCertificate.subjectPublicKeyInfo));
}

function stationCertificateExtensions(spki: Buffer, issuerSpki: Buffer) {
  return [
    extension(id_ce_basicConstraints, true, AsnConvert.serialize(new BasicConstraints({ cA: false }))),
    extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.digitalSignature))),
    extension(id_ce_extKeyUsage, false, AsnConvert.serialize(new ExtendedKeyUsage([id_kp_clientAuth]))),
    skiExtension(spki),
    akiExtension(keyIdentifierOf(issuerSpki)),
  ];
}

async function issueStationCertificate(caName: Name, ca: Signer, spki: Buffer, subject: Name): Promise<Buffer> {
  const notBefore = new Date(Date.now() - 60_000);
  return buildCertificate(
    {
      serialNumber: randomCertificateSerial(),
      issuer: caName,
      subject,
      notBefore,
      notAfter: new Date(notBefore.getTime() + STATION_CERT_DAYS * 86_400_000),
      subjectPublicKeySpki: spki,
      extensions: stationCertificateExtensions(spki, ca.publicKeySpki),
    },
    ca,
  );
}

/** A certificate file that holds a certificate for `spki`, issued to `stationId`, still valid. */
function certificateStillGood(path: string, spki: Buffer, stationId: string, caDer: Buffer): boolean {
  if (!existsSync(path)) return false;
  const [der] = fromPem(readFileSync(path, 'utf8'));
  if (!der) return false;
  try {
    const cert = new X509Certificate(der);
    const ca = new X509Certificate(caDer);
    return spkiOf(der).equals(spki) && cert.subject.split('\n').includes(`CN=${stationId}`) && cert.verify(ca.publicKey) && new Date(cert.validTo) > new Date();
  } catch {
    return false;
  }
}

function writeSecretFile(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export async function ensureStationPki(opts: StationPkiOptions): Promise<StationPkiResult> {
  const dataDir = resolve(opts.dataDir);
  const env = opts.env ?? process.env;
  const paths = stationPkiPaths(dataDir);
  const created = { caKey: false, caCertificate: false, identityKey: false, identityCertificate: false, tlsKey: false, tlsCertificate: false };
  if (opts.hsm.module.includes('softhsm')) useSoftHsmConfig(ensureSoftHsmConfig(dataDir), env);
  const library = Pkcs11Library.open(opts.hsm.module);
  const token = Pkcs11Token.login(library, opts.hsm.tokenLabel, readPin(opts.hsm.pin, dataDir, env).pin);
  try {
    const ensureKey = (label: string) => ensureSigningKeyPair(token, opts.hsm.tokenLabel, label);
    const ca = ensureKey(STATION_CA_LABEL);
    const identity = ensureKey(STATION_IDENTITY_LABEL);
    created.caKey = ca.created;
    created.identityKey = identity.created;
    mkdirSync(join(dataDir, 'pki'), { recursive: true });
    mkdirSync(join(dataDir, 'sync'), { recursive: true, mode: 0o700 });

    const caName = buildName([
      { oid: OID_ORGANIZATION, value: opts.organization },
      { oid: OID_ORGANIZATIONAL_UNIT, value: 'Stations' },
      { oid: OID_COMMON_NAME, value: 'Station CA' },
    ]);
    let caDer = existsSync(paths.stationCa) ? fromPem(readFileSync(paths.stationCa, 'utf8'))[0] : undefined;
    if (!caDer || !spkiOf(caDer).equals(ca.signer.publicKeySpki)) {
      caDer = await buildRootCaCertificate(caName, ca.signer);
      writeFileSync(paths.stationCa, toPem(caDer));
      created.caCertificate = true;
    }
    const issuerName = AsnConvert.parse(caDer, Certificate).tbsCertificate.subject;
    const subject = (ou: string) =>
      buildName([
        { oid: OID_ORGANIZATION, value: opts.organization },
        { oid: OID_ORGANIZATIONAL_UNIT, value: ou },
        { oid: OID_COMMON_NAME, value: opts.stationId },
      ]);

    if (opts.reissue || created.caCertificate || !certificateStillGood(paths.identityCertificate, identity.signer.publicKeySpki, opts.stationId, caDer)) {
      const der = await issueStationCertificate(issuerName, ca.signer, identity.signer.publicKeySpki, subject(STATION_RECORD_OU));
      writeFileSync(paths.identityCertificate, toPem(der));
      created.identityCertificate = true;
    }

    let tlsSpki: Buffer | undefined;
    if (!opts.reissue && existsSync(paths.clientKey)) {
      try {
        tlsSpki = createPublicKey(createPrivateKey(readFileSync(paths.clientKey))).export({ format: 'der', type: 'spki' });
      } catch {
        tlsSpki = undefined;
      }
    }
    if (!tlsSpki) {
      const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      writeSecretFile(paths.clientKey, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
      tlsSpki = pair.publicKey.export({ format: 'der', type: 'spki' });
      created.tlsKey = true;
    }
    if (opts.reissue || created.tlsKey || created.caCertificate || !certificateStillGood(paths.clientCertificate, tlsSpki, opts.stationId, caDer)) {
      const der = await issueStationCertificate(issuerName, ca.signer, tlsSpki, subject(STATION_TLS_OU));
      writeFileSync(paths.clientCertificate, toPem(der) + toPem(caDer));
      created.tlsCertificate = true;
    }
    const identityCertificateDer = fromPem(readFileSync(paths.identityCertificate, 'utf8'))[0]!;
    return { created, paths, identityCertificateDer };
  } finally {
    token.close();
  }
}

/**
 * The identity certificate for a run: it must certify `spki` (the key the worker found) and
 * name `stationId`; otherwise the operator reissues it.
 */
export function loadStationIdentityCertificate(dataDir: string, spki: Buffer, stationId: string): Buffer {
  const paths = stationPkiPaths(dataDir);
  if (!existsSync(paths.identityCertificate)) {
    throw new HsmError('STATION_CERT_MISSING', `The station certificate ${paths.identityCertificate} is missing. Run "station ca station-cert".`);
  }
  const [der] = fromPem(readFileSync(paths.identityCertificate, 'utf8'));
  if (!der || !spkiOf(der).equals(spki)) {
    throw new HsmError('STATION_CERT_MISMATCH', `The station certificate ${paths.identityCertificate} does not certify the station identity key on the HSM. Run "station ca station-cert --reissue".`);
  }
  if (!new X509Certificate(der).subject.split('\n').includes(`CN=${stationId}`)) {
    throw new HsmError('STATION_CERT_MISMATCH', `The station certificate ${paths.identityCertificate} was issued to another station id than ${stationId}. Run "station ca station-cert --reissue".`);
  }
  return der;
}
