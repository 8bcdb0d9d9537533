/**
 * Method 3 (factory-injected key) as a strategy: registration, what it needs of the device, the
 * work order it runs under, and that a station that did not wire its ports gets a typed error
 * instead of a half-done injection. The flows with the HSM and the database are in
 * test/integration/key-injection-hsm.test.ts and batch-factory-injected-key.test.ts.
 */
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../../src/core/config';
import type { DeviceClient, DeviceIdentity } from '../../../src/device/device-client';
import { FactoryInjectedKeyMethod } from '../../../src/methods/factory-injected-key/factory-injected-key-method';
import { createKeyMethod } from '../../../src/methods/registry';
import { parseInjectMode } from '../../../src/station/cli/prepare-command';

function identity(keyInjection: boolean): DeviceIdentity {
  return {
    model: 'DemoSensor-1',
    hardwareId: '00',
    firmwareVersion: '1.0.0',
    macs: ['020000000001'],
    capabilities: { secureElement: false, deviceKeygen: false, seKeygen: false, keyInjection, sePreprovisioned: false, seedDerivation: false, brski: true },
    methods: ['factory-injected-key'],
    secureElement: null,
    chipId: null,
    protocol: { min: 1, max: 1 },
    locked: false,
    maxPayloadBytes: 1024,
  };
}

describe('FactoryInjectedKeyMethod', () => {
  it('is registered as method 3 with keyOrigin hsm, and owns the assign stage and the install, record and failure hooks', () => {
    const m = createKeyMethod('factory-injected-key', { stationId: 't' });
    expect(m).toBeInstanceOf(FactoryInjectedKeyMethod);
    expect(m.keyOrigin).toBe('hsm');
    for (const hook of ['assignSerial', 'beforeInstall', 'afterRecord', 'onFailure'] as const) expect(typeof m[hook]).toBe('function');
    expect(m.crossCheck).toBeUndefined();
  });

  it('needs the KEY_INJECTION capability', () => {
    const m = new FactoryInjectedKeyMethod({ stationId: 't' });
    expect(m.supports(identity(true))).toEqual({ ok: true });
    const no = m.supports(identity(false));
    expect(no.ok).toBe(false);
    expect(no.ok ? '' : no.reason).toContain('KEY_INJECTION');
  });

  it('uses prepared keys unless told to make them at the station; reads its services when used', () => {
    const services: { stationId: string; injectMode?: 'prepared' | 'at-station' } = { stationId: 't' };
    const m = new FactoryInjectedKeyMethod(services);
    expect(m.mode).toBe('prepared');
    services.injectMode = 'at-station';
    expect(m.mode).toBe('at-station');
  });

  it('fails with METHOD_NOT_CONFIGURED when the station did not wire its ports', async () => {
    const m = new FactoryInjectedKeyMethod({ stationId: 't' });
    const ctx = {
      client: {} as DeviceClient,
      identity: identity(true),
      runId: 'r',
      workOrderId: 'WO-DEMO-INJECT',
      port: 'p',
      signal: new AbortController().signal,
      allocate: () => 'INJ-000001',
    };
    await expect(m.assignSerial(ctx)).rejects.toMatchObject({ code: 'METHOD_NOT_CONFIGURED' });
  });

  it('has a demo work order, and --inject takes only its two ways', () => {
    const config = parseStationConfig(defaultStationConfig());
    expect(config.workOrders.find((w) => w.method === 'factory-injected-key')).toMatchObject({
      id: 'WO-DEMO-INJECT',
      product: 'demo-sensor',
      serial: { prefix: 'INJ-', width: 6, first: 1 },
    });
    expect(parseInjectMode('prepared')).toBe('prepared');
    expect(parseInjectMode('at-station')).toBe('at-station');
    expect(() => parseInjectMode('later')).toThrow(InvalidArgumentError);
  });
});
