/** The subject public key of a certificate prepared ahead, as a normalised P-256 DER SPKI (what obtain-key compares with the derived key). */
import { X509Certificate } from 'node:crypto';
import { p256PointFromSpki, p256SpkiFromPoint } from '../../core/ec-public-key';

export function spkiOfCertificateDer(der: Buffer): Buffer {
  const spki = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  return p256SpkiFromPoint(p256PointFromSpki(spki));
}
