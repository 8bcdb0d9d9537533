/**
 * createStation(config, deps): the composition root. The only place (besides tests) that wires
 * concrete parts: SoftHSM/PKCS#11 CA, SQLite records, serial transports, label renderers and
 * the method registry. The CLI and the GUI are thin hosts over what this returns.
 */
import { randomUUID } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { PrinterConfig, ProductProfile, StationConfig, WorkOrder } from '../core/config';
import { Item } from '../device/protocol/commands';
import type { InstallItem } from './run/device-run';
import type { LabelRenderer } from '../core/ports/label-renderer';
import type { PrinterJobFormat } from '../core/ports/printer';
import { ConfigError, DatabaseError, HsmError, InterruptedError } from '../core/errors';
import type { Logger } from '../core/logger';
import { createTransport } from '../device/transport/transport-factory';
import { openIdevidCa, type IdevidCa } from '../hsm/ca/idevid-ca';
import type { Pkcs11WorkerEvent } from '../hsm/pkcs11/pkcs11-worker-client';
import { IdevidIssuer } from '../hsm/ca/idevid-issuer';
import { initTestPki, type PkiInitResult } from '../hsm/ca/test-pki';
import { PngLabelRenderer } from '../label-printer/renderers/png-label-renderer';
import { ZplLabelRenderer } from '../label-printer/renderers/zpl-label-renderer';
import { SvgLabelRenderer } from '../label-printer/renderers/svg-label-renderer';
import { createPrinter } from '../label-printer/printers/create-printer';
import { LabelService, type LabelOutcome } from './labels/label-service';
import { openDatabase } from '../manufacturer-db/sqlite-database';
import { SqliteRecordStore, TurnCommitJournal } from '../manufacturer-db/sqlite-record-store';
import { createKeyMethod } from '../methods/registry';
import { runDevicesOnPorts, type DeviceLinkSample } from './run/batch-runner';
import type { Transport } from '../device/transport/transport';
import { countDevices, type DeviceReport, type RunReport } from './run/report';
import type { StageEvent } from './run/stages';
import { resumeRun, type ResumeTarget } from './run/resume';
import { runSeedVendorKit, startSimulator } from './simulate/simulator-process';
import { openFactoryInjection, type FactoryInjection, type InjectMode } from './admin/prepare';
import { Pkcs11SeedVault } from '../hsm/seeds/pkcs11-seed-vault';
import { SqliteSeedStore } from '../manufacturer-db/seed-store';
import { SqlitePreparedSeedStore } from '../manufacturer-db/prepared-seed-store';
import { SeManifestStore } from '../manufacturer-db/se-manifest-store';
import { supplySimulatedSes } from './simulate/simulated-se-vendor';
import type { MethodServices } from '../methods/key-method';
import { importSeedFile, type SeedFileImportSummary } from '../methods/seed-derived/seed-import';

import { ensureStationPki } from '../hsm/identity/station-pki';
import { openStationSync, type StationSync } from './sync/station-sync';

export interface StationDeps {
  dataDir: string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface BatchRequest {
  workOrderId?: string;
  /** Start this many simulated devices on PTYs (the simulator's ports are used). */
  simulate?: number;
  simulateFaults?: string;
  /** Pace the simulated lines at this baud rate with the device latencies of contracts.md §4 (benches); absent = PTY speed. */
  simulateBaud?: number;
  /** Real ports when not simulating. */
  ports?: string[];
  count?: number;
  outDir: string;
  /** Overrides the configured printer for this run. */
  printer?: PrinterConfig;
  signal: AbortSignal;
  onStart?: (info: { runId: string; total: number; ports: string[] }) => void;
  onDevice?: (report: DeviceReport) => void;
  /** Each stage of each device as it starts and ends (the GUI's tiles). */
  onEvent?: (event: StageEvent & { port: string; serial: string | null }) => void;
  /** Per device: wall time and link stats (benches: src/bench/groups/line-group.ts). */
  onDeviceLink?: (sample: DeviceLinkSample) => void;
  /** Wraps each port's transport (benches meter the link with it). */
  wrapTransport?: (transport: Transport) => Transport;
  /** An IDevID CA the caller opened (openCa) and keeps open across runs; the run does not close it. */
  ca?: IdevidCa;
  /** Keep taking devices until every port is empty (run/empty-port.ts); with `simulate`, `count` is the simulated line's supply. */
  untilEmpty?: boolean;
  /** Continue this unfinished run (run/resume.ts; the CLI's --resume resolves it). */
  resume?: ResumeTarget;
  /** Method 3: use keys prepared ahead (default) or make them during the run. */
  inject?: InjectMode;
  /** Records + sync: after the last device, wait up to this long for the outbox to drain (the report then says delivered). */
  waitSyncSeconds?: number;
}

export interface Station {
  readonly config: StationConfig;
  readonly dataDir: string;
  pkiInit(): Promise<PkiInitResult>;
  runBatch(request: BatchRequest): Promise<RunReport>;
  /** Print every pending label (of one work order, or all). */
  printPendingLabels(request: LabelCommandRequest, workOrderId?: string): Promise<LabelOutcome[]>;
  /** Reprint a printed label; audited with the operator and the reason. */
  reprintLabel(request: LabelCommandRequest, serial: string, reason: string): Promise<LabelOutcome>;
  /** Opens the IDevID CA (PKCS#11 worker) for several runs; `pin` replaces the configured PIN source (the GUI's PIN entry). */
  openCa(options?: { pin?: () => string; log?: Logger }): Promise<IdevidCa>;
}

export function databasePath(dataDir: string): string {
  return join(dataDir, 'station.db');
}

function labelRenderers(): Map<PrinterJobFormat, LabelRenderer> {
  return new Map<PrinterJobFormat, LabelRenderer>([
    ['png', new PngLabelRenderer()],
    ['zpl', new ZplLabelRenderer()],
    ['svg', new SvgLabelRenderer()],
  ]);
}

export interface LabelCommandRequest {
  printer?: PrinterConfig;
  /** Base folder of a file printer. */
  outDir: string;
  operator: string;
}

/** The signature-check worker failed: its checks go on in process. */
function logSignatureCheckFallback(log: Logger, reason: string): void {
  log.warn({ code: 'SIGNATURE_CHECKS_IN_PROCESS', reason }, 'signature checks now run on the main thread (slower; never skipped)');
}

/** The PKCS#11 worker's life in the run log (never a PIN: events carry codes and CKR names). */
function logHsmWorkerEvent(log: Logger, e: Pkcs11WorkerEvent): void {
  switch (e.type) {
    case 'started':
      (e.generation === 0 ? log.info.bind(log) : log.warn.bind(log))({ ...e }, e.generation === 0 ? 'HSM worker started' : 'HSM worker restarted');
      return;
    case 'recovering':
      log.warn({ ...e }, 'HSM session lost; recovering');
      return;
    case 'recovered':
      log.warn({ ...e }, 'HSM sessions recovered');
      return;
    case 'worker-exit':
      log.warn({ ...e }, 'HSM worker stopped');
      return;
    case 'restarting':
      log.warn({ ...e }, 'restarting the HSM worker');
      return;
    case 'unavailable':
      log.error({ ...e }, 'HSM unavailable; stopping the line');
      return;
  }
}

/**
 * The product's extra install items, read once per run (SP 1800-36B 4.1 step 4). A missing or
 * unreadable MASA trust anchor is a configuration error before any device is touched.
 */
export function installItemsFor(product: ProductProfile, dataDir: string): InstallItem[] {
  const items: InstallItem[] = [];
  const { masaTrustAnchor, mudUrl, appBootstrap } = product.install;
  if (masaTrustAnchor !== undefined) {
    const path = isAbsolute(masaTrustAnchor) ? masaTrustAnchor : join(dataDir, masaTrustAnchor);
    if (!existsSync(path)) throw new ConfigError('INSTALL_ITEM_MISSING', `The MASA trust anchor ${path} (products.*.install.masaTrustAnchor) does not exist.`);
    let der: Buffer;
    try {
      der = new X509Certificate(readFileSync(path)).raw;
    } catch (err) {
      throw new ConfigError('INSTALL_ITEM_INVALID', `The MASA trust anchor ${path} is not a PEM or DER certificate: ${(err as Error).message}.`);
    }
    items.push({ item: Item.MASA_TRUST_ANCHOR, name: 'MASA trust anchor', value: der });
  }
  if (mudUrl !== undefined) items.push({ item: Item.MUD_URL, name: 'MUD URL', value: Buffer.from(mudUrl, 'utf8') });
  if (appBootstrap !== undefined) items.push({ item: Item.APP_BOOTSTRAP, name: 'application bootstrap info', value: Buffer.from(appBootstrap, 'utf8') });
  return items;
}

export function createStation(config: StationConfig, deps: StationDeps): Station {
  const dataDir = resolve(deps.dataDir);
  const env = deps.env ?? process.env;
  const workOrder = (id: string | undefined): WorkOrder => {
    const wanted = id ?? config.defaultWorkOrder;
    const wo = config.workOrders.find((w) => w.id === wanted);
    if (!wo) throw new ConfigError('WORK_ORDER_UNKNOWN', `No work order ${wanted} in the configuration; known: ${config.workOrders.map((w) => w.id).join(', ')}.`);
    return wo;
  };

  const pkiInit = async () => {
    const firstProduct = Object.values(config.products)[0];
    const result = await initTestPki({ dataDir, hsm: config.hsm, organization: firstProduct?.idevid.organization ?? 'Test Devices', env });
    // records + sync: the station CA, the record-signing identity key and the TLS client key (docs/records-and-sync.md)
    await ensureStationPki({ hsm: config.hsm, dataDir, stationId: config.stationId, organization: firstProduct?.idevid.organization ?? 'Test Devices', env });
    return result;
  };

  const withLabels = async <T>(request: LabelCommandRequest, fn: (labels: LabelService, store: SqliteRecordStore) => Promise<T>): Promise<T> => {
    const store = new SqliteRecordStore(openDatabase(databasePath(dataDir)), config.stationId);
    try {
      const printer = createPrinter(request.printer ?? config.printer, { baseDir: resolve(request.outDir) });
      return await fn(new LabelService(config, store, labelRenderers(), printer), store);
    } finally {
      store.close();
    }
  };

  return {
    config,
    dataDir,
    pkiInit,
    async openCa(options = {}) {
      const log = options.log ?? deps.log;
      const ca = openIdevidCa(config.hsm, dataDir, env, { onEvent: (e) => logHsmWorkerEvent(log, e), onSignatureCheckFallback: (reason) => logSignatureCheckFallback(log, reason), ...(options.pin ? { pin: options.pin } : {}) });
      try {
        await ca.ready();
      } catch (err) {
        await ca.close().catch(() => undefined);
        throw err;
      }
      return ca;
    },
    printPendingLabels: (request, workOrderId) =>
      withLabels(request, async (labels, store) => {
        const outcomes: LabelOutcome[] = [];
        for (const serial of store.pendingLabels(workOrderId)) outcomes.push(await labels.print(serial, 'retry', { operator: request.operator }));
        return outcomes;
      }),
    reprintLabel: (request, serial, reason) =>
      withLabels(request, async (labels, store) => {
        const device = store.getDevice(serial);
        if (!device) throw new ConfigError('DEVICE_UNKNOWN', `No device ${serial} in the database.`);
        if (device.labelState !== 'printed') {
          throw new ConfigError('LABEL_NOT_PRINTED_YET', `The label of ${serial} was never printed (${device.labelState}); use "station label print" for pending labels.`);
        }
        return labels.print(serial, 'reprint', { operator: request.operator, reason });
      }),
    async runBatch(request: BatchRequest): Promise<RunReport> {
      const wo = workOrder(request.workOrderId);
      const product = config.products[wo.product]!;
      // Filled in once the HSM worker and the database are open (methods read their ports lazily).
      const methodServices: MethodServices = { stationId: config.stationId };
      const method = createKeyMethod(wo.method, methodServices);
      const outDir = resolve(request.outDir);
      mkdirSync(outDir, { recursive: true });
      const runId = request.resume?.runId ?? `${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomUUID().slice(0, 8)}`;
      const log = deps.log.child({ runId });
      const startedAt = new Date().toISOString();

      const installItems = installItemsFor(product, dataDir);
      // Fail fast, before any device is touched: the HSM (PIN, key audit, chain) and the database.
      let ca: IdevidCa | undefined;
      let store: SqliteRecordStore | undefined;
      let sync: StationSync | undefined;
      let simulator: Awaited<ReturnType<typeof startSimulator>> | undefined;
      try {
        ca = request.ca ?? openIdevidCa(config.hsm, dataDir, env, { onEvent: (e) => logHsmWorkerEvent(log, e), onSignatureCheckFallback: (reason) => logSignatureCheckFallback(log, reason) });
        await ca.ready();
        store = new SqliteRecordStore(openDatabase(databasePath(dataDir)), config.stationId);
        for (const r of store.resolveDanglingIntents()) {
          log.warn(
            { serial: r.deviceSerial, certificateSerial: r.certificateSerialHex, code: 'ISSUANCE_INTERRUPTED', deviceMarkedFailed: r.deviceMarkedFailed },
            'an issuance was interrupted by an earlier stop: the device is marked failed (rework)',
          );
        }
        store.ensureWorkOrder(wo);
        // the line's intent and issued rows share each turn's commit with the ports' other writes
        const issuer = new IdevidIssuer(ca.signer, ca.chain, new TurnCommitJournal(store), { signatureChecker: ca.signatureChecker });
        // records + sync: signer (station identity in the HSM worker), recorder, background relay
        const openedSync = await openStationSync({ config, dataDir, store, worker: ca.signer, log });
        sync = openedSync;
        openedSync.relay?.start();
        // the methods' hot writes share each turn's commit with the ports' other writes
        methodServices.writes = { run: (doing, fn) => store!.committer.run(doing, fn) };
        methodServices.seedVault = new Pkcs11SeedVault(ca.signer, config.hsm);
        methodServices.seedStore = new SqliteSeedStore(store.db, config.stationId);
        if (wo.method === 'seed-derived') {
          // Method 5: certificates prepared ahead (station prepare); records a stop left half-way go the usual way.
          const preparedSeeds = new SqlitePreparedSeedStore(store);
          for (const r of preparedSeeds.resolveInterrupted()) log.warn({ ...r, code: 'PREPARE_INTERRUPTED' }, 'a prepared chip an earlier stop left without a certificate goes the usual way');
          methodServices.preparedSeedCertificates = preparedSeeds;
          methodServices.caChain = ca.chain;
        }
        // Method 3: mechanisms, KEK and self-check in the HSM worker, and keys an earlier stop left half-way.
        let injection: FactoryInjection | undefined;
        if (wo.method === 'factory-injected-key') {
          const mode = request.inject ?? 'prepared';
          injection = await openFactoryInjection({ ca, store, hsm: config.hsm, workOrder: wo, product, mode, createKek: request.simulate !== undefined || mode === 'at-station', log });
          Object.assign(methodServices, injection.services);
        }
        const seManifest = new SeManifestStore(store.db, config.stationId);
        methodServices.seManifest = seManifest;
        // Method 4: issue our IDevID over the SE key (default), or keep the vendor's certificate
        methodServices.issueSeIdevid = product.sePreprovisioned?.issueIdevid ?? true;

        let ports: string[];
        if (request.simulate !== undefined) {
          if (wo.method === 'seed-derived') {
            const seeds = await importSimulatedSeedFile(join(dataDir, 'sim'), request.count ?? request.simulate, { seedVault: methodServices.seedVault, seedStore: methodServices.seedStore });
            log.info({ ...seeds }, 'imported the simulated chip vendor\'s seed file');
          }
          if (wo.method === 'se-preprovisioned') {
            // the simulated SE vendor's reel and manifest, imported as a real vendor's file would be
            const imported = await supplySimulatedSes({ simDir: join(dataDir, 'sim'), count: request.count ?? request.simulate, store: seManifest, config, dataDir });
            log.info({ manifest: imported.file, entries: imported.entries, added: imported.added, warnings: imported.warnings }, 'imported the simulated SE vendor\'s manifest');
          }
          simulator = await startSimulator({ ports: request.simulate, dir: join(dataDir, 'sim'), faults: request.simulateFaults, method: wo.method, model: product.model, baud: request.simulateBaud });
          ports = simulator.ports;
        } else {
          ports = request.ports && request.ports.length > 0 ? request.ports : config.ports;
          if (ports.length === 0) throw new ConfigError('NO_PORTS', 'No ports to provision on: give --simulate N, --port PATH, or "ports" in the configuration.');
        }
        const count = request.untilEmpty && request.simulate === undefined ? Number.POSITIVE_INFINITY : (request.count ?? ports.length);
        if (request.simulate !== undefined) await injection?.prepareFor(count);
        const certsDir = join(outDir, 'certs');
        mkdirSync(certsDir, { recursive: true });
        const chainPath = join(certsDir, 'idevid-chain.pem');
        copyFileSync(ca.chainPath, chainPath);

        // --resume: the run's devices so far (those left mid-run reconciled); a new run starts empty
        const prior = request.resume ? await resumeRun({ store, recorder: openedSync.recorder, runId, keyOrigin: method.keyOrigin, outDir, log }) : (store.startRun(runId, wo.id), []);
        const remaining = Math.max(0, count - prior.length);
        request.onStart?.({ runId, total: remaining, ports });
        log.info({ workOrder: wo.id, method: wo.method, ports, count }, 'run started');
        const { devices, lineStop } = await runDevicesOnPorts(
          {
            runId,
            workOrder: wo,
            product,
            method,
            store,
            issuer,
            signatureChecker: ca.signatureChecker,
            labels: new LabelService(config, store, labelRenderers(), createPrinter(request.printer ?? config.printer, { baseDir: outDir })),
            outDir,
            chainPath,
            installItems,
            log,
            signal: request.signal,
            onStage: request.onEvent,
            recorder: openedSync.recorder,
            onQueued: () => openedSync.relay?.kick(),
          },
          {
            ports,
            count: remaining,
            untilEmpty: request.untilEmpty === true,
            // "hid:PATH" names a USB HID device (hidapi path, checked against discovery.usbFilters); anything else is a serial port.
            openTransport: (path) => {
              const transport = createTransport(path, { baudRate: config.deviceLink.baudRate, usbFilters: config.discovery.usbFilters });
              return request.wrapTransport ? request.wrapTransport(transport) : transport;
            },
            timeouts: { commandTimeoutMs: config.deviceLink.commandTimeoutMs, keygenTimeoutMs: config.deviceLink.keygenTimeoutMs },
            onDevice: request.onDevice,
            onDeviceLink: request.onDeviceLink,
            log,
          },
        );
        devices.unshift(...prior);
        const counts = countDevices(devices);
        store.finishRun(runId, counts);
        if (openedSync.relay && request.waitSyncSeconds !== undefined) {
          const drain = await openedSync.relay.drain(request.waitSyncSeconds * 1000, request.signal);
          (drain.drained ? log.info.bind(log) : log.warn.bind(log))({ ...drain }, drain.drained ? 'outbox drained' : 'outbox not drained within --wait-sync');
        }
        // each device's sync state as the outbox has it now (contracts.md §5)
        for (const d of devices) if (d.serial) d.sync = openedSync.recorder.syncStates(d.serial);
        const report: RunReport = {
          schemaVersion: 1,
          runId,
          stationId: config.stationId,
          startedAt,
          finishedAt: new Date().toISOString(),
          dataDir: relative(outDir, dataDir) || '.',
          workOrder: wo.id,
          method: wo.method,
          counts,
          devices,
        };
        writeFileSync(join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
        log.info({ counts }, 'run finished');
        if (lineStop) {
          // the line was stopped (HSM_UNAVAILABLE: exit 3; MAC_BLOCK_EXHAUSTED: exit 4): a run-level stop after the report is written
          const LineStop = lineStop.code === 'MAC_BLOCK_EXHAUSTED' ? DatabaseError : HsmError;
          throw new LineStop(
            lineStop.code,
            `${lineStop.message} ${counts.passed}/${counts.total} passed before the stop; report: ${join(outDir, 'report.json')}`,
          );
        }
        if (request.signal.aborted) throw new InterruptedError('The run was interrupted; the report lists what was done.');
        return report;
      } catch (err) {
        const e = err as { code?: string; message?: string };
        log.error({ code: e.code ?? 'INTERNAL_ERROR', reason: e.message }, 'run stopped');
        throw err;
      } finally {
        await simulator?.stop();
        await sync?.close();
        store?.close();
        if (!request.ca) await ca?.close();
      }
    },
  };
}

/**
 * Method 5 in `--simulate` (contracts.md §6): the chip vendor's kit makes the chips and the seed
 * file encrypted to this station's seed-import key, and the station imports that file exactly as
 * it would a real vendor's (importSeedFile, as `station import seeds` does).
 */
async function importSimulatedSeedFile(simDir: string, count: number, ports: Required<Pick<MethodServices, 'seedVault' | 'seedStore'>>): Promise<SeedFileImportSummary> {
  mkdirSync(simDir, { recursive: true });
  const recipientPemPath = join(simDir, 'seed-recipient.pem');
  const spki = await ports.seedVault.recipientPublicKey();
  writeFileSync(recipientPemPath, `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`);
  const out = join(simDir, `seed-file-${randomUUID().slice(0, 8)}.json`);
  await runSeedVendorKit({ dir: simDir, recipientPemPath, count, out });
  return importSeedFile(ports, readFileSync(out), 'simulate');
}
