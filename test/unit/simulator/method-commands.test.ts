/**
 * The simulated firmware's method commands through VirtualDevice.handleRequest: seed derivation
 * (method 5), method gating, and the BRSKI voucher-request / voucher check with every refusal.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { deriveSeedPublicKeySpki } from '../../../src/core/seed-derivation';
import { parseVoucherCms, signVoucherCms, voucherCmsSignatureProblem } from '../../../src/core/voucher-cms';
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

  /** The MASA's voucher: CMS SignedData, signer certificate first in `certificates`. */
  function voucher(fields: Record<string, unknown>, opts: { key?: Parameters<typeof derSign>[0]; certificates?: Buffer[]; wrapper?: string } = {}): Buffer {
    return signVoucherCms({ [opts.wrapper ?? 'ietf-voucher:voucher']: fields }, { certificates: opts.certificates ?? [masa.signingCert], sign: derSign(opts.key ?? masa.signingKey) });
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

  it('builds a pledge voucher-request: CMS signed with the birth key, carrying the IDevID chain', async () => {
    const { device, leaf, spki } = await provisioned();
    const nonce = randomBytes(16);
    const registrar = (await makeSoftwareCa('Registrar')).certificate;
    const createdOn = '2026-03-01T12:00:00.000Z';
    const cms = ok(voucherRequest(device, nonce, [[Tag.REGISTRAR_CERT, registrar], [Tag.CREATED_ON, Buffer.from(createdOn)]])).required(Tag.VOUCHER_REQUEST, 'VOUCHER_REQUEST');
    const parsed = parseVoucherCms(cms);
    expect(parsed.certificates).toEqual([leaf, idevidCa.certificate]);
    expect(parsed.signerCertificate).toEqual(leaf);
    expect(parsed.json).toEqual({
      'ietf-voucher-request:voucher': {
        assertion: 'proximity',
        'created-on': createdOn,
        'serial-number': serial,
        nonce: nonce.toString('base64'),
        'proximity-registrar-cert': registrar.toString('base64'),
      },
    });
    expect(voucherCmsSignatureProblem(parsed, leaf)).toBeNull();
    expect(parsed.signingTime?.toISOString()).toBe(createdOn);
    // the signer is the IDevID over the birth key
    expect(new X509Certificate(leaf).publicKey.export({ format: 'der', type: 'spki' })).toEqual(spki);
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
    expect(verify(device, voucher(fieldsFor(nonce), { key: masa.ca.key, certificates: [masa.ca.certificate] })).status).toBe(DeviceStatus.OK);
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
      [voucher(fieldsFor(nonce), { key: otherMasa.signingKey, certificates: [otherMasa.signingCert] }), 'voucher not signed by the MASA trust anchor'],
      [voucher(fieldsFor(nonce), { key: stranger.key }), 'voucher signature does not verify: the CMS signature does not verify with the signer certificate'],
      [voucher(fieldsFor(nonce, { assertion: undefined })), 'voucher has no valid assertion'],
      [voucher(fieldsFor(nonce, { assertion: 'trust-me' })), 'voucher has no valid assertion'],
      [voucher(fieldsFor(nonce, { 'pinned-domain-cert': undefined })), 'voucher has no pinned-domain-cert'],
      [voucher(fieldsFor(nonce, { 'expires-on': '2020-01-01T00:00:00Z' })), 'voucher has expired'],
      [voucher(fieldsFor(nonce), { wrapper: 'ietf-voucher-request:voucher' }), 'voucher payload has no ietf-voucher:voucher object'],
      [Buffer.from('definitely.not.a-jws!'), /^voucher is not a CMS SignedData/],
    ];
    for (const [v, detail] of cases) {
      const r = verify(device, v);
      expect(r.status, String(detail)).toBe(DeviceStatus.VERIFY_FAILED);
      if (typeof detail === 'string') expect(r.detail).toBe(detail);
      else expect(r.detail).toMatch(detail);
    }
    // Tampered content after signing (same length: logged -> proxim would not fit; flip one letter).
    const good = voucher(fieldsFor(nonce));
    const at = good.indexOf(Buffer.from('"logged"'));
    const forged = Buffer.from(good);
    forged[at + 1] = 'L'.charCodeAt(0);
    expect(verify(device, forged).detail).toBe('voucher signature does not verify: the messageDigest signed attribute does not match the content');
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
