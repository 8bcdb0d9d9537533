/**
 * Which stations a service trusts (docs/sync-api.md): a record's `stationCertificate` must be
 * issued by the configured station CA, valid when the record was made, name the record's
 * stationId as its subject CN, and its key must verify the signature over canonicalJson(payload).
 */
import { X509Certificate, verify } from 'node:crypto';
import { canonicalJsonBytes, type JsonValue } from '../../core/canonical-json';
import type { SignedDeviceRecord } from '../../core/device-record';

export function commonNameOf(cert: X509Certificate): string | undefined {
  for (const line of cert.subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

export class StationTrust {
  constructor(
    private readonly stationCas: readonly X509Certificate[],
    /** When given, only these station ids may deliver (others are known but not allowed: 403 / rejected). */
    private readonly allowedStations?: readonly string[],
  ) {
    if (stationCas.length === 0) throw new Error('no station CA certificate configured');
  }

  /** True when `cert` is one of the station CA certificates. */
  isStationCa(cert: X509Certificate): boolean {
    return this.stationCas.some((ca) => ca.fingerprint256 === cert.fingerprint256);
  }

  isAllowed(stationId: string): boolean {
    return this.allowedStations === undefined || this.allowedStations.includes(stationId);
  }

  /** Why this record cannot be trusted, or null when its station and signature check out. */
  recordProblem(record: SignedDeviceRecord): string | null {
    const p = record.payload;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(record.signature.stationCertificate, 'base64'));
    } catch {
      return 'the station certificate is not a DER certificate';
    }
    const issuedByCa = this.stationCas.some((ca) => {
      try {
        return cert.checkIssued(ca) && cert.verify(ca.publicKey);
      } catch {
        return false;
      }
    });
    if (!issuedByCa) return 'unknown station: its certificate is not issued by the station CA';
    const at = Date.parse(p.recordedAt);
    if (!(at >= Date.parse(cert.validFrom) && at <= Date.parse(cert.validTo))) return 'the station certificate was not valid at recordedAt';
    const cn = commonNameOf(cert);
    if (cn !== p.stationId) return `the station certificate is for ${cn ?? '(no CN)'}, not for stationId ${p.stationId}`;
    if (!this.isAllowed(p.stationId)) return `station ${p.stationId} is not allowed to deliver to this service`;
    const signature = Buffer.from(record.signature.value, 'base64url');
    if (signature.length !== 64) return 'the signature is not 64 bytes of r||s';
    let ok = false;
    try {
      ok = verify('sha256', canonicalJsonBytes(p as unknown as JsonValue), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      ok = false;
    }
    return ok ? null : 'the signature does not verify with the station certificate';
  }
}
