import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StationError } from '../../../src/core/errors';
import { formatPkcs11Uri, parseKeyUri, parsePkcs11Uri, pinSourceFromUri, type Pkcs11Uri } from '../../../src/core/pkcs11-uri';

function errorOf(fn: () => unknown): StationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StationError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('PKCS#11 URIs (RFC 7512)', () => {
  it('parses the station example', () => {
    const u = parsePkcs11Uri('pkcs11:token=station-ca;object=idevid-issuing-ca;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:hsm-pin');
    expect(u).toMatchObject({ token: 'station-ca', object: 'idevid-issuing-ca', type: 'private', modulePath: '/usr/lib/softhsm/libsofthsm2.so', pinSource: 'file:hsm-pin' });
    expect(formatPkcs11Uri(u)).toBe('pkcs11:token=station-ca;object=idevid-issuing-ca;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:hsm-pin');
  });

  // RFC 7512 section 3.3, every example but the one carrying pin-value (refused below).
  const RFC_EXAMPLES: [string, Partial<Pkcs11Uri>][] = [
    ['pkcs11:', {}],
    ['pkcs11:object=my-pubkey;type=public', { object: 'my-pubkey', type: 'public' }],
    ['pkcs11:object=my-key;type=private?pin-source=file:/etc/token', { object: 'my-key', type: 'private', pinSource: 'file:/etc/token' }],
    [
      'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin',
      {
        token: 'The Software PKCS#11 Softtoken',
        manufacturer: 'Snake Oil, Inc.',
        model: '1.0',
        object: 'my-certificate',
        type: 'cert',
        id: Buffer.from('69953e5cf4bdec91', 'hex'),
        serial: '',
        pinSource: 'file:/etc/token_pin',
      },
    ],
    ['pkcs11:object=my-sign-key;type=private?module-name=mypkcs11', { object: 'my-sign-key', type: 'private', moduleName: 'mypkcs11' }],
    ['pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1', { object: 'my-sign-key', type: 'private', modulePath: '/mnt/libmypkcs11.so.1' }],
    ['pkcs11:slot-description=Sun%20Metaslot', { slotDescription: 'Sun Metaslot' }],
    [
      'pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23',
      { libraryManufacturer: 'Snake Oil, Inc.', libraryDescription: 'Soft Token Library', libraryVersion: '1.23' },
    ],
    [
      'pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06',
      { token: 'My token% created by Joe', libraryVersion: '3', id: Buffer.from('010203baddcafe040506', 'hex') },
    ],
    ['pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert', { token: 'A name with a substring %;', object: 'my-certificate', type: 'cert' }],
    ['pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert', { token: 'Name with a small A with acute: \u00e1', object: 'my-certificate', type: 'cert' }],
    [
      'pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b',
      {
        token: 'my-token',
        object: 'my-certificate',
        type: 'cert',
        pinSource: 'file:/etc/token_pin',
        vendorPath: [{ name: 'vendor-aaa', value: 'value-a' }],
        vendorQuery: [{ name: 'vendor-bbb', value: 'value-b' }],
      },
    ],
  ];

  it.each(RFC_EXAMPLES)('parses the RFC 7512 example %s', (text, expected) => {
    const u = parsePkcs11Uri(text);
    expect(u).toMatchObject({ vendorPath: [], vendorQuery: [], ...expected });
    // Formatting gives a URI that parses to the same thing (attribute order and hex case may differ).
    expect(parsePkcs11Uri(formatPkcs11Uri(u))).toEqual(u);
  });

  it('keeps "+" literal and decodes only %XX (no form encoding)', () => {
    expect(parsePkcs11Uri('pkcs11:object=a+b%2Bc').object).toBe('a+b+c');
    expect(parsePkcs11Uri('pkcs11:?module-path=/opt/a%20b/lib.so').modulePath).toBe('/opt/a b/lib.so');
  });

  it('accepts the characters RFC 7512 allows unencoded in each component', () => {
    const u = parsePkcs11Uri("pkcs11:token=:[]@!$'()*+,=&?x-attr=:[]@!$'()*+,=/?|");
    expect(u.token).toBe(":[]@!$'()*+,=&");
    expect(u.vendorQuery).toEqual([{ name: 'x-attr', value: ":[]@!$'()*+,=/?|" }]);
  });

  it('refuses malformed URIs, naming the attribute but never its value', () => {
    const cases = [
      'http://x',
      'pkcs11:token=a b',
      'pkcs11:token=%4',
      'pkcs11:token=%zz',
      'pkcs11:object=a/b',
      'pkcs11:token=a;;object=b',
      'pkcs11:token=a;',
      'pkcs11:token',
      'pkcs11:token=a;token=b',
      'pkcs11:type=secret',
      'pkcs11:slot-id=abc',
      'pkcs11:library-version=1.2.3',
      'pkcs11:token=%FF%FE',
      'pkcs11:?pin-source=a&pin-source=b',
      'pkcs11:obj#ect=x',
    ];
    for (const text of cases) {
      const err = errorOf(() => parsePkcs11Uri(text));
      expect(err.code, text).toBe('PKCS11_URI_INVALID');
      expect(err.family).toBe('config');
    }
    expect(errorOf(() => parsePkcs11Uri('pkcs11:object=secret%20value;object=x')).message).not.toContain('secret');
  });

  it('refuses pin-value with a ConfigError saying PINs never go in URIs, without echoing the PIN', () => {
    for (const text of [
      'pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin',
      'pkcs11:token=station-ca;object=idevid-issuing-ca?pin-source=file:hsm-pin&pin-value=the-pin',
      'pkcs11:?pin-value=the-pin',
      'pkcs11:token=a b?pin-value=the-pin',
    ]) {
      const err = errorOf(() => parsePkcs11Uri(text));
      expect(err.code).toBe('PKCS11_URI_PIN_VALUE');
      expect(err.family).toBe('config');
      expect(err.message).toContain('PINs never go in URIs');
      expect(err.message).not.toContain('the-pin');
    }
  });

  it('formats ids fully percent-encoded and text as UTF-8 percent-encoding', () => {
    expect(formatPkcs11Uri({ token: 'My token; 100%', object: 'k\u00e9y', id: Buffer.from([0, 0xab, 0x41]), type: 'private' })).toBe(
      'pkcs11:token=My%20token%3B%20100%25;object=k%C3%A9y;type=private;id=%00%AB%41',
    );
  });

  it('round-trips any attribute values (property)', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 24 });
    fc.assert(
      fc.property(text, text, fc.uint8Array({ maxLength: 20 }), text, (token, object, id, modulePath) => {
        const uri: Pkcs11Uri = { token, object, id: Buffer.from(id), modulePath, type: 'private', vendorPath: [], vendorQuery: [] };
        expect(parsePkcs11Uri(formatPkcs11Uri(uri))).toEqual(uri);
      }),
    );
  });

  it('reads pin-source as env:NAME or file:PATH and refuses programs', () => {
    expect(pinSourceFromUri('env:STATION_HSM_PIN')).toEqual({ env: 'STATION_HSM_PIN' });
    expect(pinSourceFromUri('file:hsm-pin')).toEqual({ file: 'hsm-pin' });
    expect(pinSourceFromUri('file:/etc/token_pin')).toEqual({ file: '/etc/token_pin' });
    expect(pinSourceFromUri('file:///etc/token_pin')).toEqual({ file: '/etc/token_pin' });
    for (const bad of ['|/usr/bin/get-pin', 'env:lower', 'file://other-host/pin', 'file:', 'builtin-dialog']) {
      expect(errorOf(() => pinSourceFromUri(bad)).code, bad).toBe('PKCS11_URI_PIN_SOURCE');
    }
  });

  it('accepts as key URIs only what the station can honour', () => {
    expect(parseKeyUri('pkcs11:token=station-ca;object=k;type=private?pin-source=env:PIN').object).toBe('k');
    expect(parseKeyUri('pkcs11:object=k').type).toBeUndefined();
    const refused = [
      'pkcs11:object=k;type=cert',
      'pkcs11:object=k?module-name=softhsm2',
      'pkcs11:slot-id=1;object=k',
      'pkcs11:library-description=x;object=k',
      'pkcs11:object=k?module-path=relative/lib.so',
      'pkcs11:object=k?pin-source=%7C/bin/pin',
      `pkcs11:token=${'x'.repeat(33)};object=k`,
    ];
    for (const text of refused) expect(['PKCS11_URI_UNSUPPORTED', 'PKCS11_URI_PIN_SOURCE'], text).toContain(errorOf(() => parseKeyUri(text)).code);
  });
});
