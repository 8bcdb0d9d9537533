/**
 * Method 3 against SoftHSM: what C_WrapKey(CKM_AES_KEY_WRAP_PAD) of an EC private key really
 * produces, and the whole station-side construction of contracts.md §7 done in the HSM
 * (CKM_ECDH1_DERIVE with CKD_NULL, HKDF-SHA256 in the process, the KEK imported as a WRAP-only
 * AES key, C_WrapKey), installed on the simulated device through INSTALL_WRAPPED_KEY.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zeroise } from '../../src/core/bytes';
import { p256PointFromSpki } from '../../src/core/ec-public-key';
import { tlv } from '../../src/device/framing/tlv';
import { Command, Tag } from '../../src/device/protocol/commands';
import { isPkcs11Error } from '../../src/hsm/pkcs11/ckr-names';
import { Pkcs11Library, pkcs11js as P, type Pkcs11Handle } from '../../src/hsm/pkcs11/pkcs11-library';
import { Pkcs11Token } from '../../src/hsm/pkcs11/pkcs11-token';
import { SOFTHSM_DEFAULT_MODULE, ensureSoftHsmConfig } from '../../src/hsm/pkcs11/softhsm-config';
import { aesKeyUnwrapPad, injectionKek, pkcs8FromUnwrapped } from '../../src/simulator/firmware/key-injection';
import { testDir } from '../helpers/station-cli';
import { call, ok, virtualDevice } from '../helpers/virtual-device-calls';

/** PKCS#8 { v0, { id-ecPublicKey, prime256v1 }, OCTET STRING { ECPrivateKey { 1, d } } } up to d. */
const P256_PKCS8_NO_PUBLIC_KEY_PREFIX = '3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420';

describe('SoftHSM key wrap and the method 3 construction', () => {
  let library: Pkcs11Library;
  let token: Pkcs11Token;
  let session: Pkcs11Handle;

  beforeAll(() => {
    process.env.SOFTHSM2_CONF = ensureSoftHsmConfig(join(testDir('softhsm-wrap'), 'hsm'));
    library = Pkcs11Library.open(SOFTHSM_DEFAULT_MODULE);
    library.initToken('wrap-test', 'so-pin-wrap-test', 'user-pin-wrap-test');
    token = Pkcs11Token.login(library, 'wrap-test', 'user-pin-wrap-test');
    // Session objects are visible to every session of this application; this one is ours.
    session = library.api.C_OpenSession(token.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  });

  afterAll(() => {
    library?.api.C_CloseSession(session);
    token?.close();
  });

  function aesKey(template: { extractable: boolean; value?: Buffer }): Pkcs11Handle {
    const common = [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_WRAP, value: true },
      { type: P.CKA_UNWRAP, value: false },
      { type: P.CKA_ENCRYPT, value: false },
      { type: P.CKA_DECRYPT, value: false },
      { type: P.CKA_SENSITIVE, value: !template.extractable },
      { type: P.CKA_EXTRACTABLE, value: template.extractable },
    ];
    if (template.value) return library.api.C_CreateObject(session, [...common, { type: P.CKA_VALUE, value: template.value }]);
    return library.api.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [...common, { type: P.CKA_VALUE_LEN, value: 32 }]);
  }

  const wrap = (kek: Pkcs11Handle, key: Pkcs11Handle) => library.api.C_WrapKey(session, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, kek, key, Buffer.alloc(512));

  it('C_WrapKey(CKM_AES_KEY_WRAP_PAD) of an EC key: 80 bytes; unwrapped, a 67-byte PKCS#8 zero-padded to 72', () => {
    const ec = token.generateEcP256KeyPair({ label: 'wrap-format', token: false, usage: { sign: true }, extractable: true });
    const kekHandle = aesKey({ extractable: true });
    const blob = wrap(kekHandle, ec.privateKey);
    expect(blob).toHaveLength(80);
    const kek = library.api.C_GetAttributeValue(session, kekHandle, [{ type: P.CKA_VALUE }])[0]!.value as Buffer;
    const plain = aesKeyUnwrapPad(kek, blob);
    // SoftHSM pads the DER to a multiple of 8 before RFC 5649 (whose own padding would not count).
    expect(plain).toHaveLength(72);
    expect(plain.subarray(0, 35).toString('hex')).toBe(P256_PKCS8_NO_PUBLIC_KEY_PREFIX);
    expect(plain.subarray(67)).toEqual(Buffer.alloc(5));
    const pkcs8 = pkcs8FromUnwrapped(plain);
    expect(pkcs8).toHaveLength(67);
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    expect(createPublicKey(key).export({ format: 'der', type: 'spki' })).toEqual(ec.spki);
    token.destroy(ec.privateKey);
    token.destroy(ec.publicKey);
  });

  it('refuses to wrap a non-extractable key (CKR_KEY_UNEXTRACTABLE)', () => {
    const ec = token.generateEcP256KeyPair({ label: 'not-extractable', token: false, usage: { sign: true }, extractable: false });
    const kek = aesKey({ extractable: false });
    let code: number | undefined;
    try {
      wrap(kek, ec.privateKey);
    } catch (err) {
      code = isPkcs11Error(err) ? err.code : undefined;
    }
    // CKR_KEY_UNEXTRACTABLE is 0x6a; pkcs11js exports no constant for it, so ckrName shows the number.
    expect(code).toBe(0x6a);
  });

  it('the station-side construction in the HSM installs on the simulated device', () => {
    const device = virtualDevice('factory-injected-key');
    const serial = 'DEMO-000042';
    const transportSpki = ok(call(device, Command.GET_TRANSPORT_KEY)).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY');

    // The prepared birth key (extractable only so that it can be wrapped) and an ephemeral ECDH key.
    const birth = token.generateEcP256KeyPair({ label: 'prepared-birth-key', token: false, usage: { sign: true }, extractable: true });
    const eph = token.generateEcP256KeyPair({ label: 'inject-ephemeral', token: false, usage: { derive: true } });
    // Z = CKM_ECDH1_DERIVE(CKD_NULL) as a session secret; HKDF runs in this process.
    const ecdh: P.ECDH1 = { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: p256PointFromSpki(transportSpki) };
    const zHandle = library.api.C_DeriveKey(
      session,
      { mechanism: P.CKM_ECDH1_DERIVE, parameter: ecdh },
      eph.privateKey,
      [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_SENSITIVE, value: false },
        { type: P.CKA_EXTRACTABLE, value: true },
      ],
    );
    const z = library.api.C_GetAttributeValue(session, zHandle, [{ type: P.CKA_VALUE }])[0]!.value as Buffer;
    library.api.C_DestroyObject(session, zHandle);
    expect(z).toHaveLength(32);
    const kek = injectionKek(z, serial);
    zeroise(z);
    const kekHandle = aesKey({ extractable: false, value: kek });
    zeroise(kek);
    const wrappedKey = wrap(kekHandle, birth.privateKey);
    library.api.C_DestroyObject(session, kekHandle);

    const reply = ok(
      call(device, Command.INSTALL_WRAPPED_KEY, [tlv.bytes(Tag.PEER_PUBLIC_KEY, eph.spki), tlv.bytes(Tag.WRAPPED_KEY, wrappedKey), tlv.string(Tag.SUBJECT_SERIAL, serial)]),
    );
    expect(reply.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY')).toEqual(birth.spki);
    expect(device.current.birthKey?.origin).toBe('injected');
    expect(device.current.serial).toBe(serial);
  });
});
