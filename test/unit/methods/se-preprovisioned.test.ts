/**
 * Method 4 (SE pre-provisioned) as a strategy, with a fake device and an in-memory registry:
 * what it needs, each refusal before anything is bound, and what it hands the run model.
 */
import { describe, expect, it } from 'vitest';
import { defaultStationConfig } from '../../../src/core/config';
import type { SeManifestEntryRecord, SeManifestRegistry } from '../../../src/core/ports/se-manifest-registry';
import type { DeviceClient, DeviceIdentity } from '../../../src/device/device-client';
import { createKeyMethod } from '../../../src/methods/registry';
import { SePreprovisionedMethod } from '../../../src/methods/se-preprovisioned/se-preprovisioned-method';
import { makeSe, makeVendorPki, newP256 } from '../../helpers/trust-and-go';

const pki = makeVendorPki();

function identity(seSerial: string | null, caps: Partial<DeviceIdentity['capabilities']> = { secureElement: true, sePreprovisioned: true }): DeviceIdentity {
  return {
    model: 'DemoSensor-1',
    hardwareId: '00',
    firmwareVersion: '1.0.0',
    macs: ['020000000001'],
    capabilities: { secureElement: false, deviceKeygen: false, seKeygen: false, keyInjection: false, sePreprovisioned: false, seedDerivation: false, brski: false, ...caps },
    methods: ['se-preprovisioned'],
    secureElement: seSerial ? { type: 'SoftHSM-SE', serial: seSerial } : null,
    chipId: null,
    protocol: { min: 1, max: 1 },
    locked: false,
    maxPayloadBytes: 1024,
  };
}

/** A device whose SE answers with this serial, certificate and public key. */
function fakeSeDevice(seSerial: string, certificate: Buffer, publicKey: Buffer): DeviceClient & { csrAsked: string[] } {
  const csrAsked: string[] = [];
  const fake = {
    port: '/dev/fake0',
    csrAsked,
    readSeInfo: async () => ({ seSerial, certificates: [certificate, pki.root.cert] }),
    getPublicKey: async () => publicKey,
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

function entryFor(se: ReturnType<typeof makeSe>): SeManifestEntryRecord {
  return { uniqueId: se.uniqueId, seSerial: se.uniqueId, entryId: `${se.uniqueId}@0011223344556677`, publicKeySpki: se.device.spki, certificateDer: se.device.cert, chainDer: [pki.signer.cert, pki.root.cert], boundSerial: null };
}

const ctx = (client: DeviceClient, id: DeviceIdentity) => ({ client, identity: id, serial: 'SEP-000001', workOrderId: 'WO-DEMO-SE', signal: new AbortController().signal });

describe('SePreprovisionedMethod', () => {
  it('is registered as method 4 with keyOrigin se-vendor, and WO-DEMO-SE uses it', () => {
    const m = createKeyMethod('se-preprovisioned', { stationId: 't' });
    expect(m).toBeInstanceOf(SePreprovisionedMethod);
    expect(m.keyOrigin).toBe('se-vendor');
    expect(defaultStationConfig().workOrders.find((w) => w.id === 'WO-DEMO-SE')).toMatchObject({ method: 'se-preprovisioned', product: 'demo-sensor', serial: { prefix: 'SEP-' } });
  });

  it('needs a secure element provisioned by its vendor', () => {
    const m = new SePreprovisionedMethod({ stationId: 't' });
    expect(m.supports(identity('00'))).toEqual({ ok: true });
    expect(m.supports(identity('00', { secureElement: true, seKeygen: true })).ok).toBe(false);
    expect(m.supports(identity(null, {})).ok).toBe(false);
  });

  it('binds the SE and asks it for a CSR over the listed key; the facts name the SE, its certificates and its entry', async () => {
    const se = makeSe(pki);
    const registry = new FakeSeManifestRegistry([entryFor(se)]);
    const client = fakeSeDevice(se.uniqueId.toUpperCase(), se.device.cert, se.device.spki);
    const m = await new SePreprovisionedMethod({ stationId: 't', seManifest: registry }).obtainKeyMaterial(ctx(client, identity(se.uniqueId)));
    expect(m.kind).toBe('csr');
    if (m.kind !== 'csr') return;
    expect(m.reportedSpki.equals(se.device.spki)).toBe(true);
    expect(m.facts).toEqual({ seSerial: se.uniqueId, seCertificateDer: se.device.cert, seChainDer: [pki.signer.cert, pki.root.cert], manifestEntryId: `${se.uniqueId}@0011223344556677` });
    expect(registry.bound).toEqual([{ seSerial: se.uniqueId, deviceSerial: 'SEP-000001' }]);
    expect(client.csrAsked).toEqual(['SEP-000001']);
  });

  it('refuses before binding: no registry (METHOD_NOT_CONFIGURED), SE serials that disagree, an unknown SE, a key that is not the listed one', async () => {
    const se = makeSe(pki);
    const registry = new FakeSeManifestRegistry([entryFor(se)]);
    const method = new SePreprovisionedMethod({ stationId: 't', seManifest: registry });
    const good = fakeSeDevice(se.uniqueId, se.device.cert, se.device.spki);
    await expect(new SePreprovisionedMethod({ stationId: 't' }).obtainKeyMaterial(ctx(good, identity(se.uniqueId)))).rejects.toMatchObject({ code: 'METHOD_NOT_CONFIGURED' });
    await expect(method.obtainKeyMaterial(ctx(good, identity('0123000000000000ff')))).rejects.toMatchObject({ code: 'SE_SERIAL_MISMATCH', stage: 'obtain-key' });
    const stranger = makeSe(pki);
    await expect(method.obtainKeyMaterial(ctx(fakeSeDevice(stranger.uniqueId, stranger.device.cert, stranger.device.spki), identity(stranger.uniqueId)))).rejects.toMatchObject({
      code: 'SE_UNKNOWN',
      stage: 'obtain-key',
    });
    // the SE shows the listed certificate but holds another key, and the other way round
    const other = newP256().spki;
    await expect(method.obtainKeyMaterial(ctx(fakeSeDevice(se.uniqueId, se.device.cert, other), identity(se.uniqueId)))).rejects.toMatchObject({ code: 'SE_KEY_MISMATCH' });
    await expect(method.obtainKeyMaterial(ctx(fakeSeDevice(se.uniqueId, stranger.device.cert, se.device.spki), identity(se.uniqueId)))).rejects.toMatchObject({ code: 'SE_KEY_MISMATCH' });
    expect(registry.bound).toEqual([]);
  });
});
