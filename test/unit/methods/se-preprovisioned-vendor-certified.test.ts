/**
 * Method 4's per-product switch `sePreprovisioned.issueIdevid`: the configuration (default
 * true, validated), and the method keeping the SE vendor's certificate as the IDevID (KeyMaterial
 * `vendor-certified`), refusing before binding a vendor certificate that is not valid now or
 * whose stored path no longer verifies.
 */
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../../src/core/config';
import type { SeManifestEntryRecord, SeManifestRegistry } from '../../../src/core/ports/se-manifest-registry';
import type { DeviceClient, DeviceIdentity } from '../../../src/device/device-client';
import type { MethodServices } from '../../../src/methods/key-method';
import { SePreprovisionedMethod } from '../../../src/methods/se-preprovisioned/se-preprovisioned-method';
import { makeSe, makeVendorPki, type TestSe } from '../../helpers/trust-and-go';

const pki = makeVendorPki();

function identity(seSerial: string): DeviceIdentity {
  return {
    model: 'DemoSensor-1',
    hardwareId: '00',
    firmwareVersion: '1.0.0',
    macs: ['020000000001'],
    capabilities: { secureElement: true, deviceKeygen: false, seKeygen: false, keyInjection: false, sePreprovisioned: true, seedDerivation: false, brski: false },
    methods: ['se-preprovisioned'],
    secureElement: { type: 'SoftHSM-SE', serial: seSerial },
    chipId: null,
    protocol: { min: 1, max: 1 },
    locked: false,
    maxPayloadBytes: 1024,
  };
}

function fakeSeDevice(se: TestSe): DeviceClient & { csrAsked: string[] } {
  const csrAsked: string[] = [];
  const fake = {
    port: '/dev/fake0',
    csrAsked,
    readSeInfo: async () => ({ seSerial: se.uniqueId, certificates: [se.device.cert, pki.root.cert] }),
    getPublicKey: async () => se.device.spki,
    getCsr: async (serial: string) => {
      csrAsked.push(serial);
      return Buffer.from('csr');
    },
  };
  return fake as unknown as DeviceClient & { csrAsked: string[] };
}

class FakeSeManifestRegistry implements SeManifestRegistry {
  readonly bound: { seSerial: string; deviceSerial: string }[] = [];
  constructor(private readonly entries: SeManifestEntryRecord[]) {}
  findBySeSerial(seSerial: string): SeManifestEntryRecord | undefined {
    return this.entries.find((e) => e.seSerial === seSerial.toLowerCase());
  }
  bind(input: { seSerial: string; deviceSerial: string }): void {
    this.bound.push(input);
  }
}

function entryFor(se: TestSe, chainDer: Buffer[] = [pki.signer.cert, pki.root.cert]): SeManifestEntryRecord {
  return { uniqueId: se.uniqueId, seSerial: se.uniqueId, entryId: `${se.uniqueId}@0011223344556677`, publicKeySpki: se.device.spki, certificateDer: se.device.cert, chainDer, boundSerial: null };
}

const ctx = (client: DeviceClient, seSerial: string) => ({ client, identity: identity(seSerial), serial: 'SEP-000001', workOrderId: 'WO-DEMO-SE', signal: new AbortController().signal });

function withProduct(product: Record<string, unknown>): unknown {
  const cfg = defaultStationConfig();
  return { ...cfg, products: { 'demo-sensor': { ...cfg.products['demo-sensor']!, ...product } } };
}

describe('products.<p>.sePreprovisioned', () => {
  it('is absent by default (our IDevID is issued) and takes issueIdevid true or false', () => {
    expect(defaultStationConfig().products['demo-sensor']!.sePreprovisioned).toBeUndefined();
    expect(parseStationConfig(withProduct({ sePreprovisioned: { issueIdevid: false } })).products['demo-sensor']!.sePreprovisioned).toEqual({ issueIdevid: false });
    expect(parseStationConfig(withProduct({ sePreprovisioned: { issueIdevid: true } })).products['demo-sensor']!.sePreprovisioned).toEqual({ issueIdevid: true });
  });

  it('refuses a missing or non-boolean issueIdevid and unknown members, naming the field', () => {
    expect(() => parseStationConfig(withProduct({ sePreprovisioned: {} }))).toThrow(/products\.demo-sensor\.sePreprovisioned\.issueIdevid: sePreprovisioned\.issueIdevid must be true .* or false/);
    expect(() => parseStationConfig(withProduct({ sePreprovisioned: { issueIdevid: 'no' } }))).toThrow(/sePreprovisioned\.issueIdevid must be true/);
    expect(() => parseStationConfig(withProduct({ sePreprovisioned: { issueIdevid: false, vendorCa: 'x' } }))).toThrow(/products\.demo-sensor\.sePreprovisioned: .*vendorCa/);
  });
});

describe('SePreprovisionedMethod with issueIdevid false', () => {
  const services = (registry: SeManifestRegistry, issueSeIdevid?: boolean): MethodServices => ({ stationId: 't', seManifest: registry, ...(issueSeIdevid === undefined ? {} : { issueSeIdevid }) });

  it('issues our IDevID unless the product says otherwise', () => {
    const registry = new FakeSeManifestRegistry([]);
    expect(new SePreprovisionedMethod(services(registry)).issuesIdevid).toBe(true);
    expect(new SePreprovisionedMethod(services(registry, true)).issuesIdevid).toBe(true);
    expect(new SePreprovisionedMethod(services(registry, false)).issuesIdevid).toBe(false);
  });

  it('returns the vendor certificate and its chain as vendor-certified material, binds the SE and still has the SE sign a request (possession, and the device learns its serial)', async () => {
    const se = makeSe(pki);
    const registry = new FakeSeManifestRegistry([entryFor(se)]);
    const client = fakeSeDevice(se);
    const m = await new SePreprovisionedMethod(services(registry, false)).obtainKeyMaterial(ctx(client, se.uniqueId));
    expect(m.kind).toBe('vendor-certified');
    if (m.kind !== 'vendor-certified') return;
    expect(m.spki.equals(se.device.spki)).toBe(true);
    expect(m.certificateDer.equals(se.device.cert)).toBe(true);
    expect(m.chain).toEqual([pki.signer.cert, pki.root.cert]);
    expect(m.issuer).toBe('O=Test SE Vendor (NOT MICROCHIP), CN=Test Signer 2A00');
    expect(m.csrDer).toEqual(Buffer.from('csr'));
    expect(m.facts).toEqual({ seSerial: se.uniqueId, seCertificateDer: se.device.cert, seChainDer: [pki.signer.cert, pki.root.cert], manifestEntryId: `${se.uniqueId}@0011223344556677` });
    expect(registry.bound).toEqual([{ seSerial: se.uniqueId, deviceSerial: 'SEP-000001' }]);
    expect(client.csrAsked).toEqual(['SEP-000001']);
  });

  it('refuses, before binding, a vendor certificate that expired or is not valid yet, or whose stored chain no longer verifies (SE_CERTIFICATE_INVALID)', async () => {
    const expired = makeSe(pki, { notBefore: new Date(Date.UTC(2020, 0, 1)), notAfter: new Date(Date.UTC(2021, 0, 1)) });
    const early = makeSe(pki, { notBefore: new Date(Date.UTC(2059, 0, 1)) });
    const good = makeSe(pki);
    const otherPki = makeVendorPki();
    const broken = { ...entryFor(good), chainDer: [otherPki.signer.cert, otherPki.root.cert] };
    const registry = new FakeSeManifestRegistry([entryFor(expired), entryFor(early), broken]);
    const method = new SePreprovisionedMethod(services(registry, false));
    await expect(method.obtainKeyMaterial(ctx(fakeSeDevice(expired), expired.uniqueId))).rejects.toMatchObject({ code: 'SE_CERTIFICATE_INVALID', stage: 'obtain-key', message: expect.stringMatching(/expired on 2021-01-01/) });
    await expect(method.obtainKeyMaterial(ctx(fakeSeDevice(early), early.uniqueId))).rejects.toMatchObject({ code: 'SE_CERTIFICATE_INVALID', message: expect.stringMatching(/not valid before 2059-01-01/) });
    await expect(method.obtainKeyMaterial(ctx(fakeSeDevice(good), good.uniqueId))).rejects.toMatchObject({ code: 'SE_CERTIFICATE_INVALID', message: expect.stringMatching(/does not chain/) });
    expect(registry.bound).toEqual([]);
    // the same SEs are accepted when the product issues our IDevID: the vendor certificate is then not the credential
    const issuing = new SePreprovisionedMethod(services(registry, true));
    await expect(issuing.obtainKeyMaterial(ctx(fakeSeDevice(expired), expired.uniqueId))).resolves.toMatchObject({ kind: 'csr' });
  });
});
