import { describe, expect, it } from 'vitest';
import { defaultStationConfig, formatSerial, parseStationConfig } from '../../../src/core/config';
import { deepMerge } from '../../../src/station/cli/load-config';

describe('station configuration', () => {
  it('accepts the embedded defaults, whose demo profile turns on every IDevID feature', () => {
    const cfg = parseStationConfig(defaultStationConfig());
    const p = cfg.products['demo-sensor']!.idevid;
    expect(p.serialNumberInSubject && p.subjectKeyIdentifier && p.authorityKeyIdentifier).toBe(true);
    expect(p.masaUrl).toMatch(/^https:\/\//);
    expect(p.hardwareModuleName?.hwType).toMatch(/^1\.3\.6\.1\.4\.1\./);
    expect(p.validityDays).toBeNull();
  });

  it('names each invalid field', () => {
    const bad = deepMerge(defaultStationConfig(), {
      workOrders: [{ id: 'W1', product: 'nope', method: 'telepathy', serial: { prefix: 'A;B', width: 2, first: 5, last: 1000 } }],
      defaultWorkOrder: 'W1',
      hsm: { pin: { env: 'lower-case' } },
    });
    let message = '';
    try {
      parseStationConfig(bad, 'test config');
    } catch (err) {
      message = (err as Error).message;
      expect((err as { code: string }).code).toBe('CONFIG_INVALID');
    }
    expect(message).toContain('test config');
    expect(message).toContain('workOrders.0.method');
    expect(message).toContain('workOrders.0.serial.prefix');
    expect(message).toContain('serial.width is too small');
    expect(message).toContain('hsm.pin.env');
  });

  it('checks that work orders name known products and the default work order exists', () => {
    const wo = { ...defaultStationConfig().workOrders[0]!, id: 'W2', product: 'nope' };
    const bad = deepMerge(defaultStationConfig(), { workOrders: [wo], defaultWorkOrder: 'W9' });
    expect(() => parseStationConfig(bad)).toThrow(/work order W2 names unknown product nope[\s\S]*defaultWorkOrder W9 is not a work order/);
  });

  it('formats serials with the prefix and zero padding', () => {
    expect(formatSerial({ prefix: 'DEMO-', width: 6, first: 1, last: 9 }, 42)).toBe('DEMO-000042');
  });
});
