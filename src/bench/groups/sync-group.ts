/**
 * Group `sync` (contracts.md §4; docs/records-and-sync.md "Benchmark"):
 *
 * - `sync_drain_per_s`: signed records delivered per second by the outbox relay, in bulk
 *   (batches of `batchSize`), over HTTPS with mutual TLS on loopback to a sink that stores each
 *   record once by its idempotency key (src/bench/https-record-sink.ts: the minimal in-bench sink;
 *   it does not verify signatures, which the reference MASA does). Each repetition drains a fresh
 *   outbox of `drainRecords` records; median of the repetitions.
 * - `sync_overhead_1m_ratio`: the record stage's database work per device (build the payload from
 *   the committed rows, one FULL-sync transaction with device row, signed record, audit event and
 *   two outbox rows) with `seedDevices` devices already recorded, divided by the same on an empty
 *   database. The signature is made before the clock by a software key (the HSM's cost is the
 *   same in both and is the `ca` group's). Seeding uses a batched insert.
 * - `db_lookup_1m_p99_ms`: p99 of single lookups by serial, MAC, SE serial and public key hash
 *   (random existing values) in that database.
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultStationConfig, type WorkOrder } from '../../core/config';
import type { Signer } from '../../core/ports/signer';
import { OutboxRelay } from '../../manufacturer-db/outbox/outbox-relay';
import { DeviceRecorder } from '../../manufacturer-db/records/device-recorder';
import { RecordSigner } from '../../manufacturer-db/records/record-signer';
import { openDatabase, type SqliteDb } from '../../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import { HttpsSyncTarget } from '../../manufacturer-db/sync-targets/https-sync-target';
import { fromPem } from '../../hsm/ca/x509-builder';
import { HttpsRecordSink } from '../https-record-sink';
import { MIN_REPETITIONS, median } from '../stats';
import { issueTlsCertificate, makeTlsTestPki } from '../tls-test-pki';
import type { BenchContext, BenchGroup, Figure } from '../types';

export interface SyncGroupOptions {
  repetitions: number;
  drainRecords: number;
  batchSize: number;
  /** Devices already recorded for the overhead and lookup figures. */
  seedDevices: number;
  /** Devices recorded (timed) per overhead measurement. */
  overheadDevices: number;
  lookupsPerKind: number;
}

export const SYNC_GROUP_DEFAULTS: SyncGroupOptions = {
  repetitions: MIN_REPETITIONS,
  drainRecords: 6000,
  batchSize: 500,
  seedDevices: Number(process.env.BENCH_SYNC_SEED_DEVICES ?? 1_000_000),
  overheadDevices: 600,
  lookupsPerKind: 2000,
};

const WO: WorkOrder = { ...defaultStationConfig().workOrders[0]!, id: 'WO-BENCH', serial: { prefix: 'B-', width: 8, first: 1, last: 99_999_999 } };

const mac = (n: number) => `02${n.toString(16).padStart(10, '0')}`;
const serialOf = (n: number) => `B-${String(n).padStart(8, '0')}`;

/** One transaction per 20k devices: device, MAC, certificate, signed record and two delivered outbox rows each. */
function seed(db: SqliteDb, from: number, count: number, log: (m: string) => void): void {
  const now = new Date().toISOString();
  const fakeCert = Buffer.alloc(450, 0x30);
  const sig = 'A'.repeat(86);
  const certB64 = fakeCert.toString('base64');
  const dev = db.prepare(
    `INSERT INTO devices (serial, work_order_id, run_id, station_id, port, hardware_id, model, firmware_version, method, key_origin, public_key_sha256, certificate_serial, dpp_uri, status, label_state, se_serial, record_sequence, recorded_at, passed_at, created_at, updated_at)
     VALUES (?, 'WO-BENCH', 'run-seed', 'station-1', 'p', ?, 'DemoSensor-1', '1', 'secure-element-keygen', 'secure-element', ?, ?, ?, 'passed', 'printed', ?, 1, ?, ?, ?, ?)`,
  );
  const m = db.prepare('INSERT INTO device_macs (mac, serial) VALUES (?, ?)');
  const c = db.prepare("INSERT INTO certificates (serial_hex, device_serial, work_order_id, der, public_key_sha256, issued_at) VALUES (?, ?, 'WO-BENCH', ?, ?, ?)");
  const r = db.prepare("INSERT INTO device_records (serial, sequence, status, idempotency_key, payload, signature, station_certificate, created_at) VALUES (?, 1, 'active', ?, ?, ?, 'MIIB', ?)");
  const o = db.prepare("INSERT INTO outbox (target, record_id, idempotency_key, device_serial, sequence, state, attempts, next_attempt_at, created_at, updated_at, delivered_at) VALUES (?, ?, ?, ?, 1, 'delivered', 1, 0, ?, ?, ?)");
  const chunk = 20_000;
  for (let start = from; start < from + count; start += chunk) {
    db.transaction(() => {
      for (let n = start; n < Math.min(from + count, start + chunk); n++) {
        const serial = serialOf(n);
        const keyHash = createHash('sha256').update(serial).digest('hex');
        const certSerial = keyHash.slice(0, 32);
        const dpp = `DPP:C:81/1;M:${mac(n)};I:${serial};V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAD${keyHash.slice(0, 43)}=;;`;
        dev.run(serial, n.toString(16).padStart(16, '0'), keyHash, certSerial, dpp, `se${n.toString(16).padStart(14, '0')}`, now, now, now, now);
        m.run(mac(n), serial);
        c.run(certSerial, serial, fakeCert, keyHash, now);
        const key = `station-1:${serial}:1`;
        // canonical JSON written directly (keys already in order): seeding speed, same bytes as canonicalJson
        const payload = `{"certificateSerial":"${certSerial}","chipId":null,"dppUri":"${dpp}","idevid":"${certB64}","keyOrigin":"secure-element","macs":["${mac(n)}"],"method":"secure-element-keygen","model":"DemoSensor-1","owner":null,"publicKeySha256":"${keyHash}","recordedAt":"${now}","schema":"device-record-v1","seSerial":null,"sequence":1,"serial":"${serial}","stationId":"station-1","status":"active","voidReason":null,"workOrder":"WO-BENCH"}`;
        const id = Number((r.run(serial, key, payload, sig, now) as { lastInsertRowid: number | bigint }).lastInsertRowid);
        o.run('masa', id, key, serial, now, now, now);
        o.run('supply-chain', id, key, serial, now, now, now);
      }
    })();
    if ((start - from) % 200_000 === 0) log(`seeded ${start - from + chunk} of ${count}`);
  }
}

function identity(dir: string): { signer: Signer; cert: Buffer; tls: ReturnType<typeof makeTlsTestPki> } {
  const tls = makeTlsTestPki(dir);
  const id = issueTlsCertificate(dir, 'identity', 'station-1', 'keyUsage=critical,digitalSignature\n');
  const key = createPrivateKey(readFileSync(id.key));
  const cert = fromPem(readFileSync(id.cert, 'utf8'))[0]!;
  const spki = new X509Certificate(cert).publicKey.export({ format: 'der', type: 'spki' });
  return { signer: { algorithm: 'ecdsa-p256-sha256', publicKeySpki: spki, sign: async (d) => nodeSign('sha256', d, { key, dsaEncoding: 'der' }) }, cert, tls };
}

/** Devices allocated and issued (untimed), then recorded through DeviceRecorder (timed per device: DB work only). */
async function recordOverheadMs(store: SqliteRecordStore, recorder: DeviceRecorder, first: number, count: number): Promise<number> {
  const keys = Array.from({ length: count }, () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' }));
  const serials: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = first + i;
    const serial = store.allocateDevice({ runId: 'run-bench', workOrder: WO, port: 'p', hardwareId: 'ff', model: 'DemoSensor-1', firmwareVersion: '1', macs: [mac(n)], method: 'secure-element-keygen' });
    const h = createHash('sha256').update(keys[i]!).digest('hex');
    store.recordIssued({ certificateSerialHex: h.slice(0, 32), deviceSerial: serial, workOrderId: WO.id, certificateDer: Buffer.alloc(450, 0x30), publicKeySha256Hex: h, issuedAt: new Date() });
    serials.push(serial);
  }
  let total = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await recorder.recordVerified({ serial: serials[i]!, keyOrigin: 'secure-element', publicKeySpki: keys[i]!, dppUri: `DPP:M:${mac(first + i)};K:x;;`, stages: [], runId: 'run-bench', facts: { seSerial: `se${i}` } });
    total += performance.now() - t0;
  }
  return total / count;
}

/** Records signed by a software key: the same signing cost with or without the million devices. */
function presignedRecorder(store: SqliteRecordStore, signer: Signer, cert: Buffer): DeviceRecorder {
  return new DeviceRecorder(store, new RecordSigner(signer, cert), ['masa', 'supply-chain']);
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

export function createSyncGroup(overrides: Partial<SyncGroupOptions> = {}): BenchGroup {
  const o: SyncGroupOptions = { ...SYNC_GROUP_DEFAULTS, ...overrides };
  return {
    name: 'sync',
    description: 'outbox drain to an HTTPS sink (mTLS, loopback), per-device record overhead at 1M devices, lookups at 1M devices',
    async run(ctx: BenchContext): Promise<Figure[]> {
      const { signer, cert, tls } = identity(join(ctx.dataDir, 'pki'));
      ctx.note('sync parameters', `drain ${o.drainRecords} records x ${o.repetitions}, batches of ${o.batchSize}; seed ${o.seedDevices} devices; ${o.overheadDevices} timed records; ${o.lookupsPerKind} lookups per kind`);
      ctx.note('sync sink', 'minimal in-bench HTTPS sink (src/bench/https-record-sink.ts): mutual TLS, idempotent store, no signature check');

      // --- drain
      const rates: number[] = [];
      for (let rep = 0; rep < o.repetitions; rep++) {
        const dir = join(ctx.dataDir, `drain-${rep}`);
        mkdirSync(dir, { recursive: true });
        const store = new SqliteRecordStore(openDatabase(join(dir, 'station.db')), 'station-1');
        store.ensureWorkOrder(WO);
        store.db.prepare("INSERT INTO runs (id, station_id, work_order_id, started_at) VALUES ('run-seed', 'station-1', 'WO-BENCH', ?)").run(new Date().toISOString());
        seed(store.db, 1, o.drainRecords, () => undefined);
        store.db.prepare("UPDATE outbox SET state = 'pending', attempts = 0, delivered_at = NULL WHERE target = 'masa'").run();
        store.db.prepare("DELETE FROM outbox WHERE target = 'supply-chain'").run();
        const sink = new HttpsRecordSink({ caCert: tls.caCert, serverCert: tls.serverCert, serverKey: tls.serverKey });
        const url = await sink.start();
        const target = new HttpsSyncTarget({ name: 'masa', url, serverCaCertificatePath: tls.caCert, clientKeyPath: tls.clientKey, clientCertificatePath: tls.clientCert });
        const relay = new OutboxRelay(store.outbox, [target], { batchSize: o.batchSize });
        const t0 = performance.now();
        const r = await relay.drain(120_000);
        const seconds = (performance.now() - t0) / 1000;
        relay.close();
        await sink.stop();
        store.close();
        if (!r.drained || sink.stored.size !== o.drainRecords) throw new Error(`drain incomplete: ${sink.stored.size} of ${o.drainRecords} stored`);
        rates.push(o.drainRecords / seconds);
      }
      ctx.log(`sync drain records/s per repetition: ${rates.map((x) => x.toFixed(0)).join(', ')}`);

      // --- overhead: an empty database and the seeded one, measured in alternating rounds (fsync noise hits both)
      const emptyDir = join(ctx.dataDir, 'empty');
      mkdirSync(emptyDir, { recursive: true });
      const empty = new SqliteRecordStore(openDatabase(join(emptyDir, 'station.db')), 'station-1');
      empty.ensureWorkOrder(WO);
      empty.startRun('run-bench', WO.id);
      const bigDir = join(ctx.dataDir, 'big');
      mkdirSync(bigDir, { recursive: true });
      const big = new SqliteRecordStore(openDatabase(join(bigDir, 'station.db')), 'station-1');
      big.ensureWorkOrder(WO);
      big.db.prepare("INSERT INTO runs (id, station_id, work_order_id, started_at) VALUES ('run-seed', 'station-1', 'WO-BENCH', ?)").run(new Date().toISOString());
      big.startRun('run-bench', WO.id);
      const s0 = performance.now();
      big.db.pragma('synchronous = NORMAL'); // seeding only; the timed part runs with FULL again
      seed(big.db, 1, o.seedDevices, (m) => ctx.log(m));
      big.db.pragma('synchronous = FULL');
      ctx.note('sync seed', `${o.seedDevices} devices in ${((performance.now() - s0) / 1000).toFixed(1)} s (batched insert)`);
      big.db.prepare('UPDATE work_orders SET next_serial = ? WHERE id = ?').run(o.seedDevices + 1, WO.id);
      const emptyRounds: number[] = [];
      const bigRounds: number[] = [];
      const perRound = Math.ceil(o.overheadDevices / o.repetitions);
      for (let round = 0; round < o.repetitions; round++) {
        emptyRounds.push(await recordOverheadMs(empty, presignedRecorder(empty, signer, cert), 50_000_000 + round * perRound, perRound));
        bigRounds.push(await recordOverheadMs(big, presignedRecorder(big, signer, cert), 60_000_000 + round * perRound, perRound));
      }
      empty.close();
      const emptyMs = median(emptyRounds);
      const bigMs = median(bigRounds);
      ctx.note('sync record overhead', `${emptyMs.toFixed(3)} ms/device empty, ${bigMs.toFixed(3)} ms/device with ${o.seedDevices} devices (medians of ${o.repetitions} alternating rounds of ${perRound}; FULL sync, WAL)`);

      // --- lookups
      const lookups: number[] = [];
      const bySerial = big.db.prepare('SELECT * FROM devices WHERE serial = ?');
      const byMac = big.db.prepare('SELECT d.* FROM device_macs m JOIN devices d ON d.serial = m.serial WHERE m.mac = ?');
      const bySe = big.db.prepare('SELECT * FROM devices WHERE se_serial = ?');
      const byKey = big.db.prepare('SELECT * FROM devices WHERE public_key_sha256 = ?');
      for (let i = 0; i < o.lookupsPerKind; i++) {
        const n = 1 + Math.floor(Math.random() * o.seedDevices);
        const serial = serialOf(n);
        const probes: [ReturnType<SqliteDb['prepare']>, string][] = [
          [bySerial, serial],
          [byMac, mac(n)],
          [bySe, `se${n.toString(16).padStart(14, '0')}`],
          [byKey, createHash('sha256').update(serial).digest('hex')],
        ];
        for (const [stmt, v] of probes) {
          const t0 = performance.now();
          const row = stmt.get(v);
          lookups.push(performance.now() - t0);
          if (!row) throw new Error(`lookup of ${v} found nothing`);
        }
      }
      big.close();
      const lookupP99 = p99(lookups);
      ctx.note('sync lookups', `p50 ${median(lookups).toFixed(4)} ms, p99 ${lookupP99.toFixed(4)} ms over ${lookups.length}`);

      return [
        { name: 'sync_drain_per_s', value: median(rates), unit: 'records/s', target: { op: '>=', value: 2000 } },
        { name: 'sync_overhead_1m_ratio', value: bigMs / emptyMs, unit: 'ratio', target: { op: '<=', value: 1.1 } },
        { name: 'db_lookup_1m_p99_ms', value: lookupP99, unit: 'ms', target: { op: '<=', value: 1 } },
      ];
    },
  };
}

export const syncGroup: BenchGroup = createSyncGroup();
