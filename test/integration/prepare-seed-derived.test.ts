/**
 * Method 5 prepared ahead (src/station/admin/prepare-seed.ts), on real parts: SoftHSM through
 * the PKCS#11 worker, a real SQLite file, a seed file written as a chip vendor would. Checked:
 * only imported, unbound chips are prepared (and a shortfall is reported); each certificate is
 * over the key the chip's own seed derives (computed here from the seed, not by the station);
 * the device record waits with status `issued`; the audit chain holds; a device presenting the
 * chip takes the prepared serial once (claim), in its work order only; and the method hands the
 * certificate on as `pre-issued` after deriving and comparing the key again.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../src/core/config';
import { p256PointFromSpki, p256SpkiFromPoint } from '../../src/core/ec-public-key';
import { deriveSeedPublicKeySpki } from '../../src/core/seed-derivation';
import type { DeviceClient, DeviceIdentity } from '../../src/device/device-client';
import type { IdevidCa } from '../../src/hsm/ca/idevid-ca';
import { Pkcs11SeedVault } from '../../src/hsm/seeds/pkcs11-seed-vault';
import { verifyAuditChain } from '../../src/manufacturer-db/audit-chain';
import { SqlitePreparedSeedStore } from '../../src/manufacturer-db/prepared-seed-store';
import { SqliteSeedStore } from '../../src/manufacturer-db/seed-store';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../src/manufacturer-db/sqlite-record-store';
import { SeedDerivedMethod } from '../../src/methods/seed-derived/seed-derived-method';
import { importSeedFile } from '../../src/methods/seed-derived/seed-import';
import { writeSeedFile } from '../../src/simulator/vendor/seed-file-writer';
import { prepareSeedCertificates } from '../../src/station/admin/prepare-seed';
import { createFileLogger } from '../../src/station/pino-logger';
import { createStation, databasePath } from '../../src/station/station';
import { testDir } from '../helpers/station-cli';

/** The birth key's public key from the chip's seed (contracts.md §7's derivation; its openssl vectors are checked in test/unit). */
const seedDerivedSpki = (seed: Buffer, chipId: Buffer): Buffer => p256SpkiFromPoint(p256PointFromSpki(deriveSeedPublicKeySpki(seed, chipId)));
const normal = (spki: Buffer): Buffer => p256SpkiFromPoint(p256PointFromSpki(spki));

const config = parseStationConfig(defaultStationConfig(), 'defaults');
const wo = config.workOrders.find((w) => w.method === 'seed-derived')!;
const product = config.products[wo.product]!;

describe('station prepare, seed-derived', () => {
  const dataDir = join(testDir('prepare-m5'), 'data');
  const log = createFileLogger(join(dataDir, 'station.log'), {});
  const chips = Array.from({ length: 3 }, () => ({ chipId: randomBytes(8), seed: randomBytes(32) }));
  let ca: IdevidCa;
  let store: SqliteRecordStore;
  let seeds: SqlitePreparedSeedStore;
  let vault: Pkcs11SeedVault;
  let result: Awaited<ReturnType<typeof prepareSeedCertificates>>;

  beforeAll(async () => {
    const station = createStation(config, { dataDir, log });
    await station.pkiInit();
    ca = await station.openCa();
    store = new SqliteRecordStore(openDatabase(databasePath(dataDir)), config.stationId);
    store.ensureWorkOrder(wo);
    vault = new Pkcs11SeedVault(ca.signer, config.hsm);
    const file = writeSeedFile(await vault.recipientPublicKey(), { vendor: 'Acme Chips', lot: 'L-1', chips });
    await importSeedFile({ seedVault: vault, seedStore: new SqliteSeedStore(store.db, config.stationId) }, file, 'test');
    seeds = new SqlitePreparedSeedStore(store);
    store.startRun('run-test', wo.id);
    result = await prepareSeedCertificates({ store, seeds, seedVault: vault, ca, workOrder: wo, product, count: 5, log, chunk: 2 });
  }, 60_000);

  afterAll(async () => {
    store?.close();
    await ca?.close();
  });

  it('prepares every imported chip and reports the shortfall', () => {
    expect(result).toMatchObject({ prepared: 3, failed: 0, short: 2, waiting: 3 });
    expect(seeds.unprepared(10)).toEqual([]);
  });

  it('issues each certificate over the key the chip\'s own seed derives, and keeps the record waiting', () => {
    for (const chip of chips) {
      const row = store.db
        .prepare("SELECT d.serial, d.status, d.port, c.der FROM seeds s JOIN devices d ON d.serial = s.bound_serial JOIN certificates c ON c.device_serial = d.serial AND c.status = 'active' WHERE s.chip_id = ?")
        .get(chip.chipId.toString('hex')) as { serial: string; status: string; port: string; der: Buffer };
      expect(row.status).toBe('issued');
      expect(row.port).toBe('prepare');
      const cert = new X509Certificate(row.der);
      expect(cert.verify(new X509Certificate(ca.chain[0]!).publicKey)).toBe(true);
      expect(normal(cert.publicKey.export({ type: 'spki', format: 'der' })).equals(seedDerivedSpki(chip.seed, chip.chipId))).toBe(true);
    }
    expect(verifyAuditChain(store.db).ok).toBe(true);
  });

  it('gives the prepared serial to the device presenting the chip, once, in its work order only', () => {
    const chipId = chips[0]!.chipId.toString('hex');
    const device = { runId: 'run-test', port: '/dev/test0', hardwareId: 'hw-0', model: product.model, firmwareVersion: '1.0.0', macs: ['02aabbcc0001'] };
    expect(seeds.claim(chipId, 'WO-DEMO-1', device)).toBeUndefined();
    const claim = seeds.claim(chipId, wo.id, device);
    expect(claim?.serial).toMatch(/^SEED-\d{6}$/);
    expect(seeds.claim(chipId, wo.id, { ...device, hardwareId: 'hw-clone', macs: ['02aabbcc0002'] })).toBeUndefined();
    expect(store.getDevice(claim!.serial)).toMatchObject({ status: 'issued', port: '/dev/test0', hardwareId: 'hw-0' });
  });

  it('hands the certificate on as pre-issued after deriving the key again in the HSM', async () => {
    const method = new SeedDerivedMethod({ stationId: config.stationId, seedVault: vault, seedStore: new SqliteSeedStore(store.db, config.stationId), preparedSeedCertificates: seeds, caChain: ca.chain });
    const chip = chips[1]!;
    const identity = { model: product.model, hardwareId: 'hw-1', firmwareVersion: '1.0.0', macs: ['02aabbcc0011'], chipId: chip.chipId.toString('hex') } as DeviceIdentity;
    // obtain-key reads only the port name from the client (for its messages); no link is used here.
    const client = { port: '/dev/test1' } as DeviceClient;
    const signal = new AbortController().signal;
    const serial = await method.assignSerial({ client, identity, runId: 'run-test', workOrderId: wo.id, port: '/dev/test1', signal, allocate: () => 'NOT-PREPARED' });
    expect(serial).not.toBe('NOT-PREPARED');
    const material = await method.obtainKeyMaterial({ client, identity, serial, workOrderId: wo.id, signal });
    expect(material.kind).toBe('pre-issued');
    if (material.kind !== 'pre-issued') return;
    expect(normal(material.spki).equals(seedDerivedSpki(chip.seed, chip.chipId))).toBe(true);
    expect(new X509Certificate(material.certificateDer).subject).toContain(serial);
    expect(material.chain).toEqual([...ca.chain]);
    // a chip with nothing prepared goes the usual way
    const other = { ...identity, hardwareId: 'hw-9', chipId: randomBytes(8).toString('hex') };
    expect(await method.assignSerial({ client, identity: other, runId: 'run-test', workOrderId: wo.id, port: '/dev/test1', signal, allocate: () => 'ALLOCATED' })).toBe('ALLOCATED');
  });
});
