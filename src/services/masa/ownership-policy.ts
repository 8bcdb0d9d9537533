/**
 * Who may own a device (docs/services.md, "Ownership"): decided from the registrar's certificate
 * chain as carried in its CMS voucher-request.
 * - sales-integration: the owner is known in advance from the device record (`owner`), and the
 *   MASA knows each owner's domain CA certificates; the registrar's certificate must be issued by
 *   one of them, and that CA is pinned. A device without an owner is refused.
 * - trust-on-first-use: the first registrar to ask for a device's voucher binds it to its domain
 *   (the top of the chain it presents, pinned); later requests must present the same domain.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { DeviceRow } from '../storage/service-repository';

export type OwnershipPolicy =
  | { mode: 'trust-on-first-use' }
  | { mode: 'sales-integration'; owners: ReadonlyMap<string, readonly X509Certificate[]> };

export type OwnershipDecision =
  | { allowed: true; pinnedDomainCert: Buffer; domainSha256: string; bind: boolean }
  | { allowed: false; reason: string };

function issued(child: X509Certificate, ca: X509Certificate): boolean {
  try {
    return child.checkIssued(ca) && child.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** The registrar's chain as far as the carried certificates go: the signer, its issuer, ... */
export function registrarChain(signer: X509Certificate, carried: readonly X509Certificate[]): X509Certificate[] {
  const chain = [signer];
  for (;;) {
    const top = chain[chain.length - 1]!;
    if (top.checkIssued(top)) break; // self-signed
    const next = carried.find((c) => !chain.some((x) => x.fingerprint256 === c.fingerprint256) && issued(top, c));
    if (!next) break;
    chain.push(next);
  }
  return chain;
}

export function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

export function decideOwnership(policy: OwnershipPolicy, device: DeviceRow, chain: readonly X509Certificate[], binding: string | undefined): OwnershipDecision {
  if (policy.mode === 'sales-integration') {
    const owner = device.owner;
    if (owner === null) return { allowed: false, reason: `no owner is known for ${device.serial} (sales integration)` };
    const cas = policy.owners.get(owner);
    if (!cas || cas.length === 0) return { allowed: false, reason: `owner ${owner} has no domain CA registered with this MASA` };
    for (const cert of chain) {
      const ca = cas.find((c) => c.fingerprint256 === cert.fingerprint256 || issued(cert, c));
      if (ca) return { allowed: true, pinnedDomainCert: ca.raw, domainSha256: sha256Hex(ca.raw), bind: false };
    }
    return { allowed: false, reason: `the registrar is not in the domain of ${owner}, the owner of ${device.serial}` };
  }
  const top = chain[chain.length - 1]!;
  const sha = sha256Hex(top.raw);
  if (binding === undefined) return { allowed: true, pinnedDomainCert: top.raw, domainSha256: sha, bind: true };
  if (binding === sha) return { allowed: true, pinnedDomainCert: top.raw, domainSha256: sha, bind: false };
  return { allowed: false, reason: `${device.serial} is already owned by another domain (trust on first use)` };
}
