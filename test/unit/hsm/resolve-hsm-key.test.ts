import { describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig, type HsmConfig } from '../../../src/core/config';
import { resolveHsmKey } from '../../../src/hsm/ca/resolve-hsm-key';
import { deepMerge } from '../../../src/station/cli/load-config';

const hsm = (over: Partial<HsmConfig> = {}): HsmConfig => parseStationConfig(deepMerge(defaultStationConfig(), { hsm: over })).hsm;

describe('resolveHsmKey: labels or an RFC 7512 URI', () => {
  it('uses the configured labels when no URI is given (unchanged behaviour)', () => {
    const cfg = hsm();
    expect(cfg.caKeyUri).toBeUndefined();
    expect(resolveHsmKey(cfg, 'ca')).toMatchObject({
      module: cfg.module,
      tokenLabel: 'station-ca',
      keyLabel: 'idevid-issuing-ca',
      pin: { env: 'STATION_HSM_PIN', file: 'hsm-pin' },
      source: 'labels',
      tokenMatch: {},
    });
    expect(resolveHsmKey(cfg, 'ca').keyId).toBeUndefined();
    expect(resolveHsmKey(cfg, 'root').keyLabel).toBe('idevid-root-ca');
    expect(resolveHsmKey(cfg, 'ca').uri).toBe('pkcs11:token=station-ca;object=idevid-issuing-ca;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so');
  });

  it('lets each attribute of the URI override its field, the others fall back', () => {
    const cfg = hsm({
      caKeyUri: 'pkcs11:token=line-7;serial=ABC123;object=ca-2024;id=%01%02?module-path=/opt/vendor/lib/libvendor.so&pin-source=env:LINE7_PIN',
      rootKeyUri: 'pkcs11:object=offline-root',
    });
    expect(resolveHsmKey(cfg, 'ca')).toMatchObject({
      module: '/opt/vendor/lib/libvendor.so',
      tokenLabel: 'line-7',
      tokenMatch: { serial: 'ABC123' },
      keyLabel: 'ca-2024',
      keyId: Buffer.from([1, 2]),
      pin: { env: 'LINE7_PIN' },
      source: 'uri',
    });
    expect(resolveHsmKey(cfg, 'root')).toMatchObject({
      module: '/usr/lib/softhsm/libsofthsm2.so',
      tokenLabel: 'station-ca',
      keyLabel: 'offline-root',
      pin: { env: 'STATION_HSM_PIN', file: 'hsm-pin' },
      source: 'uri',
    });
    expect(resolveHsmKey(cfg, 'ca').uri).toBe(
      'pkcs11:token=line-7;serial=ABC123;object=ca-2024;type=private;id=%01%02?module-path=/opt/vendor/lib/libvendor.so&pin-source=env:LINE7_PIN',
    );
  });

  it('refuses a configuration whose key URI carries a PIN, without repeating it', () => {
    let message = '';
    try {
      hsm({ caKeyUri: 'pkcs11:token=station-ca;object=idevid-issuing-ca?pin-value=123456-secret' });
    } catch (err) {
      message = (err as Error).message;
      expect((err as { code: string }).code).toBe('CONFIG_INVALID');
    }
    expect(message).toContain('hsm.caKeyUri');
    expect(message).toContain('PINs never go in URIs');
    expect(message).not.toContain('123456-secret');
  });

  it('names the problem of other bad key URIs', () => {
    expect(() => hsm({ caKeyUri: 'pkcs11:object=k;type=cert' })).toThrow(/hsm\.caKeyUri: .*type=private/);
    expect(() => hsm({ rootKeyUri: 'not a uri' })).toThrow(/hsm\.rootKeyUri: .*pkcs11:/);
    expect(() => hsm({ caKeyUri: 'pkcs11:object=k?pin-source=%7C/usr/bin/askpin' })).toThrow(/does not run programs/);
  });
});
