/**
 * The prepared-batch half of the `line` group, as its own process (its own SoftHSM
 * initialisation, PKCS#11 worker and database; the harness's process is never the station):
 *
 *   node dist/bench/line-prepare-child.js '<LinePrepareSpec as JSON>'
 *
 * In one data dir and one run: the test PKI; the raw HSM rates (C_Sign on the CA key, one
 * session, one thread; the worker's inject.generate-wrapped alone); `count` factory-injected
 * devices prepared (prepareKeys); a vendor-kit seed file of `count` chips imported and their
 * certificates prepared (importSeedFile + prepareSeedCertificates). Prints one JSON line
 * (LinePrepareResult) on stdout.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultStationConfig } from '../core/config';
import { Pkcs11SeedVault } from '../hsm/seeds/pkcs11-seed-vault';
import { SqlitePreparedSeedStore } from '../manufacturer-db/prepared-seed-store';
import { SqliteSeedStore } from '../manufacturer-db/seed-store';
import { openDatabase } from '../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../manufacturer-db/sqlite-record-store';
import { importSeedFile } from '../methods/seed-derived/seed-import';
import { openFactoryInjection, prepareKeys } from '../station/admin/prepare';
import { prepareSeedCertificates } from '../station/admin/prepare-seed';
import { runSeedVendorKit } from '../station/simulate/simulator-process';
import { createStation, databasePath } from '../station/station';
import { createFileLogger } from '../station/pino-logger';

export interface LinePrepareSpec {
  dataDir: string;
  count: number;
  seedCount: number;
  repetitions: number;
  /** Seconds of C_Sign per repetition. */
  rawSignSeconds: number;
  /** Keys per repetition of the raw keygen + wrap rate. */
  rawKeygenKeys: number;
}

export interface LinePrepareResult {
  rawSignPerS: number[];
  rawKeygenWrapPerS: number[];
  injected: { count: number; seconds: number; cpuSeconds: number; available: number };
  seed: { count: number; kitSeconds: number; importSeconds: number; prepareSeconds: number; cpuSeconds: number; waiting: number };
  /** Size of the station database after both prepares. */
  databaseBytes: number;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1e6;
}

async function main(spec: LinePrepareSpec): Promise<LinePrepareResult> {
  const config = defaultStationConfig();
  const log = createFileLogger(join(spec.dataDir, 'station.log'), { station: config.stationId, command: 'bench-prepare' });
  const station = createStation(config, { dataDir: spec.dataDir, log });
  await station.pkiInit();
  const ca = await station.openCa();
  const store = new SqliteRecordStore(openDatabase(databasePath(spec.dataDir)), config.stationId);
  try {
    const injectWo = config.workOrders.find((w) => w.method === 'factory-injected-key')!;
    const seedWo = config.workOrders.find((w) => w.method === 'seed-derived')!;
    const product = config.products[injectWo.product]!;
    store.ensureWorkOrder(injectWo);
    store.ensureWorkOrder(seedWo);
    const injection = await openFactoryInjection({ ca, store, hsm: config.hsm, workOrder: injectWo, product, mode: 'prepared', createKek: true, log });

    // Raw rates, same token, same run.
    const caKey = ca.token.findPrivateKey(config.hsm.caKeyLabel);
    if (!caKey) throw new Error(`the CA key ${config.hsm.caKeyLabel} is not on the token`);
    const digest = randomBytes(32);
    for (let i = 0; i < 200; i++) ca.token.signDigestRaw(caKey, digest);
    const rawSignPerS: number[] = [];
    for (let r = 0; r < spec.repetitions; r++) {
      let n = 0;
      const t0 = performance.now();
      const end = t0 + spec.rawSignSeconds * 1000;
      let now = t0;
      do {
        ca.token.signDigestRaw(caKey, digest);
        n++;
        now = performance.now();
      } while (now < end);
      rawSignPerS.push(n / ((now - t0) / 1000));
    }
    await injection.injector.generateWrapped(256);
    const rawKeygenWrapPerS: number[] = [];
    for (let r = 0; r < spec.repetitions; r++) {
      const t0 = performance.now();
      const keys = await injection.injector.generateWrapped(spec.rawKeygenKeys);
      rawKeygenWrapPerS.push(keys.length / ((performance.now() - t0) / 1000));
    }

    // Factory-injected: `count` devices prepared (key, wrap, serial, certificate, durable rows).
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const injected = await prepareKeys({ store, keys: injection.keys, injector: injection.injector, ca, workOrder: injectWo, product, count: spec.count, log });
    const injectSeconds = (performance.now() - t0) / 1000;
    const injectCpu = cpuSeconds(c0);
    if (injected.prepared !== spec.count || injected.available < spec.count) throw new Error(`prepared ${injected.prepared} keys (${injected.failed} failed), ${spec.count} asked for`);

    // Seed-derived: the chip vendor's file (untimed: the vendor's work), then import + prepare.
    const simDir = join(spec.dataDir, 'sim');
    mkdirSync(simDir, { recursive: true });
    const seedVault = new Pkcs11SeedVault(ca.signer, config.hsm);
    const spki = await seedVault.recipientPublicKey();
    const recipientPemPath = join(simDir, 'seed-recipient.pem');
    writeFileSync(recipientPemPath, `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`);
    const seedFile = join(simDir, 'seed-file.json');
    const k0 = performance.now();
    await runSeedVendorKit({ dir: simDir, recipientPemPath, count: spec.seedCount, out: seedFile });
    const kitSeconds = (performance.now() - k0) / 1000;
    const s0 = process.cpuUsage();
    const i0 = performance.now();
    const imported = await importSeedFile({ seedVault, seedStore: new SqliteSeedStore(store.db, config.stationId) }, readFileSync(seedFile), 'bench');
    const importSeconds = (performance.now() - i0) / 1000;
    if (imported.added !== spec.seedCount) throw new Error(`imported ${imported.added} chips, ${spec.seedCount} in the file`);
    const p0 = performance.now();
    const seeds = new SqlitePreparedSeedStore(store);
    const seedPrepared = await prepareSeedCertificates({ store, seeds, seedVault, ca, workOrder: seedWo, product, count: spec.seedCount, log });
    const prepareSeconds = (performance.now() - p0) / 1000;
    const seedCpu = cpuSeconds(s0);
    if (seedPrepared.prepared !== spec.seedCount) throw new Error(`prepared ${seedPrepared.prepared} seed certificates (${seedPrepared.failed} failed, ${seedPrepared.short} short), ${spec.seedCount} asked for`);

    const certificates = Number(store.db.prepare("SELECT COUNT(*) FROM certificates WHERE status = 'active'").pluck().get());
    if (certificates < spec.count + spec.seedCount) throw new Error(`the database holds ${certificates} active certificates, ${spec.count + spec.seedCount} were prepared`);
    return {
      rawSignPerS,
      rawKeygenWrapPerS,
      injected: { count: spec.count, seconds: injectSeconds, cpuSeconds: injectCpu, available: injected.available },
      seed: { count: spec.seedCount, kitSeconds, importSeconds, prepareSeconds, cpuSeconds: seedCpu, waiting: seedPrepared.waiting },
      databaseBytes: Number(store.db.pragma('page_count', { simple: true })) * Number(store.db.pragma('page_size', { simple: true })),
    };
  } finally {
    store.close();
    await ca.close();
    log.flush();
  }
}

if (require.main === module) {
  main(JSON.parse(process.argv[2] ?? '{}') as LinePrepareSpec).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`line-prepare-child: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
