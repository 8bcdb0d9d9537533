/**
 * Method 1 (on-device keygen): what it asks of the device, and the cross-check of the device's
 * report with the issuance journal (REPORT_MISMATCH_JOURNAL), alone and through the run model
 * with a virtual device whose report is tampered with.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSoftwarePki } from '../../../src/bench/software-pki';
import { defaultStationConfig } from '../../../src/core/config';
import { DppUri } from '../../../src/core/dpp-uri';
import { DeviceError, StationError } from '../../../src/core/errors';
import { silentLogger } from '../../../src/core/logger';
import type { LabelRenderer } from '../../../src/core/ports/label-renderer';
import type { PrinterJobFormat } from '../../../src/core/ports/printer';
import { DeviceClient, type DeviceIdentity } from '../../../src/device/device-client';
import type { DeviceConnection } from '../../../src/device/device-connection';
import { TlvReader, encodeTlv, tlv } from '../../../src/device/framing/tlv';
import { Command, Item, KeyLocation, Tag } from '../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../src/device/protocol/status';
import { createPrinter } from '../../../src/label-printer/printers/create-printer';
import { PngLabelRenderer } from '../../../src/label-printer/renderers/png-label-renderer';
import { ZplLabelRenderer } from '../../../src/label-printer/renderers/zpl-label-renderer';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import type { DeviceReportContext } from '../../../src/methods/key-method';
import { OnDeviceKeygenMethod, REPORT_MISMATCH_JOURNAL } from '../../../src/methods/on-device-keygen/on-device-keygen-method';
import { createKeyMethod } from '../../../src/methods/registry';
import { LabelService } from '../../../src/station/labels/label-service';
import { provisionDevice } from '../../../src/station/run/device-run';
import type { VirtualDevice } from '../../../src/simulator/virtual-device';
import { issueEndEntity, makeSoftwareCa, newKeyPair } from '../../helpers/test-certs';
import { virtualDevice } from '../../helpers/virtual-device-calls';

const config = defaultStationConfig();
const workOrder = config.workOrders.find((w) => w.id === 'WO-DEMO-DEVKEY')!;
const product = config.products[workOrder.product]!;

function identityWith(caps: Partial<DeviceIdentity['capabilities']>): DeviceIdentity {
  return {
    model: 'DemoSensor-1',
    hardwareId: '00',
    firmwareVersion: '1',
    macs: ['020000000001'],
    capabilities: { secureElement: false, deviceKeygen: false, seKeygen: false, keyInjection: false, sePreprovisioned: false, seedDerivation: false, brski: false, ...caps },
    methods: ['on-device-keygen'],
    secureElement: null,
    chipId: null,
    protocol: { min: 1, max: 1 },
    locked: false,
    maxPayloadBytes: 1024,
  };
}

function expectMismatch(err: unknown, field: string): void {
  expect(err).toBeInstanceOf(DeviceError);
  const e = err as StationError;
  expect(e.code).toBe(REPORT_MISMATCH_JOURNAL);
  expect(e.stage).toBe('verify');
  expect(e.details.field).toBe(field);
}

describe('OnDeviceKeygenMethod', () => {
  const method = new OnDeviceKeygenMethod();

  it('is registered as method 1 with keyOrigin device-rng', () => {
    const m = createKeyMethod('on-device-keygen', { stationId: 'test' });
    expect(m).toBeInstanceOf(OnDeviceKeygenMethod);
    expect(m.keyOrigin).toBe('device-rng');
    expect(typeof m.crossCheck).toBe('function');
    // method 2 keeps recording from the CA path
    expect(createKeyMethod('secure-element-keygen', { stationId: 'test' }).crossCheck).toBeUndefined();
    expect(workOrder).toMatchObject({ method: 'on-device-keygen', serial: { prefix: 'DEVK-', width: 6, first: 1, last: 999999 } });
  });

  it('needs the DEVICE_KEYGEN capability, not a secure element', () => {
    expect(method.supports(identityWith({ deviceKeygen: true }))).toEqual({ ok: true });
    const no = method.supports(identityWith({ secureElement: true, seKeygen: true }));
    expect(no.ok).toBe(false);
    expect(no.ok ? '' : no.reason).toContain('DEVICE_KEYGEN');
  });

  it('asks GENERATE_KEY(DEVICE) and then GET_CSR for the assigned serial', async () => {
    const calls: string[] = [];
    const client = {
      generateKey: async (loc: number) => (calls.push(`generateKey:${loc}`), Buffer.from('spki')),
      getCsr: async (serial: string) => (calls.push(`getCsr:${serial}`), Buffer.from('csr')),
    } as unknown as DeviceClient;
    const m = await method.obtainKeyMaterial({ client, identity: identityWith({ deviceKeygen: true }), workOrderId: 'WO-DEMO-DEVKEY', serial: 'DEVK-000001', signal: new AbortController().signal });
    expect(calls).toEqual([`generateKey:${KeyLocation.DEVICE}`, 'getCsr:DEVK-000001']);
    expect(m).toEqual({ kind: 'csr', reportedSpki: Buffer.from('spki'), csrDer: Buffer.from('csr') });
  });

  describe('crossCheck: the device report against the issuance journal', () => {
    let ctx: DeviceReportContext;
    let other: { leaf: Buffer; spki: Buffer };

    beforeEach(async () => {
      const ca = await makeSoftwareCa('Test IDevID CA');
      const device = newKeyPair();
      const leaf = await issueEndEntity(ca, device.spki, { cn: 'DemoSensor-1', serial: 'DEVK-000001' });
      const otherKey = newKeyPair();
      other = { leaf: await issueEndEntity(ca, otherKey.spki, { cn: 'DemoSensor-1', serial: 'DEVK-000001' }), spki: otherKey.spki };
      const dppUri = DppUri.build({ publicKeySpki: device.spki, mac: '020000000001', info: 'DEVK-000001', channels: ['81/1'], version: 2 }).toString();
      ctx = {
        client: { port: 'fake0', getPublicKey: async () => device.spki } as unknown as DeviceClient,
        serial: 'DEVK-000001',
        reportedChain: [leaf, ca.certificate],
        reportedDppUri: dppUri,
        journalCertificate: leaf,
        signal: new AbortController().signal,
      };
    });

    it('returns the record from the report when it agrees with the journal', async () => {
      const r = await method.crossCheck(ctx);
      expect(r.certificateDer.equals(ctx.journalCertificate!)).toBe(true);
      expect(r.dppUri).toBe(ctx.reportedDppUri);
      expect(DppUri.build({ publicKeySpki: r.publicKeySpki }).publicKeySpki.equals(DppUri.parse(ctx.reportedDppUri).publicKeySpki)).toBe(true);
    });

    it('refuses a reported leaf other than the journal\'s certificate', async () => {
      await method.crossCheck({ ...ctx, reportedChain: [other.leaf] }).then(
        () => expect.fail('accepted'),
        (e) => expectMismatch(e, 'certificate'),
      );
      await method.crossCheck({ ...ctx, reportedChain: [] }).then(
        () => expect.fail('accepted'),
        (e) => expectMismatch(e, 'certificate'),
      );
    });

    it('refuses when the journal holds no active certificate for the serial', async () => {
      await method.crossCheck({ ...ctx, journalCertificate: null }).then(
        () => expect.fail('accepted'),
        (e) => expectMismatch(e, 'journal'),
      );
    });

    it('refuses a GET_PUBLIC_KEY other than the certificate\'s key', async () => {
      const client = { port: 'fake0', getPublicKey: async () => other.spki } as unknown as DeviceClient;
      await method.crossCheck({ ...ctx, client }).then(
        () => expect.fail('accepted'),
        (e) => expectMismatch(e, 'public-key'),
      );
    });

    it('refuses a DPP URI over another key, or one that does not parse', async () => {
      const wrong = DppUri.build({ publicKeySpki: other.spki, channels: ['81/1'] }).toString();
      await method.crossCheck({ ...ctx, reportedDppUri: wrong }).then(
        () => expect.fail('accepted'),
        (e) => expectMismatch(e, 'dpp-uri'),
      );
      await method.crossCheck({ ...ctx, reportedDppUri: 'not a uri' }).then(
        () => expect.fail('accepted'),
        (e) => expectMismatch(e, 'dpp-uri'),
      );
    });
  });
});

type Tamper = (command: number, request: TlvReader, reply: Buffer) => Buffer;

/** A DeviceConnection straight onto a VirtualDevice (no framing), with an optional tamper hook. */
function connectionTo(device: VirtualDevice, tamper?: Tamper): DeviceConnection {
  const conn = {
    port: 'fake0',
    version: 1,
    localMaxPayloadBytes: 4096,
    maxPayloadBytes: 4096,
    async request(command: number, payload: Buffer): Promise<TlvReader> {
      const reply = device.handleRequest(command, payload);
      if (!reply) throw new DeviceError('DEVICE_TIMEOUT', 'silent');
      if (reply.status !== DeviceStatus.OK) {
        throw new DeviceError('DEVICE_REFUSED', `status ${reply.status}: ${TlvReader.from(reply.payload).optional(Tag.ERROR_DETAIL)?.toString('utf8')}`);
      }
      return TlvReader.from(tamper ? tamper(command, TlvReader.from(payload), reply.payload) : reply.payload);
    },
  };
  return conn as unknown as DeviceConnection;
}

describe('provisionDevice with method 1: the record comes from the device report, cross-checked', () => {
  let tmp: string;
  let store: SqliteRecordStore;

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'odk-'));
    store = new SqliteRecordStore(openDatabase(join(tmp, 'station.db')), 'unit-station');
    store.ensureWorkOrder(workOrder);
    store.startRun('run-1', workOrder.id);
  });

  afterEach(() => {
    store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function run(tamper?: (pki: { otherLeaf: Buffer; otherSpki: Buffer }) => Tamper) {
    const pki = await createSoftwarePki(product.idevid.organization, store);
    const otherKey = newKeyPair();
    // a certificate for another key, from a CA outside this journal
    const otherLeaf = (await (await createSoftwarePki(product.idevid.organization)).issuer.issue({ spki: otherKey.spki, serial: 'X-1', model: product.model, workOrderId: 'WO-OTHER', profile: product.idevid })).certificateDer;
    const device = virtualDevice('on-device-keygen');
    const client = new DeviceClient(connectionTo(device, tamper?.({ otherLeaf, otherSpki: otherKey.spki })), { commandTimeoutMs: 1000, keygenTimeoutMs: 1000 });
    const renderers = new Map<PrinterJobFormat, LabelRenderer>([
      ['png', new PngLabelRenderer()],
      ['zpl', new ZplLabelRenderer()],
    ]);
    return provisionDevice(client, {
      runId: 'run-1',
      workOrder,
      product,
      method: createKeyMethod(workOrder.method, { stationId: 'test' }),
      store,
      issuer: pki.issuer,
      labels: new LabelService(config, store, renderers, createPrinter({ kind: 'file', format: 'zpl' }, { baseDir: tmp })),
      outDir: tmp,
      chainPath: join(tmp, 'chain.pem'),
      log: silentLogger,
      signal: new AbortController().signal,
    });
  }

  it('passes an honest device and records keyOrigin device-rng', async () => {
    const report = await run();
    expect(report.error).toBeNull();
    expect(report.status).toBe('passed');
    expect(report.keyOrigin).toBe('device-rng');
    const rec = store.getDevice(report.serial!)!;
    expect(rec.keyOrigin).toBe('device-rng');
    expect(rec.dppUri).toBe(report.dppUri);
  });

  it('fails a device that reports another leaf than the journal holds: REPORT_MISMATCH_JOURNAL', async () => {
    const report = await run(({ otherLeaf }) => (command, request, reply) => {
      if (command !== Command.READ_ITEM || request.u8(Tag.ITEM_ID, 'ITEM_ID') !== Item.IDEVID_CHAIN) return reply;
      const certs = TlvReader.from(reply).all(Tag.CERTIFICATE);
      return encodeTlv([otherLeaf, ...certs.slice(1)].map((c) => tlv.bytes(Tag.CERTIFICATE, c)));
    });
    expect(report.status).toBe('failed');
    expect(report.error).toMatchObject({ code: REPORT_MISMATCH_JOURNAL, stage: 'verify' });
    expect(report.disposition).toBe('rework');
    const rec = store.getDevice(report.serial!)!;
    expect(rec.status).toBe('failed');
    expect(rec.error?.code).toBe(REPORT_MISMATCH_JOURNAL);
    expect(rec.keyOrigin).toBeNull();
    expect(rec.certificateStatus).toBe('void');
  });

  it('fails a device whose GET_PUBLIC_KEY is not the certified key: REPORT_MISMATCH_JOURNAL', async () => {
    const report = await run(({ otherSpki }) => (command, _request, reply) =>
      command === Command.GET_PUBLIC_KEY ? encodeTlv([tlv.bytes(Tag.PUBLIC_KEY, otherSpki)]) : reply,
    );
    expect(report.status).toBe('failed');
    expect(report.error).toMatchObject({ code: REPORT_MISMATCH_JOURNAL, stage: 'verify' });
  });
});
