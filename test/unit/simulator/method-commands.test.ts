/**
 * The simulated firmware's method commands through VirtualDevice.handleRequest: seed derivation
 * (method 5), method gating, and the BRSKI voucher-request / voucher check with every refusal.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { deriveSeedPublicKeySpki } from '../../../src/core/seed-derivation';
import { parseVoucherJws, signVoucherJws, verifyVoucherJws } from '../../../src/core/voucher';
import { tlv } from '../../../src/device/framing/tlv';
import { Command, Item, KeyLocation, Tag } from '../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../src/device/protocol/status';
import type { VirtualDevice } from '../../../src/simulator/virtual-device';
import { derSign, issueEndEntity, makeMasa, makeSoftwareCa, newKeyPair, type SoftwareCa } from '../../helpers/test-certs';
import { call, ok, virtualDevice } from '../../helpers/virtual-device-calls';

describe('DERIVE_SEED_KEY (method 5)', () => {
  it('derives the key the station derives from the same seed and chip id, once', () => {
    const device = virtualDevice('seed-derived');
    const { seed, chipId } = device.current;
    const spki = ok(call(device, Command.DERIVE_SEED_KEY)).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY');
    expect(spki).toEqual(deriveSeedPublicKeySpki(seed!, chipId!));
    expect(device.current.birthKey?.origin).toBe('seed-derived');
    const again = call(device, Command.DERIVE_SEED_KEY);
    expect(again.status).toBe(DeviceStatus.BAD_STATE);
    // After a rework the same seed gives the same key again.
    ok(call(device, Command.REWORK, [tlv.bytes(Tag.REWORK_AUTH, device.current.hardwareId)]));
    expect(ok(call(device, Command.DERIVE_SEED_KEY)).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY')).toEqual(spki);
  });

  it('is UNSUPPORTED on other devices, and READ_SE_INFO without a pre-provisioned SE too', () => {
    expect(call(virtualDevice('on-device-keygen'), Command.DERIVE_SEED_KEY).status).toBe(DeviceStatus.UNSUPPORTED);
    expect(call(virtualDevice('factory-injected-key'), Command.DERIVE_SEED_KEY).status).toBe(DeviceStatus.UNSUPPORTED);
    for (const m of ['on-device-keygen', 'factory-injected-key', 'seed-derived'] as const) {
      expect(call(virtualDevice(m), Command.READ_SE_INFO).status).toBe(DeviceStatus.UNSUPPORTED);
    }
    expect(call(virtualDevice('se-preprovisioned'), Command.READ_SE_INFO).status).toBe(DeviceStatus.SE_ERROR);
  });
});

describe('BRSKI voucher-request and voucher on the device', () => {
  const serial = 'DEMO-000007';
  let idevidCa: SoftwareCa;
  let masa: Awaited<ReturnType<typeof makeMasa>>;
  let otherMasa: Awaited<ReturnType<typeof makeMasa>>;

  beforeAll(async () => {
    idevidCa = await makeSoftwareCa('Test IDevID CA');
    masa = await makeMasa();
    otherMasa = await makeMasa();
  });

  /** A device with a birth key, an IDevID chain and (optionally) the MASA trust anchor. */
  async function provisioned(withAnchor = true): Promise<{ device: VirtualDevice; leaf: Buffer; spki: Buffer }> {
    const device = virtualDevice('on-device-keygen');
    const spki = ok(call(device, Command.GENERATE_KEY, [tlv.u8(Tag.KEY_LOCATION, KeyLocation.DEVICE)])).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY');
    ok(call(device, Command.GET_CSR, [tlv.string(Tag.SUBJECT_SERIAL, serial)]));
    const leaf = await issueEndEntity(idevidCa, spki, { cn: 'DemoSensor-1', serial });
    ok(call(device, Command.INSTALL_CHAIN, [tlv.bytes(Tag.CERTIFICATE, leaf), tlv.bytes(Tag.CERTIFICATE, idevidCa.certificate)]));
    if (withAnchor) ok(call(device, Command.WRITE_ITEM, [tlv.u8(Tag.ITEM_ID, Item.MASA_TRUST_ANCHOR), tlv.bytes(Tag.ITEM_VALUE, masa.ca.certificate)]));
    return { device, leaf, spki };
  }

  function voucherRequest(device: VirtualDevice, nonce: Buffer, extra: Parameters<typeof tlv.bytes>[] = []) {
    return call(device, Command.BUILD_VOUCHER_REQUEST, [tlv.bytes(Tag.NONCE, nonce), ...extra.map(([t, v]) => tlv.bytes(t, v))]);
  }

  function voucher(fields: Record<string, unknown>, opts: { key?: Parameters<typeof derSign>[0]; x5c?: Buffer[] } = {}): Buffer {
    const jws = signVoucherJws({ 'ietf-voucher:voucher': fields }, opts.x5c ?? [masa.signingCert], derSign(opts.key ?? masa.signingKey));
    return Buffer.from(jws, 'utf8');
  }

  const fieldsFor = (nonce: Buffer, over: Record<string, unknown> = {}) => ({
    assertion: 'logged',
    'created-on': new Date().toISOString(),
    'serial-number': serial,
    nonce: nonce.toString('base64'),
    'pinned-domain-cert': Buffer.from('registrar domain CA').toString('base64'),
    ...over,
  });

  const verify = (device: VirtualDevice, v: Buffer) => call(device, Command.VERIFY_VOUCHER, [tlv.bytes(Tag.VOUCHER, v)]);

  it('builds a pledge voucher-request signed with the birth key, x5c = the IDevID chain', async () => {
    const { device, leaf, spki } = await provisioned();
    const nonce = randomBytes(16);
    const registrar = (await makeSoftwareCa('Registrar')).certificate;
    const createdOn = '2026-03-01T12:00:00.000Z';
    const jws = ok(voucherRequest(device, nonce, [[Tag.REGISTRAR_CERT, registrar], [Tag.CREATED_ON, Buffer.from(createdOn)]])).required(Tag.VOUCHER_REQUEST, 'VOUCHER_REQUEST');
    const parsed = parseVoucherJws(jws.toString('utf8'));
    expect(parsed.header).toEqual({ alg: 'ES256', typ: 'voucher-jws+json', x5c: [leaf.toString('base64'), idevidCa.certificate.toString('base64')] });
    expect(parsed.payload).toEqual({
      'ietf-voucher-request:voucher': {
        assertion: 'proximity',
        'created-on': createdOn,
        'serial-number': serial,
        nonce: nonce.toString('base64'),
        'proximity-registrar-cert': registrar.toString('base64'),
      },
    });
    expect(verifyVoucherJws(jws, spki)).toBe(true);
    expect(device.current.voucherNonce).toEqual(nonce);
  });

  it('refuses a voucher-request before the IDevID, and malformed inputs', async () => {
    const device = virtualDevice('on-device-keygen');
    expect(voucherRequest(device, randomBytes(16)).status).toBe(DeviceStatus.BAD_STATE);
    ok(call(device, Command.GENERATE_KEY, [tlv.u8(Tag.KEY_LOCATION, KeyLocation.DEVICE)]));
    const r = voucherRequest(device, randomBytes(16));
    expect(r.status).toBe(DeviceStatus.BAD_STATE);
    expect(r.detail).toBe('no IDevID installed');
    const { device: d2 } = await provisioned();
    expect(voucherRequest(d2, randomBytes(4)).status).toBe(DeviceStatus.BAD_REQUEST);
    expect(voucherRequest(d2, randomBytes(16), [[Tag.CREATED_ON, Buffer.from('yesterday')]]).status).toBe(DeviceStatus.BAD_REQUEST);
    expect(voucherRequest(d2, randomBytes(16), [[Tag.REGISTRAR_CERT, Buffer.from('not a cert')]]).status).toBe(DeviceStatus.BAD_REQUEST);
    expect(call(d2, Command.BUILD_VOUCHER_REQUEST).status).toBe(DeviceStatus.BAD_REQUEST);
  });

  it('verifies a voucher from the MASA for its nonce and serial; the nonce is then spent', async () => {
    const { device } = await provisioned();
    const nonce = randomBytes(16);
    ok(voucherRequest(device, nonce));
    const v = voucher(fieldsFor(nonce));
    expect(verify(device, v).status).toBe(DeviceStatus.OK);
    expect(device.current.voucherNonce).toBeUndefined();
    const replay = verify(device, v);
    expect(replay.status).toBe(DeviceStatus.BAD_STATE);
  });

  it('accepts a voucher signed by the trust anchor itself', async () => {
    const { device } = await provisioned();
    const nonce = randomBytes(16);
    ok(voucherRequest(device, nonce));
    expect(verify(device, voucher(fieldsFor(nonce), { key: masa.ca.key, x5c: [masa.ca.certificate] })).status).toBe(DeviceStatus.OK);
  });

  it('needs the MASA trust anchor and an outstanding voucher-request (BAD_STATE)', async () => {
    const { device } = await provisioned(false);
    const nonce = randomBytes(16);
    ok(voucherRequest(device, nonce));
    const r = verify(device, voucher(fieldsFor(nonce)));
    expect(r.status).toBe(DeviceStatus.BAD_STATE);
    expect(r.detail).toBe('no MASA trust anchor installed');
    const { device: d2 } = await provisioned();
    expect(verify(d2, voucher(fieldsFor(nonce))).detail).toMatch(/no voucher-request outstanding/);
  });

  it('refuses each bad voucher with VERIFY_FAILED and a precise detail, keeping the nonce', async () => {
    const { device } = await provisioned();
    const nonce = randomBytes(16);
    ok(voucherRequest(device, nonce));
    const stranger = newKeyPair();
    const cases: Array<[Buffer, string | RegExp]> = [
      [voucher(fieldsFor(randomBytes(16))), 'voucher nonce does not match'],
      [voucher(fieldsFor(nonce, { 'serial-number': 'DEMO-000008' })), 'voucher serial-number does not match this device'],
      [voucher(fieldsFor(nonce), { key: otherMasa.signingKey, x5c: [otherMasa.signingCert] }), 'voucher not signed by the MASA trust anchor'],
      [voucher(fieldsFor(nonce), { key: stranger.key }), 'voucher signature does not verify with its x5c signer certificate'],
      [voucher(fieldsFor(nonce, { assertion: undefined })), 'voucher has no valid assertion'],
      [voucher(fieldsFor(nonce, { assertion: 'trust-me' })), 'voucher has no valid assertion'],
      [voucher(fieldsFor(nonce, { 'pinned-domain-cert': undefined })), 'voucher has no pinned-domain-cert'],
      [voucher(fieldsFor(nonce, { 'expires-on': '2020-01-01T00:00:00Z' })), 'voucher has expired'],
      [voucher(fieldsFor(nonce), { x5c: [] }), 'voucher has no x5c signer certificate'],
      [voucher(fieldsFor(nonce), { x5c: [Buffer.from('junk')] }), 'voucher x5c[0] is not a DER certificate'],
      [Buffer.from(signVoucherJws({ 'ietf-voucher-request:voucher': fieldsFor(nonce) }, [masa.signingCert], derSign(masa.signingKey))), 'voucher payload has no ietf-voucher:voucher object'],
      [Buffer.from('definitely.not.a-jws!'), /^voucher is not a compact JWS/],
    ];
    for (const [v, detail] of cases) {
      const r = verify(device, v);
      expect(r.status, String(detail)).toBe(DeviceStatus.VERIFY_FAILED);
      if (typeof detail === 'string') expect(r.detail).toBe(detail);
      else expect(r.detail).toMatch(detail);
    }
    // Tampered payload after signing.
    const good = voucher(fieldsFor(nonce)).toString('utf8').split('.');
    const forged = Buffer.from(JSON.stringify({ 'ietf-voucher:voucher': fieldsFor(nonce, { assertion: 'verified' }) })).toString('base64url');
    expect(verify(device, Buffer.from(`${good[0]}.${forged}.${good[2]}`)).detail).toBe('voucher signature does not verify with its x5c signer certificate');
    // The nonce survives failures: the right voucher still passes.
    expect(verify(device, voucher(fieldsFor(nonce))).status).toBe(DeviceStatus.OK);
  });

  it('keeps working after LOCK (BRSKI happens in the field)', async () => {
    const { device } = await provisioned();
    ok(call(device, Command.LOCK));
    const nonce = randomBytes(16);
    ok(voucherRequest(device, nonce));
    expect(verify(device, voucher(fieldsFor(nonce))).status).toBe(DeviceStatus.OK);
  });
});
