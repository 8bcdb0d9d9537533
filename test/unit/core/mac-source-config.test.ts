/** products.<p>.macSource: device (default) or block with 1..8 MACs; precise messages for the rest. */
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../../src/core/config';

function withMacSource(macSource: unknown) {
  const cfg = defaultStationConfig() as unknown as { products: Record<string, Record<string, unknown>> };
  cfg.products['demo-sensor']!.macSource = macSource;
  return () => parseStationConfig(cfg);
}

describe('products.<p>.macSource', () => {
  it('is absent (the device reports its MACs) in the defaults', () => {
    expect(parseStationConfig(defaultStationConfig()).products['demo-sensor']!.macSource).toBeUndefined();
  });

  it('takes device, and block with count 1 by default or 1..8', () => {
    expect(withMacSource({ kind: 'device' })().products['demo-sensor']!.macSource).toEqual({ kind: 'device' });
    expect(withMacSource({ kind: 'block' })().products['demo-sensor']!.macSource).toEqual({ kind: 'block', count: 1 });
    expect(withMacSource({ kind: 'block', count: 8 })().products['demo-sensor']!.macSource).toEqual({ kind: 'block', count: 8 });
  });

  it.each([
    [{ kind: 'block', count: 0 }, 'products.demo-sensor.macSource.count: macSource.count must be at least 1'],
    [{ kind: 'block', count: 9 }, 'products.demo-sensor.macSource.count: macSource.count must be at most 8'],
    [{ kind: 'block', count: 1.5 }, 'macSource.count must be a whole number from 1 to 8'],
    [{ kind: 'block', count: '2' }, 'macSource.count is how many consecutive MACs a device takes'],
    [{ kind: 'oui' }, 'products.demo-sensor.macSource.kind: macSource.kind must be "device" (the device reports its MACs) or "block"'],
    [{ kind: 'device', count: 2 }, 'macSource kind "device" takes no other field (count: count is for kind "block")'],
    [{ kind: 'block', first: '02:00:00:00:00:00' }, 'products.demo-sensor.macSource'],
  ])('refuses %j', (macSource, message) => {
    expect(withMacSource(macSource)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(message) }));
  });
});
