/**
 * Signs device record payloads for the wire (docs/sync-api.md): ECDSA P-256 / SHA-256 over the
 * UTF-8 bytes of canonicalJson(payload), raw r||s in base64url, with the station certificate
 * (DER, base64) that a service checks against its station CA. The key is behind the Signer port
 * (the station identity key in the HSM); this module never sees it.
 */
import { X509Certificate, createPublicKey, verify } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json';
import type { DeviceRecordPayload, SignedDeviceRecord } from '../../core/device-record';
import { DatabaseError } from '../../core/errors';
import type { Signer } from '../../core/ports/signer';

export type RecordSignature = SignedDeviceRecord['signature'];

/** DER ECDSA-Sig-Value -> raw r||s of 32 bytes each (P-256). */
export function derEcdsaToRawP256(der: Uint8Array): Buffer {
  const b = Buffer.from(der);
  const fail = () => new RangeError('not a DER ECDSA P-256 signature');
  if (b[0] !== 0x30) throw fail();
  let off = 2;
  if (b[1]! & 0x80) off = 2 + (b[1]! & 0x7f);
  const int = (): Buffer => {
    if (b[off] !== 0x02) throw fail();
    const len = b[off + 1]!;
    let v = b.subarray(off + 2, off + 2 + len);
    off += 2 + len;
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    if (v.length > 32) throw fail();
    return Buffer.concat([Buffer.alloc(32 - v.length), v]);
  };
  const r = int();
  const s = int();
  return Buffer.concat([r, s]);
}

export class RecordSigner {
  private readonly certificateB64: string;

  /** Refuses a certificate that does not certify the signer's key. */
  constructor(
    private readonly signer: Signer,
    stationCertificateDer: Buffer,
  ) {
    const certKey = new X509Certificate(stationCertificateDer).publicKey.export({ format: 'der', type: 'spki' });
    const signerKey = createPublicKey({ key: signer.publicKeySpki, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' });
    if (!certKey.equals(signerKey)) {
      throw new DatabaseError('STATION_CERT_MISMATCH', 'The station certificate does not certify the key that signs records. Run "station ca station-cert --reissue".');
    }
    this.certificateB64 = stationCertificateDer.toString('base64');
  }

  async sign(payload: DeviceRecordPayload): Promise<{ canonical: string; signature: RecordSignature }> {
    const canonical = canonicalJson(payload);
    const der = await this.signer.sign(Buffer.from(canonical, 'utf8'));
    return { canonical, signature: { alg: 'ES256', stationCertificate: this.certificateB64, value: derEcdsaToRawP256(der).toString('base64url') } };
  }
}

/** A service's check of one record's signature (tests and `station export --format jws` use it too). */
export function verifyRecordSignature(record: Pick<SignedDeviceRecord, 'payload' | 'signature'>): boolean {
  const cert = new X509Certificate(Buffer.from(record.signature.stationCertificate, 'base64'));
  return verify('sha256', Buffer.from(canonicalJson(record.payload), 'utf8'), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(record.signature.value, 'base64url'));
}
