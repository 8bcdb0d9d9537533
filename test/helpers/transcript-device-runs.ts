/**
 * Whole device runs as transcripts, one per birth-credential method: the station's real
 * provisionDevice (src/station/run/device-run.ts) and the method's real KeyMethod against the
 * simulator built for that method, from HELLO to LOCK.
 *
 * What is not on the link is made repeatable, the same way for every method:
 * - a fresh SQLite database per run (the real SqliteRecordStore: serials start at the work
 *   order's first, e.g. DEMO-000001);
 * - the IDevID CA is TranscriptIssuer: a throw-away software PKI while recording, the recorded
 *   certificates (`@input idevid`, `issuing-ca`, `root-ca`) on replay, journaled in the store as
 *   the real issuer does;
 * - the challenge nonce is TRANSCRIPT_NONCE, so no station frame needs a mask;
 * - labels go to the run's folder.
 * The method's own station-side services (src/methods/key-method.ts MethodServices) are the real
 * database stores, fed from `@input`s, and a double only for what lives in the HSM (each
 * scenario's `about` says which and why). A double is enough here because these transcripts test
 * the LINK: what the station writes and how it reacts to the device's bytes. The HSM and vendor
 * file paths are covered by the integration tests (test/integration/batch-*.test.ts and the HSM
 * tests each scenario names).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { defaultStationConfig, type ProductProfile, type WorkOrder } from '../../src/core/config';
import { silentLogger } from '../../src/core/logger';
import type { MethodId } from '../../src/core/method-id';
import type { IssuanceJournal } from '../../src/core/ports/issuance-journal';
import type { LabelRenderer } from '../../src/core/ports/label-renderer';
import type { PrinterJobFormat } from '../../src/core/ports/printer';
import { deriveSeedPublicKeySpki } from '../../src/core/seed-derivation';
import type { IssueRequest, IssuedIdevid } from '../../src/hsm/ca/idevid-issuer';
import { PngLabelRenderer } from '../../src/label-printer/renderers/png-label-renderer';
import { ZplLabelRenderer } from '../../src/label-printer/renderers/zpl-label-renderer';
import { createPrinter } from '../../src/label-printer/printers/create-printer';
import { SqlitePreparedKeyStore } from '../../src/manufacturer-db/prepared-key-store';
import { SeManifestStore, splitDerSequence } from '../../src/manufacturer-db/se-manifest-store';
import { SqliteSeedStore } from '../../src/manufacturer-db/seed-store';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../src/manufacturer-db/sqlite-record-store';
import type { MethodServices } from '../../src/methods/key-method';
import { createKeyMethod } from '../../src/methods/registry';
import { importSeManifestFile, readPemCertificates } from '../../src/station/import/se-manifest-import';
import { LabelService } from '../../src/station/labels/label-service';
import { provisionDevice } from '../../src/station/run/device-run';
import type { DeviceReport } from '../../src/station/run/report';
import { ScriptedKeyInjector } from './key-injector-double';
import { ScriptedSeedVault } from './seed-vault-double';
import { TRANSCRIPT_NONCE, check, idevidChain, simulatorSide, type Scenario, type ScenarioContext } from './transcript-scenario-kit';

const STATION_ID = 'transcript-station';

/** The IDevID CA of a transcript: the recorded certificates, journaled as the real issuer journals them. */
class TranscriptIssuer {
  constructor(
    private readonly ctx: ScenarioContext,
    private readonly journal: IssuanceJournal,
  ) {}

  async issue(req: IssueRequest): Promise<IssuedIdevid> {
    const [leaf, ...chain] = await idevidChain(this.ctx.inputs, req.spki, req.serial);
    const cert = AsnConvert.parse(leaf!, Certificate);
    const certificateSerialHex = Buffer.from(cert.tbsCertificate.serialNumber).toString('hex');
    await this.journal.recordIssued({
      certificateSerialHex,
      deviceSerial: req.serial,
      workOrderId: req.workOrderId,
      certificateDer: leaf!,
      publicKeySha256Hex: sha256Hex(req.spki),
      issuedAt: new Date(),
    });
    return { certificateDer: leaf!, certificateSerialHex, chain };
  }
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** What a method's station side is built from. */
interface StationParts {
  ctx: ScenarioContext;
  store: SqliteRecordStore;
  issuer: TranscriptIssuer;
  workOrder: WorkOrder;
  product: ProductProfile;
}

/** A method's services, and checks of what it left in the database after the device passed. */
interface MethodStationSide {
  services: Omit<MethodServices, 'stationId'>;
  afterPass?: (report: DeviceReport) => void;
}

type MethodSetup = (parts: StationParts) => Promise<MethodStationSide>;

async function deviceRun(ctx: ScenarioContext, method: MethodId, setup?: MethodSetup): Promise<DeviceReport> {
  const config = defaultStationConfig();
  const workOrder = config.workOrders.find((w) => w.method === method);
  if (!workOrder) throw new Error(`the default configuration has no work order for method ${method}`);
  const product = config.products[workOrder.product]!;
  const store = new SqliteRecordStore(openDatabase(join(ctx.tmpDir, 'station.db')), STATION_ID);
  try {
    store.ensureWorkOrder(workOrder);
    const issuer = new TranscriptIssuer(ctx, store);
    const side = setup ? await setup({ ctx, store, issuer, workOrder, product }) : { services: {} };
    const runId = 'transcript-run';
    store.startRun(runId, workOrder.id);
    const printer = createPrinter({ kind: 'file', format: 'zpl' }, { baseDir: ctx.tmpDir });
    const report = await provisionDevice(ctx.client, {
      runId,
      workOrder,
      product,
      method: createKeyMethod(method, { stationId: STATION_ID, ...side.services }),
      store,
      issuer,
      labels: new LabelService(
        config,
        store,
        new Map<PrinterJobFormat, LabelRenderer>([
          ['png', new PngLabelRenderer()],
          ['zpl', new ZplLabelRenderer()],
        ]),
        printer,
      ),
      outDir: ctx.tmpDir,
      chainPath: join(ctx.tmpDir, 'chain.pem'),
      log: silentLogger,
      signal: new AbortController().signal,
      challengeNonce: () => Buffer.from(TRANSCRIPT_NONCE),
    });
    check(report.error === null, `the device passed (${report.error?.code}: ${report.error?.message})`);
    check(report.status === 'passed' && report.method === method, `${report.serial} passed with ${method}`);
    check(store.getDevice(report.serial!)?.status === 'passed', 'its record says passed');
    side.afterPass?.(report);
    return report;
  } finally {
    store.close();
  }
}

/**
 * Method 3, prepared (the default): `station prepare`'s steps on the real stores (a device
 * record per key, the certificate journaled, the key made available), then the run takes it.
 */
const factoryInjectedKey: MethodSetup = async ({ ctx, store, issuer, workOrder, product }) => {
  const keys = new SqlitePreparedKeyStore(store);
  const injector = new ScriptedKeyInjector(ctx.inputs);
  const prepareRunId = 'transcript-prepare';
  store.startRun(prepareRunId, workOrder.id);
  const made = await injector.generateWrapped(1);
  const [preparing] = keys.addPreparing({
    workOrderId: workOrder.id,
    prepareRunId,
    kekLabel: injector.kekLabel,
    keys: made,
    allocate: () =>
      store.allocateDevice({ runId: prepareRunId, workOrder, port: 'prepare', hardwareId: '', model: product.model, firmwareVersion: '', macs: [], method: workOrder.method }),
  });
  const issued = await issuer.issue({ spki: made[0]!.spki, serial: preparing!.serial, model: product.model, workOrderId: workOrder.id, profile: product.idevid });
  keys.markAvailable([{ id: preparing!.id, certificateSerial: issued.certificateSerialHex }]);
  store.finishRun(prepareRunId, { prepared: 1, failed: 0 });
  return {
    services: { keyInjector: injector, preparedKeys: keys, injectMode: 'prepared', caChain: issued.chain },
    afterPass(report) {
      check(report.serial === preparing!.serial && report.preparedKeyId === preparing!.id && report.keyOrigin === 'hsm', 'the device took the prepared key');
      const key = keys.get(preparing!.id);
      check(key?.state === 'consumed' && key.wrappedKey === null && key.injectedAt !== null, 'the key left the station, and its blob is gone');
    },
  };
};

/**
 * Method 5: the seed record the import would make (real SqliteSeedStore), for the chip the
 * simulator's device took from the vendor kit's chips; the HSM's derivation is ScriptedSeedVault.
 */
const seedDerived: MethodSetup = async ({ ctx, store }) => {
  const chip = () => {
    const c = simulatorSide(ctx).chips[0];
    if (!c) throw new Error('the recorder made no vendor chip for the seed-derived line');
    return c;
  };
  const chipId = (await ctx.inputs.bytes('chip-id', () => chip().chipId)).toString('hex');
  const derived = await ctx.inputs.bytes('derived-public-key', () => deriveSeedPublicKeySpki(chip().seed, chip().chipId));
  const seedStore = new SqliteSeedStore(store.db, STATION_ID);
  seedStore.importSeeds({
    fileSha256: sha256Hex('transcript: no seed file'),
    recipientKeyId: 'transcript',
    vendor: 'Simulated Chip Vendor',
    lot: 'LOT-TRANSCRIPT',
    createdAt: '2000-01-01T00:00:00.000Z',
    // the vault double never opens a sealed seed: this stands in for one (there is no seed here)
    chips: [{ chipId, sealed: Buffer.from('transcript: stands in for a sealed seed', 'utf8'), publicKeySha256: sha256Hex(derived) }],
    operator: 'transcript',
  });
  return {
    services: { seedStore, seedVault: new ScriptedSeedVault(new Map([[chipId, derived]])) },
    afterPass(report) {
      check(report.chipId === chipId && report.keyOrigin === 'seed-derived', `chip ${chipId} in the report`);
      check(seedStore.findSeed(chipId)?.state === 'used', 'the seed is used for good');
    },
  };
};

/**
 * Method 4: the SE vendor kit's signed manifest, verified and imported by the station's real
 * import (importSeManifestFile: signature, certificates, SeManifestStore) at the time it was
 * recorded, with the kit's published certificates as the trust anchors. Everything here is
 * real and deterministic given the recorded file, anchors and time: no double.
 */
const sePreprovisioned: MethodSetup = async ({ ctx, store }) => {
  const kit = () => {
    const k = simulatorSide(ctx).seVendorKit;
    if (!k) throw new Error('the recorder ran no SE vendor kit for the se-preprovisioned line');
    return k;
  };
  const manifest = await ctx.inputs.bytes('se-manifest', () => readFileSync(kit().manifest));
  const signers = await ctx.inputs.bytes('se-manifest-signer', () => Buffer.concat(readPemCertificates(kit().signerCertificate, 'manifest signer certificate file')));
  const vendorCas = await ctx.inputs.bytes('se-vendor-ca', () => Buffer.concat(readPemCertificates(kit().vendorCaCertificate, 'SE vendor CA certificate file')));
  const checkedAt = await ctx.inputs.bytes('se-manifest-checked-at', () => Buffer.from(new Date().toISOString(), 'utf8'));
  const file = join(ctx.tmpDir, 'se-manifest.json');
  writeFileSync(file, manifest);
  const seManifest = new SeManifestStore(store.db, STATION_ID);
  const imported = importSeManifestFile(
    seManifest,
    file,
    { signerCertificates: splitDerSequence(signers), vendorCaCertificates: splitDerSequence(vendorCas) },
    new Date(checkedAt.toString('utf8')),
  );
  check(imported.added === 1, 'the manifest lists the one SE of the line');
  return {
    services: { seManifest },
    afterPass(report) {
      check(report.keyOrigin === 'se-vendor' && report.manifestEntryId !== undefined && report.seSerial !== undefined, 'the SE and its manifest entry in the report');
      check(seManifest.findBySeSerial(report.seSerial!)?.boundSerial === report.serial, 'the SE is bound to the device');
    },
  };
};

const onDeviceKeygen: MethodSetup = async () => ({
  services: {},
  afterPass(report) {
    check(report.keyOrigin === 'device-rng', 'recorded from the device\'s report');
  },
});

/** How every device-run transcript's station side is made repeatable (its header says so). */
const STATION_NOTE = [
  'Station: the real provisionDevice and KeyMethod on a fresh SQLite database; the IDevID CA is a throw-away',
  'software PKI (@input idevid, issuing-ca, root-ca); the challenge nonce is fixed, so no frame is masked.',
];

export const DEVICE_RUN_SCENARIOS: readonly Scenario[] = [
  {
    name: 'device-run-on-device-keygen',
    title: 'A whole on-device-keygen device run (provisionDevice): GENERATE_KEY(DEVICE), the report cross-checked with the journal (GET_PUBLIC_KEY)',
    firstSeq: 0x2100,
    method: 'on-device-keygen',
    about: [...STATION_NOTE, 'Method 1 needs no station-side service: the issuance journal it cross-checks the report with is that database.'],
    async run(ctx) {
      await deviceRun(ctx, 'on-device-keygen', onDeviceKeygen);
    },
  },
  {
    name: 'device-run-secure-element-keygen',
    title: 'A whole secure-element-keygen device run (provisionDevice): connect .. lock, 12 round trips (the challenge right after GET_CSR, the key read again after install)',
    firstSeq: 0x2000,
    async run(ctx) {
      const report = await deviceRun(ctx, 'secure-element-keygen');
      check(report.serial === 'DEMO-000001', 'DEMO-000001 passed');
    },
  },
  {
    name: 'device-run-factory-injected-key',
    title: 'A whole factory-injected-key device run (provisionDevice, prepared key): GET_TRANSPORT_KEY, INSTALL_WRAPPED_KEY',
    firstSeq: 0x2200,
    method: 'factory-injected-key',
    about: [
      ...STATION_NOTE,
      'Method 3, prepared (the default): the real SqlitePreparedKeyStore; the HSM is ScriptedKeyInjector',
      '(test/helpers/key-injector-double.ts): @input device-public-key, hsm-ephemeral-public-key and transport-wrapped-key',
      'were made in software while recording (contracts.md section 7; nothing private kept), wrap-request-sha256 checks',
      'that the station asks the HSM to wrap for the device\'s transport key and serial. HSM path: key-injection-hsm.test.ts.',
    ],
    async run(ctx) {
      await deviceRun(ctx, 'factory-injected-key', factoryInjectedKey);
    },
  },
  {
    name: 'device-run-se-preprovisioned',
    title: 'A whole se-preprovisioned device run (provisionDevice): READ_SE_INFO, GET_PUBLIC_KEY against the manifest, GET_CSR',
    firstSeq: 0x2300,
    method: 'se-preprovisioned',
    about: [
      ...STATION_NOTE,
      'Method 4: the SE came off the SE vendor kit\'s reel; the station imports the kit\'s signed manifest with its real',
      'import (@input se-manifest, se-manifest-signer, se-vendor-ca, verified at se-manifest-checked-at) into SeManifestStore.',
    ],
    async run(ctx) {
      await deviceRun(ctx, 'se-preprovisioned', sePreprovisioned);
    },
  },
  {
    name: 'device-run-seed-derived',
    title: 'A whole seed-derived device run (provisionDevice): the station derives the key, DERIVE_SEED_KEY must give the same',
    firstSeq: 0x2400,
    method: 'seed-derived',
    about: [
      ...STATION_NOTE,
      'Method 5: the chip came from the vendor kit\'s chips; the real SqliteSeedStore holds its record; the HSM\'s seed vault',
      'is ScriptedSeedVault (test/helpers/seed-vault-double.ts) answering @input derived-public-key for @input chip-id,',
      'derived from the chip\'s seed while recording (the seed is not recorded). HSM path: seed-vault.test.ts.',
    ],
    async run(ctx) {
      await deviceRun(ctx, 'seed-derived', seedDerived);
    },
  },
];
