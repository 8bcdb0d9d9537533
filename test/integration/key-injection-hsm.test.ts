/**
 * Method 3 with the real parts below the CLI: the PKCS#11 worker on a SoftHSM token made by
 * `station pki init`'s code, the station's SQLite records, and simulated devices driven through
 * the run model (provisionDevice) over a direct connection.
 *
 * - HSM side: the KEK is made once, audited (token, sensitive, never extractable, WRAP/UNWRAP
 *   only) and its value cannot be read; device keys (made, or unwrapped from their blob) are
 *   session objects whose value C_GetAttributeValue refuses (CKR_ATTRIBUTE_SENSITIVE); the ops
 *   leave no object behind; a blob re-wrapped for a device's transport key installs only on that
 *   device, for that serial; a blob not made under the KEK and a weak KEK are refused.
 * - Run model: prepared keys pass; a device that fails after its key left keeps it reserved; when
 *   it comes back it proves possession (resumed, or recorded as holding a voided key) or the key
 *   is burned; a wrong transport key fails the install and the key is burned on the device's
 *   return; a device answering the challenge with another key fails with CHALLENGE_FAILED.
 *
 * The worker runs the compiled dist/ (npm run build).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStationConfig, type HsmConfig } from '../../src/core/config';
import { DeviceError, HsmError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import type { LabelRenderer } from '../../src/core/ports/label-renderer';
import type { PrinterJobFormat } from '../../src/core/ports/printer';
import { DeviceClient } from '../../src/device/device-client';
import type { DeviceConnection } from '../../src/device/device-connection';
import { TlvReader, encodeTlv, tlv } from '../../src/device/framing/tlv';
import { Command, Item, Tag } from '../../src/device/protocol/commands';
import { DEVICE_STATUS_INFO, DeviceStatus } from '../../src/device/protocol/status';
import { openIdevidCa, type IdevidCa } from '../../src/hsm/ca/idevid-ca';
import { IdevidIssuer } from '../../src/hsm/ca/idevid-issuer';
import { initTestPki } from '../../src/hsm/ca/test-pki';
import { HsmKeyInjector } from '../../src/hsm/keys/hsm-key-injector';
import { ckrOf } from '../../src/hsm/pkcs11/ckr-names';
import { pkcs11js as P, type Pkcs11Handle } from '../../src/hsm/pkcs11/pkcs11-library';
import { ensureSoftHsmConfig } from '../../src/hsm/pkcs11/softhsm-config';
import { createPrinter } from '../../src/label-printer/printers/create-printer';
import { PngLabelRenderer } from '../../src/label-printer/renderers/png-label-renderer';
import { ZplLabelRenderer } from '../../src/label-printer/renderers/zpl-label-renderer';
import { SqlitePreparedKeyStore } from '../../src/manufacturer-db/prepared-key-store';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../src/manufacturer-db/sqlite-record-store';
import { FactoryInjectedKeyMethod, INJECTED_KEY_HELD } from '../../src/methods/factory-injected-key/factory-injected-key-method';
import type { MethodServices } from '../../src/methods/key-method';
import { prepareKeys } from '../../src/station/admin/prepare';
import { LabelService } from '../../src/station/labels/label-service';
import { provisionDevice } from '../../src/station/run/device-run';
import type { VirtualDevice } from '../../src/simulator/virtual-device';
import { newKeyPair } from '../helpers/test-certs';
import { testDir } from '../helpers/station-cli';
import { call, ok, virtualDevice } from '../helpers/virtual-device-calls';

const config = defaultStationConfig();
const workOrder = config.workOrders.find((w) => w.id === 'WO-DEMO-INJECT')!;
const product = config.products[workOrder.product]!;

type Tamper = (command: number, request: TlvReader, reply: Buffer) => Buffer;

/**
 * A DeviceConnection straight onto a VirtualDevice. `replug` stands for the same device taken off
 * and put back (its flash kept): the first HELLO of the new connection is answered without
 * telling the simulator, which would otherwise present a fresh device.
 */
function connectionTo(device: VirtualDevice, opts: { tamper?: Tamper; replug?: boolean } = {}): DeviceConnection {
  let swallowHello = opts.replug === true;
  const conn = {
    port: 'fake0',
    version: 1,
    localMaxPayloadBytes: 4096,
    maxPayloadBytes: 4096,
    async request(command: number, payload: Buffer): Promise<TlvReader> {
      if (command === Command.HELLO && swallowHello) {
        swallowHello = false;
        return TlvReader.from(encodeTlv([tlv.u8(Tag.VERSION, 1), tlv.u16(Tag.MAX_PAYLOAD, 1024)]));
      }
      const reply = device.handleRequest(command, payload);
      if (!reply) throw new DeviceError('DEVICE_TIMEOUT', 'silent');
      if (reply.status !== DeviceStatus.OK) {
        throw new DeviceError(DEVICE_STATUS_INFO[reply.status]?.errorCode ?? 'DEVICE_ERROR', `status ${reply.status}: ${TlvReader.from(reply.payload).optional(Tag.ERROR_DETAIL)?.toString('utf8')}`);
      }
      return TlvReader.from(opts.tamper ? opts.tamper(command, TlvReader.from(payload), reply.payload) : reply.payload);
    },
  };
  return conn as unknown as DeviceConnection;
}

describe('method 3 with the PKCS#11 worker on SoftHSM', () => {
  let dataDir: string;
  let hsm: HsmConfig;
  let ca: IdevidCa;
  let session: Pkcs11Handle;

  const api = () => ca.token.library.api;
  const objectCount = () => {
    api().C_FindObjectsInit(session, []);
    try {
      return api().C_FindObjects(session, 10_000).length;
    } finally {
      api().C_FindObjectsFinal(session);
    }
  };

  beforeAll(async () => {
    dataDir = join(testDir('key-injection-hsm'), 'data');
    process.env.SOFTHSM2_CONF = ensureSoftHsmConfig(dataDir);
    hsm = { ...config.hsm, tokenLabel: 'inject-test', pin: { file: 'hsm-pin' } };
    await initTestPki({ dataDir, hsm, organization: product.idevid.organization, env: process.env });
    ca = openIdevidCa(hsm, dataDir, process.env);
    await ca.ready();
    // This application is logged in (ca.token); a session of our own for reading attributes.
    session = api().C_OpenSession(ca.token.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  }, 60_000);

  afterAll(async () => {
    if (session) api().C_CloseSession(session);
    await ca?.close();
  });

  describe('HSM side', () => {
    let injector: HsmKeyInjector;

    it('refuses to run without a KEK unless asked to make one; makes it once', async () => {
      const missing = await HsmKeyInjector.open(ca.signer, { createKek: false }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(missing).toBeInstanceOf(HsmError);
      expect((missing as HsmError).code).toBe('HSM_KEK_MISSING');
      const first = await HsmKeyInjector.open(ca.signer, { createKek: true });
      expect(first.setup.kekCreated).toBe(true);
      injector = await HsmKeyInjector.open(ca.signer, { createKek: true });
      expect(injector.setup.kekCreated).toBe(false);
      expect(injector.kekLabel).toBe('station-kek');
    });

    it('the KEK is a token AES-256 key, sensitive, never extractable, for WRAP and UNWRAP only; its value cannot be read', () => {
      api().C_FindObjectsInit(session, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_LABEL, value: 'station-kek' },
      ]);
      const found = api().C_FindObjects(session, 4);
      api().C_FindObjectsFinal(session);
      expect(found).toHaveLength(1);
      const types = [P.CKA_TOKEN, P.CKA_SENSITIVE, P.CKA_EXTRACTABLE, P.CKA_NEVER_EXTRACTABLE, P.CKA_WRAP, P.CKA_UNWRAP, P.CKA_ENCRYPT, P.CKA_DECRYPT, P.CKA_SIGN, P.CKA_DERIVE];
      const values = api()
        .C_GetAttributeValue(session, found[0]!, types.map((type) => ({ type })))
        .map((a) => (a.value as Buffer)[0] === 1);
      expect(values).toEqual([true, true, false, true, true, true, false, false, false, false]);
      let refused: string | undefined;
      try {
        api().C_GetAttributeValue(session, found[0]!, [{ type: P.CKA_VALUE }]);
      } catch (err) {
        refused = ckrOf(err);
      }
      expect(refused).toBe('CKR_ATTRIBUTE_SENSITIVE');
    });

    it('device keys, made or unwrapped, are sensitive session objects whose value C_GetAttributeValue refuses', () => {
      const expected = { token: false, sensitive: true, extractable: true, sign: false, derive: false, decrypt: false, unwrap: false, valueReadRefusedWith: 'CKR_ATTRIBUTE_SENSITIVE' };
      expect(injector.setup.deviceKey.generated).toEqual(expected);
      expect(injector.setup.deviceKey.unwrapped).toEqual(expected);
    });

    it('makes distinct keys wrapped under the KEK (80-byte blobs) and leaves no object behind', async () => {
      const before = objectCount();
      const keys = await injector.generateWrapped(5);
      expect(objectCount()).toBe(before);
      expect(new Set(keys.map((k) => k.spki.toString('hex'))).size).toBe(5);
      for (const k of keys) {
        expect(k.wrappedKey).toHaveLength(80);
        expect(k.spki).toHaveLength(91);
      }
    });

    it('re-wraps a key for one device\'s transport key and serial: it installs there and nowhere else', async () => {
      const [key] = await injector.generateWrapped(1);
      const a = virtualDevice('factory-injected-key');
      const b = virtualDevice('factory-injected-key');
      const transportA = ok(call(a, Command.GET_TRANSPORT_KEY)).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY');
      ok(call(b, Command.GET_TRANSPORT_KEY));
      const before = objectCount();
      const forA = await injector.wrapForTransport({ kekWrappedKey: key!.wrappedKey, transportSpki: transportA, serial: 'INJ-900001' });
      expect(objectCount()).toBe(before);
      const install = (d: VirtualDevice, serial: string) =>
        call(d, Command.INSTALL_WRAPPED_KEY, [tlv.bytes(Tag.PEER_PUBLIC_KEY, forA.hsmPublicKey), tlv.bytes(Tag.WRAPPED_KEY, forA.wrappedKey), tlv.string(Tag.SUBJECT_SERIAL, serial)]);
      expect(install(b, 'INJ-900001').status).toBe(DeviceStatus.VERIFY_FAILED); // another device's transport key
      const c = virtualDevice('factory-injected-key');
      ok(call(c, Command.GET_TRANSPORT_KEY));
      const wrongSerial = virtualDevice('factory-injected-key');
      const t = ok(call(wrongSerial, Command.GET_TRANSPORT_KEY)).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY');
      const forWrong = await injector.wrapForTransport({ kekWrappedKey: key!.wrappedKey, transportSpki: t, serial: 'INJ-900001' });
      const r = call(wrongSerial, Command.INSTALL_WRAPPED_KEY, [tlv.bytes(Tag.PEER_PUBLIC_KEY, forWrong.hsmPublicKey), tlv.bytes(Tag.WRAPPED_KEY, forWrong.wrappedKey), tlv.string(Tag.SUBJECT_SERIAL, 'INJ-900002')]);
      expect(r.status).toBe(DeviceStatus.VERIFY_FAILED); // bound to the serial
      expect(ok(install(a, 'INJ-900001')).required(Tag.PUBLIC_KEY, 'PUBLIC_KEY')).toEqual(key!.spki);
    });

    it('refuses a blob that was not made under the KEK', async () => {
      const transport = newKeyPair().spki;
      const err = await injector.wrapForTransport({ kekWrappedKey: randomBytes(80), transportSpki: transport, serial: 'INJ-1' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HsmError);
      expect((err as HsmError).code).toBe('HSM_WRAPPED_KEY_INVALID');
    });

    it('refuses a KEK weaker than the station requires', async () => {
      api().C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: false },
        { type: P.CKA_EXTRACTABLE, value: true },
        { type: P.CKA_WRAP, value: true },
        { type: P.CKA_UNWRAP, value: true },
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_LABEL, value: 'weak-kek' },
      ]);
      const err = await HsmKeyInjector.open(ca.signer, { kekLabel: 'weak-kek', createKek: false }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HsmError);
      expect((err as HsmError).code).toBe('HSM_KEK_WEAK');
      expect((err as HsmError).message).toContain('CKA_EXTRACTABLE=false');
    });
  });

  describe('through the run model', () => {
    let records: SqliteRecordStore;
    let keys: SqlitePreparedKeyStore;
    let services: MethodServices;
    let run = 0;
    const outDir = () => mkdtempSync(join(dataDir, 'out-'));

    beforeAll(async () => {
      records = new SqliteRecordStore(openDatabase(join(dataDir, 'station.db')), config.stationId);
      records.ensureWorkOrder(workOrder);
      keys = new SqlitePreparedKeyStore(records);
      const injector = await HsmKeyInjector.open(ca.signer, { createKek: true });
      services = { stationId: config.stationId, keyInjector: injector, preparedKeys: keys, caChain: ca.chain, injectMode: 'prepared' };
      const prepared = await prepareKeys({ store: records, keys, injector, ca, workOrder, product, count: 8, log: silentLogger, chunk: 3 });
      expect(prepared).toMatchObject({ prepared: 8, failed: 0, available: 8 });
    });

    afterAll(() => records?.close());

    function provision(device: VirtualDevice, opts: { tamper?: Tamper; replug?: boolean; mode?: 'prepared' | 'at-station' } = {}) {
      const runId = `run-${++run}`;
      records.startRun(runId, workOrder.id);
      const dir = outDir();
      const renderers = new Map<PrinterJobFormat, LabelRenderer>([
        ['png', new PngLabelRenderer()],
        ['zpl', new ZplLabelRenderer()],
      ]);
      const client = new DeviceClient(connectionTo(device, opts), { commandTimeoutMs: 5000, keygenTimeoutMs: 5000 });
      return provisionDevice(client, {
        runId,
        workOrder,
        product,
        method: new FactoryInjectedKeyMethod({ ...services, injectMode: opts.mode ?? 'prepared' }),
        store: records,
        issuer: new IdevidIssuer(ca.signer, ca.chain, records),
        labels: new LabelService(config, records, renderers, createPrinter({ kind: 'file', format: 'zpl' }, { baseDir: dir })),
        outDir: dir,
        chainPath: join(dir, 'chain.pem'),
        log: silentLogger,
        signal: new AbortController().signal,
      });
    }

    it('passes a device with the next prepared key; the key is consumed and its blob deleted', async () => {
      const report = await provision(virtualDevice('factory-injected-key'));
      expect(report.error).toBeNull();
      expect(report).toMatchObject({ status: 'passed', keyOrigin: 'hsm', preparedKeyId: expect.any(String) });
      expect(keys.get(report.preparedKeyId!)).toMatchObject({ state: 'consumed', wrappedKey: null, serial: report.serial });
    });

    it('at the station: the HSM makes the key during the run and the issue stage issues', async () => {
      const report = await provision(virtualDevice('factory-injected-key'), { mode: 'at-station' });
      expect(report.error).toBeNull();
      expect(keys.get(report.preparedKeyId!)).toMatchObject({ origin: 'at-station', state: 'consumed', wrappedKey: null, certificateSerial: expect.any(String) });
    });

    it('a device answering the challenge with another key fails with CHALLENGE_FAILED; its key stays reserved for it', async () => {
      const device = virtualDevice('factory-injected-key', { faults: new Set(['challenge-wrong-key']) });
      const report = await provision(device);
      expect(report.error).toMatchObject({ code: 'CHALLENGE_FAILED', stage: 'verify' });
      expect(keys.get(report.preparedKeyId!)).toMatchObject({ state: 'reserved', reservedFor: device.hardwareId, injectedAt: expect.any(String), wrappedKey: expect.any(Buffer) });
    });

    it('a device that failed after its key left, coming back holding it, is recorded as holding a voided key', async () => {
      const device = virtualDevice('factory-injected-key');
      const corruptReadback: Tamper = (command, request, reply) =>
        command === Command.READ_ITEM && request.u8(Tag.ITEM_ID, 'ITEM_ID') === Item.DPP_URI ? encodeTlv([tlv.string(Tag.ITEM_VALUE, 'DPP:K:AA==;;')]) : reply;
      const failed = await provision(device, { tamper: corruptReadback });
      expect(failed.error).toMatchObject({ code: 'READBACK_MISMATCH' });
      const reserved = keys.get(failed.preparedKeyId!)!;
      expect(reserved).toMatchObject({ state: 'reserved', reservedFor: device.hardwareId, deviceStatus: 'failed' });
      const available = keys.availableCount(workOrder.id);

      const back = await provision(device, { replug: true });
      expect(back.error).toMatchObject({ code: INJECTED_KEY_HELD, stage: 'assign' });
      expect(keys.get(reserved.id)).toMatchObject({ state: 'consumed', wrappedKey: null, confirmedAt: expect.any(String) });
      expect(keys.availableCount(workOrder.id)).toBe(available); // no other key was offered to it
    });

    it('an interrupted run: the device comes back, proves possession and resumes with its serial and certificate', async () => {
      const device = virtualDevice('factory-injected-key');
      // The station stops (SIGKILL) right after the key was injected: no failure hook, no markFailed.
      records.startRun('run-killed', workOrder.id);
      const method = new FactoryInjectedKeyMethod(services);
      const client = new DeviceClient(connectionTo(device), { commandTimeoutMs: 5000, keygenTimeoutMs: 5000 });
      await client.hello();
      const identity = await client.identify();
      const signal = new AbortController().signal;
      const serial = await method.assignSerial({ client, identity, runId: 'run-killed', workOrderId: workOrder.id, port: 'fake0', signal, allocate: () => expect.fail('prepared') });
      const material = await method.obtainKeyMaterial({ client, identity, serial, workOrderId: workOrder.id, signal });
      if (material.kind !== 'pre-issued') throw new Error(`expected a pre-issued key, got ${material.kind}`);
      await method.beforeInstall({ client, identity, serial, workOrderId: workOrder.id, certificateDer: material.certificateDer, spki: material.spki, facts: material.facts!, signal });
      expect(keys.findBySerial(serial)).toMatchObject({ state: 'reserved', injectedAt: expect.any(String), deviceStatus: 'issued' });
      expect(keys.resolveInterrupted().find((r) => r.serial === serial)?.action).toBe('kept-reserved');

      const resumed = await provision(device, { replug: true });
      expect(resumed.error).toBeNull();
      expect(resumed).toMatchObject({ status: 'passed', serial, preparedKeyId: material.facts!.preparedKeyId });
      expect(keys.findBySerial(serial)).toMatchObject({ state: 'consumed', wrappedKey: null });
    });

    it('a wrong transport key fails the install; the key left, stays reserved, and is burned when the device cannot prove possession', async () => {
      const device = virtualDevice('factory-injected-key');
      const attacker = newKeyPair().spki;
      const swapTransport: Tamper = (command, _request, reply) => (command === Command.GET_TRANSPORT_KEY ? encodeTlv([tlv.bytes(Tag.PUBLIC_KEY, attacker)]) : reply);
      const failed = await provision(device, { tamper: swapTransport });
      expect(failed.error).toMatchObject({ code: 'DEVICE_VERIFY_FAILED', stage: 'install' });
      const key = keys.get(failed.preparedKeyId!)!;
      expect(key).toMatchObject({ state: 'reserved', injectedAt: expect.any(String) });

      // Back on the line: it holds no birth key, so it cannot sign the challenge: the key is burned.
      // The device itself stays out (its MAC belongs to the failed record: a MAC is never given twice), and takes no other key.
      const available = keys.availableCount(workOrder.id);
      const back = await provision(device, { replug: true });
      expect(keys.get(key.id)).toMatchObject({ state: 'burned', wrappedKey: null, burnReason: expect.stringContaining('did not prove possession') });
      expect(back.error).toMatchObject({ code: 'MAC_ALREADY_USED', stage: 'assign' });
      expect(keys.availableCount(workOrder.id)).toBe(available);
    });

    it('never offers a reserved, consumed or burned key again', () => {
      const rows = records.db.prepare('SELECT serial, state FROM prepared_keys').all() as { serial: string; state: string }[];
      const devices = records.db.prepare("SELECT serial, hardware_id FROM devices WHERE work_order_id = ? AND hardware_id <> ''").all(workOrder.id) as { serial: string; hardware_id: string }[];
      // each serial was taken by at most one device, and no key went back to available
      expect(new Set(devices.map((d) => d.serial)).size).toBe(devices.length);
      const taken = new Set(devices.map((d) => d.serial));
      for (const r of rows) if (r.state === 'available') expect(taken.has(r.serial)).toBe(false);
      expect(rows.filter((r) => r.state === 'available').length).toBe(keys.availableCount(workOrder.id));
    });

    it('a key that never left the station is burned when its device fails', async () => {
      const device = virtualDevice('factory-injected-key');
      const refuseTransport: Tamper = (command, _request, reply) => {
        if (command === Command.GET_TRANSPORT_KEY) throw new DeviceError('DEVICE_INTERNAL_ERROR', 'flash error');
        return reply;
      };
      const failed = await provision(device, { tamper: refuseTransport });
      expect(failed.error).toMatchObject({ code: 'DEVICE_INTERNAL_ERROR' });
      expect(keys.get(failed.preparedKeyId!)).toMatchObject({ state: 'burned', injectedAt: null, wrappedKey: null });
      expect(records.getDevice(failed.serial!)).toMatchObject({ status: 'failed', certificateStatus: 'void' });
    });
  });
});
