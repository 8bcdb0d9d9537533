/**
 * Each method's device commands against the real simulator over a real PTY: `station-sim start`
 * as its own process, the station's SerialTransport + DeviceConnection + DeviceClient on the
 * other end. Every method ends with the BRSKI exchange the product promises: a pledge
 * voucher-request signed with the birth key, and a MASA voucher the device checks against the
 * trust anchor installed at the factory (a wrong nonce is refused with DEVICE_VERIFY_FAILED).
 */
import { createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, createCipheriv, randomBytes, verify as nodeVerify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, KeyUsage, id_ce_keyUsage } from '@peculiar/asn1-x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MethodId } from '../../src/core/method-id';
import { parseVoucherCms, signVoucherCms, voucherCmsSignatureProblem } from '../../src/core/voucher-cms';
import type { DeviceClient, DeviceIdentity } from '../../src/device/device-client';
import { CHALLENGE_CONTEXT, challengeMessage } from '../../src/device/protocol/challenge';
import { Item, KeyLocation } from '../../src/device/protocol/commands';
import { OID_COMMON_NAME, OID_SERIAL_NUMBER, nameValue, toPem, verifyCertificateSignature } from '../../src/hsm/ca/x509-builder';
import { testDir } from '../helpers/station-cli';
import { openDeviceClient, startSimLine, type SimLineProcess } from '../helpers/station-sim-line';
import { derSign, issueEndEntity, makeMasa, makeSoftwareCa, type SoftwareCa } from '../helpers/test-certs';
import { openssl } from '../helpers/tools';

const spkiOf = (der: Buffer) => Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate).tbsCertificate.subjectPublicKeyInfo));

let idevidCa: SoftwareCa;
let masa: Awaited<ReturnType<typeof makeMasa>>;
let registrar: SoftwareCa;

beforeAll(async () => {
  idevidCa = await makeSoftwareCa('Test IDevID CA');
  masa = await makeMasa();
  registrar = await makeSoftwareCa('Test Registrar');
});

/** Start a one-port line for `method`, open the device, HELLO + IDENTIFY. */
function onSimulatedDevice(method: MethodId, body: (ctx: { client: () => DeviceClient; identity: () => DeviceIdentity; dir: () => string }) => void): void {
  describe(`station-sim --method ${method}`, () => {
    let sim: SimLineProcess;
    let dev: Awaited<ReturnType<typeof openDeviceClient>>;
    let identity: DeviceIdentity;
    let dir: string;

    beforeAll(async () => {
      dir = testDir(`sim-${method}`);
      sim = await startSimLine({ method, dir: join(dir, 'sim') });
      dev = await openDeviceClient(sim.ports[0]!);
      expect(await dev.client.hello()).toBe(1);
      identity = await dev.client.identify();
    });

    afterAll(async () => {
      await dev?.close();
      await sim?.stop();
    });

    it('identifies with this method only', () => {
      expect(identity.methods).toEqual([method]);
      expect(identity.capabilities.brski).toBe(true);
      expect(identity.locked).toBe(false);
    });

    body({ client: () => dev.client, identity: () => identity, dir: () => dir });
  });
}

/** Issue an IDevID for the birth key, install it, then run the BRSKI exchange. */
async function installAndRunBrski(client: DeviceClient, serial: string, birthSpki: Buffer): Promise<void> {
  const leaf = await issueEndEntity(idevidCa, birthSpki, { cn: 'DemoSensor-1', serial });
  await client.installChain([leaf, idevidCa.certificate]);
  expect(await client.readItem(Item.IDEVID_CHAIN)).toEqual([leaf, idevidCa.certificate]);

  // Voucher verification needs the MASA trust anchor, installed at the factory.
  const early = randomBytes(16);
  await client.buildVoucherRequest({ nonce: early });
  await expect(client.verifyVoucher(Buffer.from('x.y.z'))).rejects.toMatchObject({ code: 'DEVICE_BAD_STATE' });
  await client.writeItem(Item.MASA_TRUST_ANCHOR, masa.ca.certificate);
  expect(await client.readItem(Item.MASA_TRUST_ANCHOR)).toEqual([masa.ca.certificate]);

  const nonce = randomBytes(16);
  const createdOn = new Date('2026-05-01T08:00:00.000Z');
  const request = await client.buildVoucherRequest({ nonce, registrarCertificate: registrar.certificate, createdOn });
  const parsed = parseVoucherCms(request);
  expect(parsed.certificates).toEqual([leaf, idevidCa.certificate]);
  expect(voucherCmsSignatureProblem(parsed, leaf)).toBeNull(); // the leaf certifies birthSpki
  expect(parsed.json).toEqual({
    'ietf-voucher-request:voucher': {
      assertion: 'proximity',
      'created-on': createdOn.toISOString(),
      'serial-number': serial,
      nonce: nonce.toString('base64'),
      'proximity-registrar-cert': registrar.certificate.toString('base64'),
    },
  });

  // What the MASA answers: a voucher for this serial and nonce, signed by its voucher key.
  const voucherFor = (n: Buffer) =>
    Buffer.from(
      signVoucherCms(
        {
          'ietf-voucher:voucher': {
            assertion: 'logged',
            'created-on': new Date().toISOString(),
            'serial-number': serial,
            nonce: n.toString('base64'),
            'pinned-domain-cert': registrar.certificate.toString('base64'),
          },
        },
        { certificates: [masa.signingCert, masa.ca.certificate], sign: derSign(masa.signingKey) },
      ),
    );
  const wrong = client.verifyVoucher(voucherFor(randomBytes(16)));
  await expect(wrong).rejects.toMatchObject({ code: 'DEVICE_VERIFY_FAILED' });
  await expect(wrong).rejects.toThrow(/voucher nonce does not match/);
  await expect(client.verifyVoucher(voucherFor(nonce))).resolves.toBeUndefined();
}

async function checkChallenge(client: DeviceClient, serial: string, birthSpki: Buffer): Promise<void> {
  const nonce = randomBytes(32);
  const sig = await client.signChallenge(nonce, serial, CHALLENGE_CONTEXT);
  expect(nodeVerify('sha256', challengeMessage(nonce, serial), { key: birthSpki, format: 'der', type: 'spki' }, sig)).toBe(true);
}

onSimulatedDevice('on-device-keygen', ({ client }) => {
  it('generates the birth key with the device RNG, not in an SE; refuses other methods\' commands', async () => {
    const c = client();
    await expect(c.generateKey(KeyLocation.SECURE_ELEMENT)).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    await expect(c.getTransportKey()).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    await expect(c.deriveSeedKey()).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    await expect(c.readSeInfo()).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    const spki = await c.generateKey(KeyLocation.DEVICE);
    expect(createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    await expect(c.generateKey(KeyLocation.DEVICE)).rejects.toMatchObject({ code: 'DEVICE_BAD_STATE' });
    const csr = await c.getCsr('DEMO-100001');
    expect(csr.includes(spki.subarray(26))).toBe(true);
    await checkChallenge(c, 'DEMO-100001', spki);
    await installAndRunBrski(c, 'DEMO-100001', spki);
  });
});

onSimulatedDevice('secure-element-keygen', ({ client }) => {
  it('generates the birth key in the SE, and runs BRSKI with it', async () => {
    const c = client();
    await expect(c.generateKey(KeyLocation.DEVICE)).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    const spki = await c.generateKey(KeyLocation.SECURE_ELEMENT);
    await c.getCsr('DEMO-200001');
    await installAndRunBrski(c, 'DEMO-200001', spki);
  });
});

onSimulatedDevice('factory-injected-key', ({ client }) => {
  it('installs a key wrapped for its transport key; a second install needs a new transport key', async () => {
    const c = client();
    await expect(c.generateKey(KeyLocation.DEVICE)).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    const serial = 'DEMO-300001';
    const birth = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const birthSpki = birth.publicKey.export({ format: 'der', type: 'spki' });
    const wrapFor = (transportSpki: Buffer) => {
      // The station's side, in node here (in the HSM in production): ECDH, HKDF, AES key wrap with padding.
      const eph = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const z = diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey({ key: transportSpki, format: 'der', type: 'spki' }) });
      const kek = Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), Buffer.from(`inject-v1${serial}`, 'utf8'), 32));
      const cipher = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'));
      const wrappedKey = Buffer.concat([cipher.update(birth.privateKey.export({ format: 'der', type: 'pkcs8' })), cipher.final()]);
      return { hsmPublicKey: eph.publicKey.export({ format: 'der', type: 'spki' }), wrappedKey, serial };
    };
    await expect(c.installWrappedKey(wrapFor(birthSpki))).rejects.toMatchObject({ code: 'DEVICE_BAD_STATE' });
    const transport = await c.getTransportKey();
    // Wrapped for another serial: the KEK differs, the unwrap fails its integrity check.
    await expect(c.installWrappedKey({ ...wrapFor(transport), serial: 'DEMO-300002' })).rejects.toMatchObject({ code: 'DEVICE_VERIFY_FAILED' });
    const transport2 = await c.getTransportKey();
    expect(transport2).not.toEqual(transport);
    expect(await c.installWrappedKey(wrapFor(transport2))).toEqual(birthSpki);
    await expect(c.installWrappedKey(wrapFor(transport2))).rejects.toMatchObject({ code: 'DEVICE_BAD_STATE' });
    expect(await c.getPublicKey()).toEqual(birthSpki);
    await checkChallenge(c, serial, birthSpki);
    await installAndRunBrski(c, serial, birthSpki);
  });
});

onSimulatedDevice('se-preprovisioned', ({ client, identity, dir }) => {
  it('reports the SE serial and the vendor certificate of the SE key, which openssl verifies', async () => {
    const c = client();
    // The SE arrives with its key: nothing to generate.
    await expect(c.generateKey(KeyLocation.SECURE_ELEMENT)).rejects.toMatchObject({ code: 'DEVICE_BAD_STATE' });
    const info = await c.readSeInfo();
    expect(info.seSerial).toBe(identity().secureElement!.serial);
    expect(info.certificates).toHaveLength(2);
    const [seCert, vendorCa] = info.certificates as [Buffer, Buffer];
    const spki = await c.getPublicKey();
    expect(spkiOf(seCert)).toEqual(spki);
    const cert = AsnConvert.parse(seCert, Certificate);
    expect(nameValue(cert.tbsCertificate.subject, OID_COMMON_NAME)).toBe(info.seSerial);
    expect(nameValue(cert.tbsCertificate.subject, OID_SERIAL_NUMBER)).toBe(info.seSerial);
    const ku = cert.tbsCertificate.extensions!.find((e) => e.extnID === id_ce_keyUsage)!;
    expect(ku.critical).toBe(true);
    expect(AsnConvert.parse(ku.extnValue.buffer, KeyUsage).toJSON()).toEqual(['digitalSignature']);
    verifyCertificateSignature(seCert, spkiOf(vendorCa));
    writeFileSync(join(dir(), 'se-vendor-ca.pem'), toPem(vendorCa));
    writeFileSync(join(dir(), 'se.pem'), toPem(seCert));
    const v = openssl(['verify', '-x509_strict', '-CAfile', join(dir(), 'se-vendor-ca.pem'), join(dir(), 'se.pem')]);
    expect(v.out).toContain('se.pem: OK');
    expect(v.code).toBe(0);
    // The same answer again: the SE was provisioned once, before the device existed.
    expect(await c.readSeInfo()).toEqual(info);

    await c.getCsr('DEMO-400001');
    await checkChallenge(c, 'DEMO-400001', spki);
    await installAndRunBrski(c, 'DEMO-400001', spki);
  });

  it('gives the next device on the port its own SE serial, key and vendor certificate', async () => {
    const c = client();
    const first = await c.readSeInfo();
    await c.hello(); // the operator swaps in the next device
    const next = await c.identify();
    const info = await c.readSeInfo();
    expect(info.seSerial).toBe(next.secureElement!.serial);
    expect(info.seSerial).not.toBe(first.seSerial);
    expect(info.certificates[0]).not.toEqual(first.certificates[0]);
  });
});

onSimulatedDevice('seed-derived', ({ client, identity }) => {
  it('derives its birth key from the vendor seed once, and runs BRSKI with it', async () => {
    const c = client();
    expect(identity().chipId).toMatch(/^[0-9a-f]{16}$/);
    await expect(c.generateKey(KeyLocation.DEVICE)).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    await expect(c.getTransportKey()).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    const spki = await c.deriveSeedKey();
    expect(createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    await expect(c.deriveSeedKey()).rejects.toMatchObject({ code: 'DEVICE_BAD_STATE' });
    expect(await c.getPublicKey()).toEqual(spki);
    await c.getCsr('DEMO-500001');
    await checkChallenge(c, 'DEMO-500001', spki);
    await installAndRunBrski(c, 'DEMO-500001', spki);
  });
});
