/**
 * Method 3 on the simulated device: GET_TRANSPORT_KEY / INSTALL_WRAPPED_KEY through
 * VirtualDevice.handleRequest. The station side is simulated here with node: ECDH with the
 * device's transport public key, HKDF-SHA256, AES-256 key wrap with padding. The vector of
 * docs/crypto-constructions.md §2 is checked against openssl.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlvReader, tlv } from '../../../src/device/framing/tlv';
import { Command, KeyLocation, Tag } from '../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../src/device/protocol/status';
import type { DeviceState } from '../../../src/simulator/firmware/device-state';
import { KeyInjection, aesKeyUnwrapPad, aesKeyWrapPad, injectionKek, pkcs8FromUnwrapped } from '../../../src/simulator/firmware/key-injection';
import { requireTool } from '../../helpers/tools';
import { call, ok, virtualDevice } from '../../helpers/virtual-device-calls';

const IV = Buffer.from('a65959a6', 'hex');

/** What the station does (in the HSM in production): returns the HSM public key and the blob. */
function stationWrap(transportSpki: Buffer, birthKey: KeyObject, serial: string): { hsmPublicKey: Buffer; wrappedKey: Buffer } {
  const eph = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const z = diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey({ key: transportSpki, format: 'der', type: 'spki' }) });
  expect(z).toHaveLength(32);
  const kek = Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), Buffer.concat([Buffer.from('inject-v1'), Buffer.from(serial, 'utf8')]), 32));
  const c = createCipheriv('id-aes256-wrap-pad', kek, IV);
  const wrappedKey = Buffer.concat([c.update(birthKey.export({ format: 'der', type: 'pkcs8' })), c.final()]);
  return { hsmPublicKey: eph.publicKey.export({ format: 'der', type: 'spki' }), wrappedKey };
}

function install(device: ReturnType<typeof virtualDevice>, w: { hsmPublicKey: Buffer; wrappedKey: Buffer }, serial: string) {
  return call(device, Command.INSTALL_WRAPPED_KEY, [tlv.bytes(Tag.PEER_PUBLIC_KEY, w.hsmPublicKey), tlv.bytes(Tag.WRAPPED_KEY, w.wrappedKey), tlv.string(Tag.SUBJECT_SERIAL, serial)]);
}

function transportKey(device: ReturnType<typeof virtualDevice>): Buffer {
  return ok(call(device, Command.GET_TRANSPORT_KEY)).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY');
}

describe('key injection on the simulated device (method 3)', () => {
  it('installs a wrapped key: same public key, origin injected, serial remembered, transport key gone', () => {
    const device = virtualDevice('factory-injected-key');
    const spki = transportKey(device);
    const tk = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    expect(tk.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(device.current.transportKey).toBeDefined();

    const birth = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const reply = ok(install(device, stationWrap(spki, birth.privateKey, 'DEMO-000001'), 'DEMO-000001'));
    const expected = birth.publicKey.export({ format: 'der', type: 'spki' });
    expect(reply.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY')).toEqual(expected);
    expect(device.current.birthKey?.origin).toBe('injected');
    expect(device.current.serial).toBe('DEMO-000001');
    expect(device.current.transportKey).toBeUndefined();
    expect(ok(call(device, Command.GET_PUBLIC_KEY)).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY')).toEqual(expected);

    // The installed key signs: a CSR for the serial, checked by its own public key in the CSR.
    const csr = ok(call(device, Command.GET_CSR, [tlv.string(Tag.SUBJECT_SERIAL, 'DEMO-000001')])).required(Tag.CSR, 'CSR');
    expect(csr.includes(expected.subarray(26))).toBe(true);

    // A second install needs a new transport key, and a device with a birth key refuses both.
    const again = install(device, stationWrap(spki, birth.privateKey, 'DEMO-000001'), 'DEMO-000001');
    expect(again.status).toBe(DeviceStatus.BAD_STATE);
    expect(call(device, Command.GET_TRANSPORT_KEY).status).toBe(DeviceStatus.BAD_STATE);
  });

  it('refuses an install without a transport key (BAD_STATE), then a consumed one', () => {
    const device = virtualDevice('factory-injected-key');
    const birth = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const fake = stationWrap(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' }), birth, 'S1');
    const r = install(device, fake, 'S1');
    expect(r.status).toBe(DeviceStatus.BAD_STATE);
    expect(r.detail).toMatch(/no transport key/);

    // A failed unwrap consumes the transport key: the retry needs GET_TRANSPORT_KEY again.
    const spki = transportKey(device);
    expect(install(device, stationWrap(spki, birth, 'S1'), 'S2').status).toBe(DeviceStatus.VERIFY_FAILED);
    expect(install(device, stationWrap(spki, birth, 'S1'), 'S1').status).toBe(DeviceStatus.BAD_STATE);
    const spki2 = transportKey(device);
    expect(ok(install(device, stationWrap(spki2, birth, 'S1'), 'S1')).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY')).toEqual(createPublicKey(birth).export({ format: 'der', type: 'spki' }));
  });

  it('answers VERIFY_FAILED for a key wrapped for another transport key or another serial', () => {
    const device = virtualDevice('factory-injected-key');
    const birth = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    transportKey(device);
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
    const r = install(device, stationWrap(other, birth, 'S1'), 'S1');
    expect(r.status).toBe(DeviceStatus.VERIFY_FAILED);
    expect(r.detail).toMatch(/integrity check/);
    expect(device.current.birthKey).toBeUndefined();
    const spki = transportKey(device);
    expect(install(device, stationWrap(spki, birth, 'S1'), 'S1 ').status).toBe(DeviceStatus.VERIFY_FAILED);
  });

  it('answers BAD_REQUEST for a malformed peer key, blob, serial or unwrapped key', () => {
    const device = virtualDevice('factory-injected-key');
    const birth = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    let spki = transportKey(device);
    const good = stationWrap(spki, birth, 'S1');
    expect(install(device, { ...good, hsmPublicKey: Buffer.from('3003020101', 'hex') }, 'S1').detail).toMatch(/PEER_PUBLIC_KEY is not a DER/);
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' });
    expect(install(device, { ...good, hsmPublicKey: x25519 }, 'S1').detail).toMatch(/not an EC P-256 key/);
    expect(install(device, { ...good, wrappedKey: good.wrappedKey.subarray(0, 20) }, 'S1').detail).toMatch(/not an AES key-wrap/);
    expect(install(device, good, 'bad;serial').status).toBe(DeviceStatus.BAD_REQUEST);
    expect(call(device, Command.INSTALL_WRAPPED_KEY, [tlv.bytes(Tag.PEER_PUBLIC_KEY, good.hsmPublicKey)]).status).toBe(DeviceStatus.BAD_REQUEST);
    // Input checks do not consume the transport key: the good request still installs.
    expect(install(device, good, 'S1').status).toBe(DeviceStatus.OK);

    // A blob that unwraps (right KEK) to something other than a P-256 PKCS#8 key.
    const d2 = virtualDevice('factory-injected-key');
    spki = transportKey(d2);
    const eph = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const kek = injectionKek(diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }) }), 'S1');
    const hsmPublicKey = eph.publicKey.export({ format: 'der', type: 'spki' });
    const r = install(d2, { hsmPublicKey, wrappedKey: aesKeyWrapPad(kek, Buffer.from('not a key at all')) }, 'S1');
    expect(r.status).toBe(DeviceStatus.BAD_REQUEST);
    expect(r.detail).toMatch(/not a PKCS#8/);
    spki = transportKey(d2);
    const eph2 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const kek2 = injectionKek(diffieHellman({ privateKey: eph2.privateKey, publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }) }), 'S1');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ format: 'der', type: 'pkcs8' });
    const r2 = install(d2, { hsmPublicKey: eph2.publicKey.export({ format: 'der', type: 'spki' }), wrappedKey: aesKeyWrapPad(kek2, p384) }, 'S1');
    expect(r2.detail).toMatch(/not an EC P-256 private key/);
  });

  it('is UNSUPPORTED on a device built for another method', () => {
    for (const method of ['on-device-keygen', 'seed-derived'] as const) {
      const device = virtualDevice(method);
      expect(call(device, Command.GET_TRANSPORT_KEY).status).toBe(DeviceStatus.UNSUPPORTED);
      expect(install(device, { hsmPublicKey: Buffer.alloc(0), wrappedKey: Buffer.alloc(0) }, 'S1').status).toBe(DeviceStatus.UNSUPPORTED);
    }
    // and a device built for injection cannot generate its own key
    expect(call(virtualDevice('factory-injected-key'), Command.GENERATE_KEY, [tlv.u8(Tag.KEY_LOCATION, KeyLocation.DEVICE)]).status).toBe(DeviceStatus.UNSUPPORTED);
  });

  it('strips exactly SoftHSM\'s zero padding after the PKCS#8 DER, nothing else', () => {
    const der = Buffer.from('3003020101', 'hex');
    expect(pkcs8FromUnwrapped(Buffer.concat([der, Buffer.alloc(3)]))).toEqual(der);
    expect(pkcs8FromUnwrapped(der)).toEqual(der);
    expect(() => pkcs8FromUnwrapped(Buffer.concat([der, Buffer.alloc(8)]))).toThrow();
    expect(() => pkcs8FromUnwrapped(Buffer.concat([der, Buffer.from([0, 1])]))).toThrow();
    expect(() => pkcs8FromUnwrapped(Buffer.from('300501', 'hex'))).toThrow();
  });
});

/** docs/crypto-constructions.md §2, test vector. */
const V = {
  dT: 'c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721',
  dH: '519b423d715f8b581f4fa8ee59f4771a5b44c8130b4e3eacca54a56dda72b464',
  dB: '0f56db78ca460b055c500064824bed999a25aaf48ebb519ac201537b85479813',
  serial: 'DEMO-000001',
  transportSpki: '3059301306072a8648ce3d020106082a8648ce3d0301070342000460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299',
  hsmSpki: '3059301306072a8648ce3d020106082a8648ce3d030107034200041ccbe91c075fc7f4f033bfa248db8fccd3565de94bbfb12f3c59ff46c271bf83ce4014c68811f9a21a1fdb2c0e6113e06db7ca93b7404e78dc7ccd5ca89a4ca9',
  birthSpki: '3059301306072a8648ce3d020106082a8648ce3d03010703420004e266ddfdc12668db30d4ca3e8f7749432c416044f2d2b8c10bf3d4012aeffa8abfa86404a2e9ffe67d47c587ef7a97a7f456b863b4d02cfc6928973ab5b1cb39',
  z: '874cc88baf56772eba61b4ccb240ed93d96f2345b346d0e7f9d58a3a555535d0',
  info: '696e6a6563742d763144454d4f2d303030303031',
  kek: '8dc9c423dd96686699aed748d33ce426f7b5a25b33ede97fa80f8bed539154c2',
  /** PKCS#8 as SoftHSM's C_WrapKey encodes it: 67 bytes of DER, zero-padded to 72. */
  plaintext: '3041020100301306072a8648ce3d020106082a8648ce3d0301070427302502010104200f56db78ca460b055c500064824bed999a25aaf48ebb519ac201537b854798130000000000',
  wrapped: '56157f4a818a8d4f56e17399266810ce0a4414d07bbdd710b56e6aa93664d027afc68d37e55963794b05fef0a4d6f8d4e11c660456b6b10a9b6b72c8af90a20d9a7e626c713e0407e396e74c39a2ec1c',
  /** The same key without SoftHSM's padding (the 67-byte PKCS#8 wrapped as is). */
  wrappedUnpadded: '79da1ddf93235e5a71bc528bcd9385e30e571730df1748abf4d1008ef7de949dac3f2607586a3daa6e65d62ffd5c2846765814fb63bdb7313151c1ec554b3129652935790ac9fd6d8e6057ccece9d7a4',
};

const sec1 = (d: string) => Buffer.from(`30310201010420${d}a00a06082a8648ce3d030107`, 'hex');

function openssl(args: string[], input?: Buffer): Buffer {
  requireTool('openssl', 'openssl');
  const r = spawnSync('openssl', args, { input });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr.toString()}`);
  return r.stdout;
}

describe('key injection test vector (docs/crypto-constructions.md §2)', () => {
  it('agrees with openssl: pkeyutl -derive, kdf HKDF, enc -id-aes256-wrap-pad', () => {
    const dir = mkdtempSync(join(tmpdir(), 'inject-vector-'));
    writeFileSync(join(dir, 't.der'), sec1(V.dT));
    writeFileSync(join(dir, 'h.pub.der'), Buffer.from(V.hsmSpki, 'hex'));
    expect(openssl(['ec', '-inform', 'DER', '-pubout', '-outform', 'DER'], sec1(V.dT)).toString('hex')).toBe(V.transportSpki);
    expect(openssl(['ec', '-inform', 'DER', '-pubout', '-outform', 'DER'], sec1(V.dH)).toString('hex')).toBe(V.hsmSpki);
    expect(openssl(['ec', '-inform', 'DER', '-pubout', '-outform', 'DER'], sec1(V.dB)).toString('hex')).toBe(V.birthSpki);
    const z = openssl(['pkeyutl', '-derive', '-inkey', join(dir, 't.der'), '-keyform', 'DER', '-peerkey', join(dir, 'h.pub.der'), '-peerform', 'DER']).toString('hex');
    expect(z).toBe(V.z);
    expect(Buffer.concat([Buffer.from('inject-v1'), Buffer.from(V.serial)]).toString('hex')).toBe(V.info);
    const kek = openssl(['kdf', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${z}`, '-kdfopt', `hexinfo:${V.info}`, 'HKDF']).toString().trim().replace(/:/g, '').toLowerCase();
    expect(kek).toBe(V.kek);
    expect(openssl(['enc', '-id-aes256-wrap-pad', '-K', kek, '-iv', 'A65959A6'], Buffer.from(V.plaintext, 'hex')).toString('hex')).toBe(V.wrapped);
    expect(openssl(['enc', '-id-aes256-wrap-pad', '-K', kek, '-iv', 'A65959A6'], Buffer.from(V.plaintext, 'hex').subarray(0, 67)).toString('hex')).toBe(V.wrappedUnpadded);
    rmSync(dir, { recursive: true });
    // Our helpers give the same bytes.
    expect(injectionKek(Buffer.from(V.z, 'hex'), V.serial).toString('hex')).toBe(V.kek);
    expect(aesKeyWrapPad(Buffer.from(V.kek, 'hex'), Buffer.from(V.plaintext, 'hex')).toString('hex')).toBe(V.wrapped);
    expect(aesKeyUnwrapPad(Buffer.from(V.kek, 'hex'), Buffer.from(V.wrapped, 'hex')).toString('hex')).toBe(V.plaintext);
  });

  it('installs the vector\'s birth key on a device holding the vector\'s transport key', () => {
    const transport: KeyObject = createPrivateKey({ key: sec1(V.dT), format: 'der', type: 'sec1' });
    for (const wrapped of [V.wrapped, V.wrappedUnpadded]) {
      const state = { birthKey: undefined, transportKey: transport, serial: undefined } as unknown as DeviceState;
      const items = new KeyInjection({ method: 'factory-injected-key', se: undefined }).installWrappedKey(
        state,
        new TlvReader([tlv.bytes(Tag.PEER_PUBLIC_KEY, Buffer.from(V.hsmSpki, 'hex')), tlv.bytes(Tag.WRAPPED_KEY, Buffer.from(wrapped, 'hex')), tlv.string(Tag.SUBJECT_SERIAL, V.serial)]),
      );
      expect(items[0]!.value.toString('hex')).toBe(V.birthSpki);
      expect(state.birthKey?.origin).toBe('injected');
      expect(state.transportKey).toBeUndefined();
    }
  });
});
