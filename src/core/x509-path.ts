/**
 * Certificate path from a leaf to one of a set of trust anchors, with node:crypto's X509Certificate
 * (OpenSSL's X509_check_issued for names, key identifiers and the issuer's key usage, then the
 * signature). Intermediates come from the candidates the caller has (an x5c array), in any order.
 * Pure: no I/O.
 *
 * Checked: each link's issuer match and signature, that every issuer below the anchor is a CA,
 * that the leaf is not a CA, and the validity period of every certificate on the path except the
 * anchor (a configured trust anchor is trusted as configured, RFC 5280 section 6.1.1).
 */
import { X509Certificate } from 'node:crypto';

export interface PathResult {
  ok: true;
  /** The issuers from the leaf's up to and including the anchor, DER. */
  issuers: Buffer[];
  anchor: X509Certificate;
}

export interface PathFailure {
  ok: false;
  reason: string;
}

const MAX_DEPTH = 8;

export function parseCertificate(der: Buffer): X509Certificate | undefined {
  try {
    return new X509Certificate(der);
  } catch {
    return undefined;
  }
}

function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validAt(cert: X509Certificate, now: Date): string | undefined {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (Number.isNaN(from) || Number.isNaN(to)) return `its validity (${cert.validFrom} to ${cert.validTo}) cannot be read`;
  if (now.getTime() < from) return `it is not valid before ${new Date(from).toISOString()}`;
  if (now.getTime() > to) return `it expired on ${new Date(to).toISOString()}`;
  return undefined;
}

function cn(cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ');
}

export function pathToAnchor(leaf: X509Certificate, candidates: readonly X509Certificate[], anchors: readonly X509Certificate[], now: Date): PathResult | PathFailure {
  if (leaf.ca) return { ok: false, reason: `the certificate (${cn(leaf)}) is a CA certificate, not an end-entity one` };
  const issuers: Buffer[] = [];
  let current = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const bad = validAt(current, now);
    if (bad) return { ok: false, reason: `${depth === 0 ? 'the certificate' : 'its issuer'} (${cn(current)}) is not valid now: ${bad}` };
    const anchor = anchors.find((a) => issuedBy(current, a));
    if (anchor) {
      issuers.push(Buffer.from(anchor.raw));
      return { ok: true, issuers, anchor };
    }
    const next = candidates.find((c) => !c.raw.equals(current.raw) && issuedBy(current, c));
    if (!next) {
      return { ok: false, reason: `${depth === 0 ? 'the certificate' : 'its issuer'} (${cn(current)}, issued by ${current.issuer.replace(/\n/g, ', ')}) does not chain to a configured SE vendor CA` };
    }
    if (!next.ca) return { ok: false, reason: `its issuer (${cn(next)}) is not a CA certificate` };
    issuers.push(Buffer.from(next.raw));
    current = next;
  }
  return { ok: false, reason: `its chain is longer than ${MAX_DEPTH} certificates` };
}
