/** Root and issuing CA certificates with the extensions of contracts.md §7. */
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, KeyUsage, KeyUsageFlags, id_ce_basicConstraints, id_ce_keyUsage, type Name } from '@peculiar/asn1-x509';
import type { Signer } from '../../core/ports/signer';
import { NO_EXPIRY, akiExtension, buildCertificate, extension, keyIdentifierOf, randomCertificateSerial, skiExtension } from './x509-builder';

function caExtensions(spki: Buffer, issuerKeyId: Buffer, pathLen: number | undefined) {
  return [
    extension(id_ce_basicConstraints, true, AsnConvert.serialize(new BasicConstraints({ cA: true, pathLenConstraint: pathLen }))),
    extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign))),
    skiExtension(spki),
    akiExtension(issuerKeyId),
  ];
}

export async function buildRootCaCertificate(subject: Name, signer: Signer, notBefore = new Date()): Promise<Buffer> {
  const spki = signer.publicKeySpki;
  return buildCertificate(
    {
      serialNumber: randomCertificateSerial(),
      issuer: subject,
      subject,
      notBefore,
      notAfter: NO_EXPIRY,
      subjectPublicKeySpki: spki,
      extensions: caExtensions(spki, keyIdentifierOf(spki), undefined),
    },
    signer,
  );
}

export async function buildIssuingCaCertificate(
  subject: Name,
  spki: Buffer,
  root: { name: Name; signer: Signer },
  notBefore = new Date(),
): Promise<Buffer> {
  return buildCertificate(
    {
      serialNumber: randomCertificateSerial(),
      issuer: root.name,
      subject,
      notBefore,
      notAfter: NO_EXPIRY,
      subjectPublicKeySpki: spki,
      extensions: caExtensions(spki, keyIdentifierOf(root.signer.publicKeySpki), 0),
    },
    root.signer,
  );
}
