/**
 * Records + sync for a station process (docs/records-and-sync.md): the sync targets the
 * configuration names (HTTPS, mutual TLS), the record signer (the station identity key in the
 * HSM, through the PKCS#11 worker), the DeviceRecorder the run writes through, and the outbox
 * relay that delivers in the background.
 *
 * No `sync` in the configuration: both targets are `disabled`, nothing is queued; records are
 * still signed when the station identity exists (and kept unsigned, with a warning, when not).
 * With a target configured, a missing identity or certificate stops the run before any device.
 */
import { resolve } from 'node:path';
import type { StationConfig } from '../../core/config';
import { ConfigError, asStationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { openIdevidCa } from '../../hsm/ca/idevid-ca';
import { HsmIdentitySigner, type WorkerOpRunner } from '../../hsm/identity/hsm-identity-signer';
import { loadStationIdentityCertificate } from '../../hsm/identity/station-pki';
import { OutboxRelay, type RelayEvent } from '../../manufacturer-db/outbox/outbox-relay';
import type { SyncTargetName } from '../../manufacturer-db/outbox/outbox-store';
import { DeviceRecorder } from '../../manufacturer-db/records/device-recorder';
import { RecordSigner } from '../../manufacturer-db/records/record-signer';
import type { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import { HttpsSyncTarget } from '../../manufacturer-db/sync-targets/https-sync-target';
import type { SyncTarget } from '../../manufacturer-db/sync-targets/sync-target';

/** The targets the configuration names, as HTTPS clients (none without `sync`). */
export function createSyncTargets(config: StationConfig, dataDir: string): SyncTarget[] {
  const sync = config.sync;
  if (!sync) return [];
  const at = (p: string) => resolve(dataDir, p);
  const targets: SyncTarget[] = [];
  const add = (name: SyncTargetName, t: { url: string; serverCaCertificate: string } | undefined) => {
    if (!t) return;
    targets.push(
      new HttpsSyncTarget({
        name,
        url: t.url,
        serverCaCertificatePath: at(t.serverCaCertificate),
        clientKeyPath: at(sync.clientKey),
        clientCertificatePath: at(sync.clientCertificate),
        requestTimeoutMs: sync.requestTimeoutMs,
      }),
    );
  };
  add('masa', sync.masa);
  add('supply-chain', sync.supplyChain);
  return targets;
}

export function createRelay(config: StationConfig, store: SqliteRecordStore, targets: readonly SyncTarget[], onEvent?: (e: RelayEvent) => void): OutboxRelay {
  return new OutboxRelay(store.outbox, targets, {
    batchSize: config.sync?.batchSize,
    retry: config.sync?.retry,
    pauseProbeMs: config.sync?.pauseProbeMs,
    onEvent,
  });
}

export function logRelayEvent(log: Logger, e: RelayEvent): void {
  switch (e.type) {
    case 'paused':
      log.error({ target: e.target, alert: e.alert }, 'sync target paused: it refuses this station');
      return;
    case 'resumed':
      log.warn({ target: e.target }, 'sync target resumed');
      return;
    case 'retry':
      log.warn({ target: e.target, records: e.records, error: e.error, delayMs: e.delayMs }, 'sync delivery failed; will retry');
      return;
    case 'sent':
      if (e.deadLettered > 0) log.error({ ...e }, 'sync: records dead-lettered');
      else log.debug({ ...e }, 'sync batch delivered');
      return;
  }
}

export interface StationSync {
  recorder: DeviceRecorder;
  /** Present when at least one target is configured. */
  relay: OutboxRelay | undefined;
  targets: SyncTargetName[];
  close(): Promise<void>;
}

/**
 * Opens records + sync for a run. `worker` runs the PKCS#11 named ops (the run's
 * Pkcs11WorkerSigner): the identity key is used there and only there.
 */
export async function openStationSync(opts: { config: StationConfig; dataDir: string; store: SqliteRecordStore; worker: WorkerOpRunner; log: Logger }): Promise<StationSync> {
  const { config, dataDir, store, log } = opts;
  const targets = createSyncTargets(config, dataDir);
  let signer: RecordSigner | null = null;
  try {
    const identity = await HsmIdentitySigner.open(opts.worker);
    signer = new RecordSigner(identity, loadStationIdentityCertificate(dataDir, identity.publicKeySpki, config.stationId));
  } catch (err) {
    const e = asStationError(err);
    if (targets.length > 0) {
      for (const t of targets) t.close();
      throw new ConfigError(e.code, `Sync is configured, but records cannot be signed: ${e.message}`, { cause: err });
    }
    log.warn({ code: e.code, reason: e.message }, 'no station identity: device records are kept unsigned (sync is disabled)');
  }
  const relay = targets.length > 0 ? createRelay(config, store, targets, (e) => logRelayEvent(log, e)) : undefined;
  const recorder = new DeviceRecorder(store, signer, targets.map((t) => t.name));
  return {
    recorder,
    relay,
    targets: recorder.targets.slice(),
    close: async () => {
      await relay?.stop();
      relay?.close();
    },
  };
}

/**
 * For admin commands that sign (`station device retire`, `station export --format jws`): opens
 * the IDevID CA's PKCS#11 worker, finds the station identity key there and its certificate, runs
 * `fn`, and closes the worker.
 */
export async function withStationIdentity<T>(
  config: StationConfig,
  dataDir: string,
  env: NodeJS.ProcessEnv,
  fn: (identity: { signer: HsmIdentitySigner; certificateDer: Buffer; worker: WorkerOpRunner; idevidChain: Buffer[] }) => Promise<T>,
): Promise<T> {
  const ca = openIdevidCa(config.hsm, dataDir, env);
  try {
    await ca.ready();
    const signer = await HsmIdentitySigner.open(ca.signer);
    const certificateDer = loadStationIdentityCertificate(dataDir, signer.publicKeySpki, config.stationId);
    return await fn({ signer, certificateDer, worker: ca.signer, idevidChain: ca.chain });
  } finally {
    await ca.close();
  }
}
