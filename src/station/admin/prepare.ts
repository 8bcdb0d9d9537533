/**
 * Method 3's station-side composition: `station prepare` (keys made ahead, contracts.md §2 and §6)
 * and the parts a batch of work order with method factory-injected-key needs.
 *
 * Prepare, per chunk of keys (one worker op and a handful of transactions per chunk, so that
 * 100,000 keys are ~100 HSM ops and a few hundred durable commits, not 100,000):
 *   1. the HSM makes the key pairs as session objects and returns them wrapped under the KEK
 *      (the next chunk's keys are being made while this chunk's database work runs: the worker
 *      and the main thread overlap);
 *   2. one transaction allocates a device record per key (the record store's serial allocation)
 *      and adds the keys as `preparing`;
 *   3. the station's own IdevidIssuer issues each certificate (intent, HSM signature, record),
 *      the whole chunk in flight through a GroupCommitJournal: the chunk's intents share one
 *      FULL-sync commit before anything is signed, and each certificate row is committed before
 *      its key moves on (docs/idevid-profile.md's journal rules, unchanged);
 *   4. one transaction makes the issued keys `available`; a key whose issuance failed is burned
 *      and its device record failed.
 * The connection's page cache is raised for the prepare (prepare-run.ts) and put back after:
 * at 100,000 devices the certificate and intent indexes no longer fit SQLite's default 2 MiB,
 * and every random insert then reads pages back from the file (docs/benchmarks.md).
 * A stop anywhere leaves nothing offered that should not be: start-up reconciliation
 * (SqlitePreparedKeyStore.resolveInterrupted) finishes or burns what was half-way.
 */
import { join } from 'node:path';
import type { HsmConfig, ProductProfile, StationConfig, WorkOrder } from '../../core/config';
import { ConfigError, asStationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { Signer } from '../../core/ports/signer';
import { openIdevidCa, type IdevidCa } from '../../hsm/ca/idevid-ca';
import { HsmKeyInjector, type WorkerOpRunner } from '../../hsm/keys/hsm-key-injector';
import { SqlitePreparedKeyStore, type PreparedKeyResolution } from '../../manufacturer-db/prepared-key-store';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import type { MethodServices } from '../../methods/key-method';
import { openPrepareRun, type PrepareCa } from './prepare-run';

/** Keys per worker op for the chunk made ahead (about 30 ms of the worker each). */
const AHEAD_KEYS_PER_OP = 128;

export type InjectMode = 'prepared' | 'at-station';

export interface PrepareKeysInput {
  store: SqliteRecordStore;
  keys: SqlitePreparedKeyStore;
  injector: HsmKeyInjector;
  /** The CA: its signer (the PKCS#11 worker) and chain (issuing CA, root). */
  ca: PrepareCa;
  workOrder: WorkOrder;
  product: ProductProfile;
  count: number;
  log: Logger;
  chunk?: number;
}

export interface PrepareResult {
  runId: string;
  prepared: number;
  failed: number;
  firstSerial: string | null;
  lastSerial: string | null;
  /** Keys of the work order a device may take now (after this prepare). */
  available: number;
}

async function inParallel<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function checkWorkOrder(wo: WorkOrder): void {
  if (wo.method !== 'factory-injected-key') {
    throw new ConfigError('METHOD_MISMATCH', `Work order ${wo.id} uses method ${wo.method}; keys are prepared only for method factory-injected-key.`);
  }
}

/** Makes `count` prepared records (key, serial, certificate) for the work order. */
export async function prepareKeys(input: PrepareKeysInput): Promise<PrepareResult> {
  const { store, keys, injector, workOrder: wo, product, log } = input;
  checkWorkOrder(wo);
  const run = openPrepareRun(store, input.ca, wo.id, input.chunk);
  const { runId, chunk, journal, issuer } = run;
  let prepared = 0;
  let failed = 0;
  let firstSerial: string | null = null;
  let lastSerial: string | null = null;
  // Keys of the next chunk, asked for before this chunk's database work (the HSM worker makes them meanwhile).
  let ahead: Promise<Awaited<ReturnType<HsmKeyInjector['generateWrapped']>>> | undefined;
  const sizeAt = (done: number) => Math.min(chunk, input.count - done);
  try {
    for (let done = 0; done < input.count; ) {
      const n = sizeAt(done);
      const made = await (ahead ?? injector.generateWrapped(n));
      // In small ops, so that this chunk's signatures go between them (the worker serves
      // signatures before ops that have not started).
      ahead = done + n < input.count ? injector.generateWrapped(sizeAt(done + n), { keysPerOp: AHEAD_KEYS_PER_OP }) : undefined;
      // a failure of the keys ahead surfaces when they are awaited, never as an unhandled rejection
      ahead?.catch(() => undefined);
      const preparing = keys.addPreparing({
        workOrderId: wo.id,
        prepareRunId: runId,
        kekLabel: injector.kekLabel,
        keys: made,
        allocate: () =>
          store.allocateDevice({ runId, workOrder: wo, port: 'prepare', hardwareId: '', model: product.model, firmwareVersion: '', macs: [], method: wo.method }),
      });
      const outcomes = await inParallel(preparing, preparing.length, async (p, i) => {
        try {
          const issued = await issuer.issue({ spki: made[i]!.spki, serial: p.serial, model: product.model, workOrderId: wo.id, profile: product.idevid });
          return { id: p.id, serial: p.serial, certificateSerial: issued.certificateSerialHex };
        } catch (err) {
          return { id: p.id, serial: p.serial, error: asStationError(err, 'CA_ISSUE_FAILED', 'issue') };
        }
      });
      journal.flush();
      const ok = outcomes.filter((o): o is { id: string; serial: string; certificateSerial: string } => 'certificateSerial' in o);
      keys.markAvailable(ok);
      for (const o of outcomes) {
        if ('error' in o && o.error) {
          log.error({ serial: o.serial, code: o.error.code, reason: o.error.message }, 'a prepared key\'s certificate was not issued; the key is burned');
          keys.burn(o.id, `its certificate was not issued (${o.error.code})`, { code: o.error.code, message: o.error.message });
          failed++;
        }
      }
      if (ok.length > 0) {
        firstSerial ??= ok[0]!.serial;
        lastSerial = ok[ok.length - 1]!.serial;
      }
      prepared += ok.length;
      done += n;
      log.info({ workOrder: wo.id, runId, prepared, failed, of: input.count }, 'prepared keys');
    }
  } finally {
    await ahead?.catch(() => undefined); // keys made ahead and not used die with their session objects: only wrapped blobs left the HSM
    run.finish({ prepared, failed });
  }
  if (failed > 0) keys.scrub();
  return { runId, prepared, failed, firstSerial, lastSerial, available: keys.availableCount(wo.id) };
}

/** What a batch of method 3 gets from the station. */
export interface FactoryInjection {
  keys: SqlitePreparedKeyStore;
  injector: HsmKeyInjector;
  services: Required<Pick<MethodServices, 'keyInjector' | 'preparedKeys' | 'injectMode' | 'caChain'>>;
  /** What start-up reconciliation did (logged by the caller). */
  resolved: PreparedKeyResolution[];
  /** `--simulate`, prepared way: prepares what the run needs when fewer than `count` keys are available. */
  prepareFor(count: number): Promise<PrepareResult | undefined>;
}

/**
 * The HSM side (mechanism check, KEK, self-check) and the prepared-key records for a run of
 * method 3, after the start-up checks of the CA and resolveDanglingIntents.
 */
export async function openFactoryInjection(input: {
  ca: PrepareCa & { signer: Signer & WorkerOpRunner };
  store: SqliteRecordStore;
  hsm: HsmConfig;
  workOrder: WorkOrder;
  product: ProductProfile;
  mode: InjectMode;
  /** Make the KEK when it is absent (station prepare, --simulate, at-station). */
  createKek: boolean;
  log: Logger;
}): Promise<FactoryInjection> {
  checkWorkOrder(input.workOrder);
  const injector = await HsmKeyInjector.open(input.ca.signer, { kekLabel: input.hsm.kekLabel, createKek: input.createKek });
  if (injector.setup.kekCreated) input.log.warn({ kekLabel: injector.kekLabel }, 'made the key-encryption key for prepared keys on the HSM token');
  const keys = new SqlitePreparedKeyStore(input.store);
  const resolved = keys.resolveInterrupted();
  for (const r of resolved) input.log.warn({ serial: r.serial, preparedKeyId: r.id, action: r.action, reason: r.reason }, 'a prepared key an earlier stop left half-way was settled');
  return {
    keys,
    injector,
    resolved,
    services: { keyInjector: injector, preparedKeys: keys, injectMode: input.mode, caChain: input.ca.chain },
    async prepareFor(count: number) {
      if (input.mode !== 'prepared') return undefined;
      const missing = count - keys.availableCount(input.workOrder.id);
      if (missing <= 0) return undefined;
      const result = await prepareKeys({ store: input.store, keys, injector, ca: input.ca, workOrder: input.workOrder, product: input.product, count: missing, log: input.log });
      input.log.info({ ...result }, 'prepared the keys the simulated run needs');
      return result;
    },
  };
}

/** What a prepare needs open: the work order, its product, the IDevID CA (PKCS#11 worker) and the records. */
export interface PrepareContext {
  wo: WorkOrder;
  product: ProductProfile;
  ca: IdevidCa;
  store: SqliteRecordStore;
}

/**
 * Opens the CA and the database for a `station prepare` (after the issuance intents an earlier
 * stop left are resolved, as every run does), runs `fn`, and closes both.
 */
export async function withPrepareContext<T>(
  config: StationConfig,
  deps: { dataDir: string; env?: NodeJS.ProcessEnv; log: Logger },
  workOrderId: string,
  checkWorkOrder: (wo: WorkOrder) => void,
  fn: (ctx: PrepareContext) => Promise<T>,
): Promise<T> {
  const wo = config.workOrders.find((w) => w.id === workOrderId);
  if (!wo) throw new ConfigError('WORK_ORDER_UNKNOWN', `No work order ${workOrderId} in the configuration; known: ${config.workOrders.map((w) => w.id).join(', ')}.`);
  checkWorkOrder(wo);
  const product = config.products[wo.product]!;
  const ca = openIdevidCa(config.hsm, deps.dataDir, deps.env ?? process.env);
  let store: SqliteRecordStore | undefined;
  try {
    await ca.ready();
    store = new SqliteRecordStore(openDatabase(join(deps.dataDir, 'station.db')), config.stationId);
    for (const r of store.resolveDanglingIntents()) {
      deps.log.warn({ serial: r.deviceSerial, certificateSerial: r.certificateSerialHex, code: 'ISSUANCE_INTERRUPTED' }, 'an issuance was interrupted by an earlier stop');
    }
    store.ensureWorkOrder(wo);
    return await fn({ wo, product, ca, store });
  } finally {
    store?.close();
    await ca.close();
  }
}

/** `station prepare --work-order ID --count N`: opens the CA and the database, prepares, closes. */
export function runPrepare(
  config: StationConfig,
  deps: { dataDir: string; env?: NodeJS.ProcessEnv; log: Logger },
  request: { workOrderId: string; count: number },
): Promise<PrepareResult & { workOrderId: string; kekLabel: string; kekCreated: boolean; resolved: PreparedKeyResolution[] }> {
  return withPrepareContext(config, deps, request.workOrderId, checkWorkOrder, async ({ wo, product, ca, store }) => {
    const injection = await openFactoryInjection({ ca, store, hsm: config.hsm, workOrder: wo, product, mode: 'prepared', createKek: true, log: deps.log });
    const result = await prepareKeys({ store, keys: injection.keys, injector: injection.injector, ca, workOrder: wo, product, count: request.count, log: deps.log });
    return { ...result, workOrderId: wo.id, kekLabel: injection.injector.kekLabel, kekCreated: injection.injector.setup.kekCreated, resolved: injection.resolved };
  });
}
