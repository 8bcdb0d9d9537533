/**
 * The MASA's ownership decision (sales integration and trust on first use) over real
 * certificate chains, and the startup fault specs of the reference services.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseServiceFault, takeFault } from '../../../src/services/http/service-faults';
import { decideOwnership, registrarChain, sha256Hex, type OwnershipPolicy } from '../../../src/services/masa/ownership-policy';
import { EKU_CMC_RA, generateP256Key, issueCertificate } from '../../../src/services/pki/software-certificates';
import type { DeviceRow } from '../../../src/services/storage/service-repository';

function ca(name: string) {
  const key = generateP256Key();
  const cert = issueCertificate({ subject: { commonName: name }, publicKey: createPublicKey(key), signingKey: key, validityDays: 1, ca: {}, keyUsage: ['keyCertSign', 'cRLSign'] });
  return { key, cert: new X509Certificate(cert) };
}
function registrar(issuer: ReturnType<typeof ca>) {
  const key = generateP256Key();
  return new X509Certificate(issueCertificate({ subject: { commonName: 'registrar' }, publicKey: createPublicKey(key), issuerCertificate: issuer.cert.raw, signingKey: issuer.key, validityDays: 1, keyUsage: ['digitalSignature'], extendedKeyUsage: [EKU_CMC_RA] }));
}
const device = (owner: string | null) => ({ serial: 'S-1', owner } as unknown as DeviceRow);

describe('ownership', () => {
  const acme = ca('ACME domain CA');
  const globex = ca('Globex domain CA');
  const acmeRegistrar = registrar(acme);
  const sales: OwnershipPolicy = { mode: 'sales-integration', owners: new Map([['acme', [acme.cert]]]) };

  it('builds the registrar chain from the carried certificates, stopping at a self-signed one', () => {
    expect(registrarChain(acmeRegistrar, [globex.cert, acme.cert]).map((c) => c.subject)).toEqual([acmeRegistrar.subject, acme.cert.subject]);
    expect(registrarChain(acmeRegistrar, [])).toHaveLength(1);
  });

  it('sales integration: the owner named in the record, and a registrar of that owner\'s domain', () => {
    const chain = registrarChain(acmeRegistrar, [acme.cert]);
    expect(decideOwnership(sales, device('acme'), chain, undefined)).toMatchObject({ allowed: true, bind: false, domainSha256: sha256Hex(acme.cert.raw) });
    // the domain CA need not be carried: the configured one is found and pinned
    expect(decideOwnership(sales, device('acme'), [acmeRegistrar], undefined)).toMatchObject({ allowed: true, pinnedDomainCert: acme.cert.raw });
    expect(decideOwnership(sales, device('globex'), chain, undefined)).toMatchObject({ allowed: false, reason: expect.stringMatching(/no domain CA/) });
    expect(decideOwnership(sales, device(null), chain, undefined)).toMatchObject({ allowed: false, reason: expect.stringMatching(/no owner is known/) });
    const globexChain = registrarChain(registrar(globex), [globex.cert]);
    expect(decideOwnership(sales, device('acme'), globexChain, undefined)).toMatchObject({ allowed: false, reason: expect.stringMatching(/not in the domain of acme/) });
  });

  it('trust on first use: the first domain binds, the same domain again is allowed, another is refused', () => {
    const tofu: OwnershipPolicy = { mode: 'trust-on-first-use' };
    const first = decideOwnership(tofu, device(null), registrarChain(acmeRegistrar, [acme.cert]), undefined);
    expect(first).toMatchObject({ allowed: true, bind: true, pinnedDomainCert: acme.cert.raw });
    const bound = sha256Hex(acme.cert.raw);
    expect(decideOwnership(tofu, device(null), registrarChain(registrar(acme), [acme.cert]), bound)).toMatchObject({ allowed: true, bind: false });
    expect(decideOwnership(tofu, device(null), registrarChain(registrar(globex), [globex.cert]), bound)).toMatchObject({ allowed: false });
  });
});

describe('service faults', () => {
  it('parses each fault and uses it up', () => {
    const faults = ['drop-after-commit:2', 'status:503:1', 'delay:10:1'].map(parseServiceFault);
    expect(faults).toEqual([
      { kind: 'drop-after-commit', remaining: 2 },
      { kind: 'status', status: 503, remaining: 1 },
      { kind: 'delay', ms: 10, remaining: 1 },
    ]);
    expect(takeFault(faults, 'status')?.status).toBe(503);
    expect(takeFault(faults, 'status')).toBeUndefined();
    expect(takeFault(faults, 'drop-after-commit')).toBeDefined();
    expect(takeFault(faults, 'drop-after-commit')).toBeDefined();
    expect(takeFault(faults, 'drop-after-commit')).toBeUndefined();
  });

  it('refuses unknown or out-of-range specs with the reason', () => {
    expect(() => parseServiceFault('explode')).toThrow(/unknown fault/);
    expect(() => parseServiceFault('status:200:1')).toThrow(/CODE must be 400..599/);
    expect(() => parseServiceFault('drop-after-commit:0')).toThrow(/N must be/);
  });
});
