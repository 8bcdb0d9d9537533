import { describe, expect, it } from 'vitest';
import { compareFirmwareVersions, defaultStationConfig, firmwareOutOfRange, parseStationConfig } from '../../../src/core/config';
import { deepMerge } from '../../../src/station/cli/load-config';

describe('product profile: firmware range, allowed methods, install items', () => {
  it('compares firmware versions number by number', () => {
    expect(compareFirmwareVersions('1.10.0', '1.9.9')).toBe(1);
    expect(compareFirmwareVersions('1.0', '1.0.0')).toBe(0);
    expect(compareFirmwareVersions('0.9.1', '1.0.0')).toBe(-1);
  });

  it('says why a firmware is outside the range, and null inside it', () => {
    expect(firmwareOutOfRange('1.0.0', { min: '1.0.0', max: '1.4' })).toBeNull();
    expect(firmwareOutOfRange('0.9.0', { min: '1.0.0' })).toBe('firmware 0.9.0 is older than 1.0.0, the oldest this product accepts');
    expect(firmwareOutOfRange('2.0.0', { max: '1.4' })).toBe('firmware 2.0.0 is newer than 1.4, the newest this product accepts');
    expect(firmwareOutOfRange('1.0-rc1', { min: '1.0.0' })).toMatch(/not a dotted version number/);
    expect(firmwareOutOfRange('anything', undefined)).toBeNull();
  });

  it('refuses a work order whose method the product does not allow', () => {
    const bad = deepMerge(defaultStationConfig(), { products: { 'demo-sensor': { methods: ['on-device-keygen'] } } });
    expect(() => parseStationConfig(bad)).toThrow(/work order WO-DEMO-1 uses method secure-element-keygen, which product demo-sensor does not allow \(on-device-keygen\)/);
  });

  it('validates the install items: an https MUD URL, bounded bootstrap info', () => {
    const bad = deepMerge(defaultStationConfig(), { products: { 'demo-sensor': { install: { mudUrl: 'http://mud.example.com/x', appBootstrap: '' } } } });
    expect(() => parseStationConfig(bad)).toThrow(/install\.mudUrl: an https:\/\/ URL without spaces[\s\S]*install\.appBootstrap/);
    const ok = parseStationConfig(defaultStationConfig()).products['demo-sensor']!.install;
    expect(ok.mudUrl).toMatch(/^https:\/\//);
  });
});
