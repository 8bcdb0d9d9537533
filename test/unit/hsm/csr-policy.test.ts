/**
 * CSR policy beyond proof of possession: requested extensions (PKCS#9 extensionRequest) must be
 * ones the profile issues, and a key already certified for another device is refused, both in
 * checkCsr (through the journal's findDeviceByPublicKey) and in the issuer itself.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import {
  AlgorithmIdentifier,
  Attribute,
  BasicConstraints,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  OtherName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_kp_clientAuth,
} from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { toArrayBuffer } from '../../../src/core/bytes';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import { OID_EXTENSION_REQUEST, checkCsr } from '../../../src/hsm/ca/csr-check';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { HardwareModuleName, OID_HARDWARE_MODULE_NAME, OID_MASA_URL } from '../../../src/hsm/ca/idevid-profile';
import { buildName, derIa5String, extension } from '../../../src/hsm/ca/x509-builder';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import { makeSoftwareCa, softwareSigner } from '../../helpers/test-certs';

const demo = defaultStationConfig().products['demo-sensor']!;

function deviceKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { spki, sha256: createHash('sha256').update(spki).digest('hex'), sign: (d: Buffer) => sign('sha256', d, { key: privateKey, dsaEncoding: 'der' }) };
}

/** A P-256 CSR for `serial` with an extensionRequest holding `extensions` (none: no attribute). */
function csrWith(key: ReturnType<typeof deviceKey>, serial: string, extensions: Extension[] = []): Buffer {
  const attributes = new Attributes(
    extensions.length ? [new Attribute({ type: OID_EXTENSION_REQUEST, values: [AsnConvert.serialize(new Extensions(extensions))] })] : [],
  );
  const info = new CertificationRequestInfo({
    version: 0,
    subject: buildName([
      { oid: '2.5.4.3', value: demo.model },
      { oid: '2.5.4.5', value: serial },
    ]),
    subjectPKInfo: AsnConvert.parse(key.spki, SubjectPublicKeyInfo),
    attributes,
  });
  const signature = key.sign(Buffer.from(AsnConvert.serialize(info)));
  return Buffer.from(
    AsnConvert.serialize(new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }), signature: toArrayBuffer(signature) })),
  );
}

const bc = (cA: boolean) => extension(id_ce_basicConstraints, true, AsnConvert.serialize(new BasicConstraints({ cA })));
const ku = (flags: number) => extension(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(flags)));
const eku = () => extension(id_ce_extKeyUsage, false, AsnConvert.serialize(new ExtendedKeyUsage([id_kp_clientAuth])));
const san = (names: GeneralName[]) => extension(id_ce_subjectAltName, false, AsnConvert.serialize(new SubjectAlternativeName(names)));
const hmnName = (serial: string) =>
  new GeneralName({
    otherName: new OtherName({
      typeId: OID_HARDWARE_MODULE_NAME,
      value: AsnConvert.serialize(new HardwareModuleName({ hwType: '1.3.6.1.4.1.55555.1.1', hwSerialNum: new OctetString(Buffer.from(serial)) })),
    }),
  });
const masa = () => extension(OID_MASA_URL, false, derIa5String('https://evil.example'));

describe('checkCsr: requested extensions', () => {
  const expectNotAllowed = (csr: Buffer, oid: string, profile = demo.idevid) =>
    expect(() => checkCsr(csr, { serial: 'SN-1', profile })).toThrow(expect.objectContaining({ code: 'CSR_EXTENSION_NOT_ALLOWED', stage: 'obtain-key', details: { oid } }));

  it('accepts a request without extensions, and requests for what the profile issues', () => {
    const k = deviceKey();
    expect(checkCsr(csrWith(k, 'SN-1'), { serial: 'SN-1', profile: demo.idevid }).publicKeySha256Hex).toBe(k.sha256);
    const asked = [ku(KeyUsageFlags.digitalSignature), bc(false), san([hmnName('SN-1')]), masa()];
    expect(() => checkCsr(csrWith(k, 'SN-1', asked), { serial: 'SN-1', profile: demo.idevid })).not.toThrow();
    // without a profile, the policy of a profile with every part on
    expect(() => checkCsr(csrWith(k, 'SN-1', asked), { serial: 'SN-1' })).not.toThrow();
  });

  it('rejects basicConstraints cA TRUE', () => {
    expectNotAllowed(csrWith(deviceKey(), 'SN-1', [bc(true)]), id_ce_basicConstraints);
    expect(() => checkCsr(csrWith(deviceKey(), 'SN-1', [bc(true)]), { serial: 'SN-1' })).toThrow(expect.objectContaining({ code: 'CSR_EXTENSION_NOT_ALLOWED' }));
  });

  it('rejects extendedKeyUsage and any extension the profile does not issue', () => {
    expectNotAllowed(csrWith(deviceKey(), 'SN-1', [eku()]), id_ce_extKeyUsage);
    expectNotAllowed(csrWith(deviceKey(), 'SN-1', [extension('2.5.29.31', false, Buffer.from('3000', 'hex'))]), '2.5.29.31');
    // a MASA URL or a hardwareModuleName the product's profile does not issue
    expectNotAllowed(csrWith(deviceKey(), 'SN-1', [masa()]), OID_MASA_URL, { ...demo.idevid, masaUrl: undefined });
    expectNotAllowed(csrWith(deviceKey(), 'SN-1', [san([hmnName('SN-1')])]), id_ce_subjectAltName, { ...demo.idevid, hardwareModuleName: undefined });
  });

  it('rejects keyUsage beyond digitalSignature and subjectAltName names other than hardwareModuleName', () => {
    expectNotAllowed(csrWith(deviceKey(), 'SN-1', [ku(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign)]), id_ce_keyUsage);
    expectNotAllowed(csrWith(deviceKey(), 'SN-1', [san([new GeneralName({ dNSName: 'device.example' })])]), id_ce_subjectAltName);
  });

  it('calls a malformed extensionRequest CSR_MALFORMED', () => {
    const k = deviceKey();
    const info = new CertificationRequestInfo({
      version: 0,
      subject: buildName([{ oid: '2.5.4.5', value: 'SN-1' }]),
      subjectPKInfo: AsnConvert.parse(k.spki, SubjectPublicKeyInfo),
      attributes: new Attributes([new Attribute({ type: OID_EXTENSION_REQUEST, values: [new Uint8Array([0x04, 0x01, 0x00]).buffer] })]),
    });
    const csr = Buffer.from(
      AsnConvert.serialize(
        new CertificationRequest({
          certificationRequestInfo: info,
          signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }),
          signature: toArrayBuffer(k.sign(Buffer.from(AsnConvert.serialize(info)))),
        }),
      ),
    );
    expect(() => checkCsr(csr, { serial: 'SN-1' })).toThrow(expect.objectContaining({ code: 'CSR_MALFORMED' }));
  });
});

describe('a key already certified for another device', () => {
  const wo: WorkOrder = { ...defaultStationConfig().workOrders[0]!, serial: { prefix: 'K-', width: 4, first: 1, last: 99 } };
  let mac = 0;
  function store() {
    const s = new SqliteRecordStore(openDatabase(join(mkdtempSync(join(tmpdir(), 'csr-db-')), 'station.db')), 'st-1');
    s.ensureWorkOrder(wo);
    s.startRun('run-1', wo.id);
    return s;
  }
  const allocate = (s: SqliteRecordStore) =>
    s.allocateDevice({ runId: 'run-1', workOrder: wo, port: '/dev/x', hardwareId: `hw-${mac}`, model: demo.model, firmwareVersion: '1', macs: [`02000000${(mac++).toString(16).padStart(4, '0')}`], method: 'secure-element-keygen' });

  it('checkCsr refuses it with CSR_KEY_ALREADY_CERTIFIED, naming the other serial', () => {
    const k = deviceKey();
    const journal = { findDeviceByPublicKey: (h: string) => (h === k.sha256 ? 'DEMO-000007' : undefined) };
    expect(() => checkCsr(csrWith(k, 'DEMO-000009'), { serial: 'DEMO-000009', certifiedKeys: journal })).toThrow(
      expect.objectContaining({ code: 'CSR_KEY_ALREADY_CERTIFIED', stage: 'obtain-key', details: expect.objectContaining({ otherSerial: 'DEMO-000007' }) }),
    );
    expect(() => checkCsr(csrWith(k, 'DEMO-000009'), { serial: 'DEMO-000009', certifiedKeys: journal })).toThrow(/DEMO-000007/);
    // the device's own record is not "another device"; another key is fine
    expect(() => checkCsr(csrWith(k, 'DEMO-000007'), { serial: 'DEMO-000007', certifiedKeys: journal })).not.toThrow();
    expect(() => checkCsr(csrWith(deviceKey(), 'DEMO-000009'), { serial: 'DEMO-000009', certifiedKeys: journal })).not.toThrow();
  });

  it('the record store finds it (active certificate or pending intent), and both checkCsr and the issuer refuse it', async () => {
    const s = store();
    const ca = await makeSoftwareCa('Dup Test CA');
    const issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], s);
    const k = deviceKey();
    const first = allocate(s);
    await issuer.issue({ spki: k.spki, serial: first, model: demo.model, workOrderId: wo.id, profile: demo.idevid });
    expect(s.findDeviceByPublicKey(k.sha256)).toBe(first);
    expect(s.findDeviceByPublicKey(deviceKey().sha256)).toBeUndefined();

    const clone = allocate(s);
    expect(() => checkCsr(csrWith(k, clone), { serial: clone, profile: demo.idevid, certifiedKeys: s })).toThrow(
      expect.objectContaining({ code: 'CSR_KEY_ALREADY_CERTIFIED', details: expect.objectContaining({ otherSerial: first }) }),
    );
    // the issuer checks too (methods without a CSR), before writing any intent
    await expect(issuer.issue({ spki: k.spki, serial: clone, model: demo.model, workOrderId: wo.id, profile: demo.idevid })).rejects.toMatchObject({
      code: 'CSR_KEY_ALREADY_CERTIFIED',
      stage: 'issue',
      details: expect.objectContaining({ otherSerial: first }),
    });
    expect((s.db.prepare('SELECT COUNT(*) AS n FROM issuance_intents WHERE device_serial = ?').get(clone) as { n: number }).n).toBe(0);

    // a pending intent holds the key too (two ports, same key, at once)
    const k2 = deviceKey();
    const a = allocate(s);
    s.recordIntent({ certificateSerialHex: '7001', deviceSerial: a, workOrderId: wo.id, publicKeySha256Hex: k2.sha256, at: new Date() });
    expect(s.findDeviceByPublicKey(k2.sha256)).toBe(a);
    s.close();
  });

  it('a key whose only certificate was voided (device failed, rework) may be certified again', async () => {
    const s = store();
    const ca = await makeSoftwareCa('Dup Test CA');
    const issuer = new IdevidIssuer(softwareSigner(ca.key, ca.spki), [ca.certificate], s);
    const k = deviceKey();
    const first = allocate(s);
    await issuer.issue({ spki: k.spki, serial: first, model: demo.model, workOrderId: wo.id, profile: demo.idevid });
    s.markFailed(first, 'run-1', { code: 'CHALLENGE_FAILED', message: 'x', stage: 'verify' }, []);
    expect(s.findDeviceByPublicKey(k.sha256)).toBeUndefined();
    const again = allocate(s);
    await expect(issuer.issue({ spki: k.spki, serial: again, model: demo.model, workOrderId: wo.id, profile: demo.idevid })).resolves.toBeDefined();
    expect(s.findDeviceByPublicKey(k.sha256)).toBe(again);
    s.close();
  });
});
