/**
 * The MASA's voucher-signing identity: a software P-256 key (0600) and a self-signed certificate.
 * It must exist before devices are provisioned, because the station installs this certificate on
 * each device as its MASA trust anchor (products.<p>.install.masaTrustAnchor). Idempotent: a
 * second call returns the same files.
 */
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { filesExist, writeCertificates, writePrivateKey } from '../pki/key-files';
import { generateP256Key, issueCertificate } from '../pki/software-certificates';

export interface MasaIdentityPaths {
  /** PEM: the voucher-signing certificate, and the devices' trust anchor. */
  certificatePath: string;
  /** PEM PKCS#8, mode 0600. */
  keyPath: string;
}

export function masaIdentityPaths(servicesDir: string): MasaIdentityPaths {
  return { certificatePath: join(servicesDir, 'masa', 'masa-signing.pem'), keyPath: join(servicesDir, 'masa', 'masa-signing.key') };
}

export function ensureMasaIdentity(servicesDir: string, organization = 'Reference MASA'): MasaIdentityPaths {
  const paths = masaIdentityPaths(servicesDir);
  if (filesExist(paths.certificatePath, paths.keyPath)) return paths;
  const key = generateP256Key();
  const cert = issueCertificate({
    subject: { commonName: `${organization} voucher signer`, organization },
    publicKey: createPublicKey(key),
    signingKey: key,
    validityDays: 3650,
    keyUsage: ['digitalSignature'],
  });
  writePrivateKey(paths.keyPath, key);
  writeCertificates(paths.certificatePath, [cert]);
  return paths;
}
