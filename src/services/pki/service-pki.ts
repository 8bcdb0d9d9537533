/**
 * The reference services' own PKI under their folder (docs/services.md, "PKI"), made once and
 * reused: a TLS server CA and a server certificate for 127.0.0.1 / localhost, and the owner CA of
 * the supply-chain service with which owner credentials are issued. Software keys, 0600.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { filesExist, readPrivateKey, writeCertificates, writePrivateKey } from './key-files';
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, generateP256Key, issueCertificate, pemCertificates } from './software-certificates';

export interface ServicePkiPaths {
  serverCaPath: string;
  serverCaKeyPath: string;
  serverCertificatePath: string;
  serverKeyPath: string;
  ownerCaPath: string;
  ownerCaKeyPath: string;
}

export function servicePkiPaths(dir: string): ServicePkiPaths {
  const tls = join(dir, 'tls');
  return {
    serverCaPath: join(tls, 'server-ca.pem'),
    serverCaKeyPath: join(tls, 'server-ca.key'),
    serverCertificatePath: join(tls, 'server.pem'),
    serverKeyPath: join(tls, 'server.key'),
    ownerCaPath: join(dir, 'owners', 'owner-ca.pem'),
    ownerCaKeyPath: join(dir, 'owners', 'owner-ca.key'),
  };
}

function ensureCa(certPath: string, keyPath: string, commonName: string): void {
  if (filesExist(certPath, keyPath)) return;
  const key = generateP256Key();
  const cert = issueCertificate({ subject: { commonName, organization: 'Reference services' }, publicKey: createPublicKey(key), signingKey: key, validityDays: 3650, ca: {}, keyUsage: ['keyCertSign', 'cRLSign'] });
  writePrivateKey(keyPath, key);
  writeCertificates(certPath, [cert]);
}

export function ensureServicePki(dir: string): ServicePkiPaths {
  const p = servicePkiPaths(dir);
  ensureCa(p.serverCaPath, p.serverCaKeyPath, 'Reference services TLS CA');
  ensureCa(p.ownerCaPath, p.ownerCaKeyPath, 'Reference supply-chain owner CA');
  if (!filesExist(p.serverCertificatePath, p.serverKeyPath)) {
    const key = generateP256Key();
    const cert = issueCertificate({
      subject: { commonName: 'localhost' },
      publicKey: createPublicKey(key),
      issuerCertificate: pemCertificates(readFileSync(p.serverCaPath, 'utf8'))[0]!,
      signingKey: readPrivateKey(p.serverCaKeyPath),
      validityDays: 825,
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: [EKU_SERVER_AUTH],
      subjectAltNames: ['127.0.0.1', 'localhost'],
    });
    writePrivateKey(p.serverKeyPath, key);
    writeCertificates(p.serverCertificatePath, [cert]);
  }
  return p;
}

export interface OwnerCredential {
  owner: string;
  certificatePath: string;
  /** PEM PKCS#8, 0600. */
  keyPath: string;
}

/** A client certificate for `owner` (subject CN = the owner's name) from the owner CA; made once. */
export function ensureOwnerCredential(dir: string, owner: string): OwnerCredential {
  const p = ensureServicePki(dir);
  const safe = owner.replace(/[^A-Za-z0-9_.-]/g, '_');
  const certificatePath = join(dir, 'owners', `${safe}.pem`);
  const keyPath = join(dir, 'owners', `${safe}.key`);
  if (!filesExist(certificatePath, keyPath)) {
    const key = generateP256Key();
    const cert = issueCertificate({
      subject: { commonName: owner, organization: owner },
      publicKey: createPublicKey(key),
      issuerCertificate: pemCertificates(readFileSync(p.ownerCaPath, 'utf8'))[0]!,
      signingKey: readPrivateKey(p.ownerCaKeyPath),
      validityDays: 825,
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: [EKU_CLIENT_AUTH],
    });
    writePrivateKey(keyPath, key);
    writeCertificates(certificatePath, [cert]);
  }
  return { owner, certificatePath, keyPath };
}
