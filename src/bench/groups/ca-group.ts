/**
 * Group `ca` (contracts.md §4): IDevID issuances per second through the station's own issuer,
 * against raw C_Sign on the same token and against a shell loop of openssl commands.
 *
 * - ca_raw_sign_per_s: synchronous C_Sign(CKM_ECDSA) on a 32-byte digest with the CA key, one
 *   session, one thread, ~1 s per repetition.
 * - ca_issuance_per_s: per device, a distinct CSR from a distinct P-256 key (made before the
 *   clock starts), then serial allocation (allocateDevice), CSR check (checkCsr: parse, proof of
 *   possession, serial) and IdevidIssuer.issue, which records the certificate in the WAL,
 *   synchronous=FULL database before returning it.
 * - ca_openssl_loop_per_s: scripts/openssl-loop.sh over 200 devices, from wall time.
 * Each rate is the median of three repetitions; the ratios divide the medians.
 */
import { X509Certificate, generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultStationConfig, formatSerial, type HsmConfig, type WorkOrder } from '../../core/config';
import { checkCsr } from '../../hsm/ca/csr-check';
import { openIdevidCa, type IdevidCa } from '../../hsm/ca/idevid-ca';
import { IdevidIssuer } from '../../hsm/ca/idevid-issuer';
import { initTestPki } from '../../hsm/ca/test-pki';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import { buildCsr } from '../../simulator/csr-builder';
import { useFreshSoftHsm } from '../softhsm-env';
import { MIN_REPETITIONS, medianRate } from '../stats';
import type { IssuanceJournal } from '../../core/ports/issuance-journal';
import type { BenchGroup, Figure } from '../types';

export interface CaGroupOptions {
  repetitions: number;
  /** Issuances per repetition. */
  issuanceBatch: number;
  /** Untimed issuances before the first repetition (JIT, caches, first fsyncs). */
  warmupIssuances: number;
  /** Seconds of raw C_Sign per repetition. */
  rawSignSeconds: number;
  /** Devices per openssl-loop run (contracts.md §4: 200). */
  opensslDevices: number;
  /** Informational target for ca_issuance_per_s. */
  issuanceTarget: number;
}

export const CA_GROUP_DEFAULTS: CaGroupOptions = {
  repetitions: MIN_REPETITIONS,
  issuanceBatch: 300,
  warmupIssuances: 30,
  rawSignSeconds: 1,
  opensslDevices: 200,
  issuanceTarget: 200,
};

/** scripts/openssl-loop.sh, from dist/bench/groups or src/bench/groups alike. */
export function opensslLoopScript(): string {
  return resolve(__dirname, '..', '..', '..', 'scripts', 'openssl-loop.sh');
}

function toolVersion(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim().split('\n')[0]!;
  } catch (err) {
    return `unavailable (${(err as Error).message.split('\n')[0]})`;
  }
}

interface PreparedDevice {
  serial: string;
  csr: Buffer;
  mac: string;
}

function macFor(n: number): string {
  const hex = n.toString(16).padStart(10, '0').slice(-10);
  return ['02', ...hex.match(/../g)!].join(':');
}

export function createCaGroup(overrides: Partial<CaGroupOptions> = {}): BenchGroup {
  const o: CaGroupOptions = { ...CA_GROUP_DEFAULTS, ...overrides };
  return {
    name: 'ca',
    description: 'IDevID issuance (CSR check + issuer + FULL-sync record) vs raw C_Sign vs an openssl shell loop',
    async run(ctx): Promise<Figure[]> {
      const config = defaultStationConfig();
      // A fresh token in this group's data dir; its PIN is generated into the 0600 file there
      // (the PIN environment variable is deliberately not consulted).
      const hsm: HsmConfig = { ...config.hsm, tokenLabel: 'bench-ca', pin: { file: 'hsm-pin' } };
      const product = config.products['demo-sensor']!;
      const baseWo = config.workOrders[0]!;
      const wo: WorkOrder = { ...baseWo, id: 'WO-BENCH-CA', serial: { prefix: 'BENCH-', width: 7, first: 1, last: 9_999_999 } };

      ctx.note('softhsm2-util --version', toolVersion('softhsm2-util', ['--version']));
      ctx.note('openssl version', toolVersion('openssl', ['version']));
      ctx.note('parameters', `${o.repetitions} repetitions; ${o.issuanceBatch} issuances, ~${o.rawSignSeconds} s of C_Sign, ${o.opensslDevices} openssl devices per repetition`);

      const script = opensslLoopScript();
      if (!existsSync(script)) throw new Error(`the openssl loop script ${script} is missing`);

      const softhsm = useFreshSoftHsm(hsm.module, ctx.dataDir);
      let ca: IdevidCa | undefined;
      let store: SqliteRecordStore | undefined;
      try {
        ctx.log('initialising a fresh SoftHSM token and test PKI');
        await initTestPki({ dataDir: ctx.dataDir, hsm, organization: product.idevid.organization, env: process.env });
        ca = openIdevidCa(hsm, ctx.dataDir, process.env);
        store = new SqliteRecordStore(openDatabase(join(ctx.dataDir, 'station.db')), 'bench-station');
        const journalMode = String(store.db.pragma('journal_mode', { simple: true }));
        const synchronous = Number(store.db.pragma('synchronous', { simple: true }));
        if (journalMode !== 'wal' || synchronous !== 2) {
          throw new Error(`the station database is not WAL + synchronous=FULL (journal_mode=${journalMode}, synchronous=${synchronous})`);
        }
        ctx.note('database', `better-sqlite3, journal_mode=${journalMode}, synchronous=FULL, one transaction per allocation and per issuance`);
        store.ensureWorkOrder(wo);
        const runId = `bench-ca-${Date.now()}`;
        store.startRun(runId, wo.id);
        // The journal is the record store itself; the wrapper only adds up the time spent recording.
        const stages = { allocate: 0, check: 0, issue: 0, record: 0, devices: 0 };
        const journal: IssuanceJournal = {
          findDeviceByPublicKey: (h) => store!.findDeviceByPublicKey(h),
          recordIntent: (i) => {
            const t = performance.now();
            store!.recordIntent(i);
            stages.record += performance.now() - t;
          },
          recordIssued: (entry) => {
            const t = performance.now();
            store!.recordIssued(entry);
            stages.record += performance.now() - t;
          },
        };
        const issuer = new IdevidIssuer(ca.signer, ca.chain, journal);
        const caCert = new X509Certificate(ca.chain[0]!);

        let next = wo.serial.first;
        const prepare = (count: number): PreparedDevice[] => {
          const out: PreparedDevice[] = [];
          for (let i = 0; i < count; i++) {
            const n = next++;
            const serial = formatSerial(wo.serial, n);
            const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
            const spki = publicKey.export({ type: 'spki', format: 'der' });
            const csr = buildCsr({ serial, model: product.model, spki, sign: (data) => nodeSign('sha256', data, { key: privateKey, dsaEncoding: 'der' }) });
            out.push({ serial, csr, mac: macFor(n) });
          }
          return out;
        };
        const issueAll = async (devices: PreparedDevice[]): Promise<Buffer | undefined> => {
          let last: Buffer | undefined;
          for (const d of devices) {
            const t0 = performance.now();
            const serial = store!.allocateDevice({
              runId,
              workOrder: wo,
              port: 'bench',
              hardwareId: `bench-hw-${d.serial}`,
              model: product.model,
              firmwareVersion: 'bench',
              macs: [d.mac],
              method: wo.method,
            });
            if (serial !== d.serial) throw new Error(`the database assigned ${serial}, the CSR was made for ${d.serial}`);
            const t1 = performance.now();
            const checked = checkCsr(d.csr, { serial });
            const t2 = performance.now();
            const issued = await issuer.issue({ spki: checked.spki, serial, model: product.model, workOrderId: wo.id, profile: product.idevid });
            const t3 = performance.now();
            stages.allocate += t1 - t0;
            stages.check += t2 - t1;
            stages.issue += t3 - t2;
            stages.devices++;
            last = issued.certificateDer;
          }
          return last;
        };
        const assertIssuedBy = (der: Buffer | undefined): void => {
          if (!der || !new X509Certificate(der).verify(caCert.publicKey)) throw new Error('an issued certificate does not verify with the issuing CA key');
        };

        // Warm-up, untimed.
        assertIssuedBy(await issueAll(prepare(o.warmupIssuances)));
        Object.assign(stages, { allocate: 0, check: 0, issue: 0, record: 0, devices: 0 });

        // Raw C_Sign: same token, same session, the CA key, a 32-byte digest.
        const caKey = ca.token.findPrivateKey(hsm.caKeyLabel);
        if (!caKey) throw new Error(`the CA key ${hsm.caKeyLabel} is not on the token`);
        const digest = randomBytes(32);
        for (let i = 0; i < 200; i++) ca.token.signDigestRaw(caKey, digest);
        const raw = await medianRate(o.repetitions, async () => {
          let count = 0;
          const t0 = performance.now();
          const end = t0 + o.rawSignSeconds * 1000;
          let now = t0;
          do {
            ca!.token.signDigestRaw(caKey, digest);
            count++;
            now = performance.now();
          } while (now < end);
          return { count, seconds: (now - t0) / 1000 };
        });
        ctx.log(`raw C_Sign/s per repetition: ${raw.rates.map((r) => r.toFixed(0)).join(', ')}`);

        // Issuance: CSRs prepared before the clock starts, one batch per repetition.
        const issuance = await medianRate(o.repetitions, async () => {
          const devices = prepare(o.issuanceBatch);
          const t0 = performance.now();
          const last = await issueAll(devices);
          const seconds = (performance.now() - t0) / 1000;
          assertIssuedBy(last);
          return { count: devices.length, seconds };
        });
        ctx.log(`issuances/s per repetition: ${issuance.rates.map((r) => r.toFixed(1)).join(', ')}`);
        const per = (ms: number) => (ms / stages.devices).toFixed(2);
        ctx.note(
          'mean ms per issuance',
          `allocateDevice ${per(stages.allocate)}, checkCsr ${per(stages.check)}, issuer.issue ${per(stages.issue)} (of which recordIssued ${per(stages.record)})`,
        );
        const recorded = Number(store.db.prepare('SELECT COUNT(*) AS n FROM certificates').pluck().get());
        const expected = o.warmupIssuances + o.repetitions * o.issuanceBatch;
        if (recorded !== expected) throw new Error(`the database holds ${recorded} certificates, ${expected} were issued`);

        // The openssl shell loop, from wall time (its throwaway CA is made inside the timed run).
        const openssl = await medianRate(o.repetitions, async (i) => {
          const dir = join(ctx.dataDir, `openssl-loop-${i}`);
          const t0 = performance.now();
          const r = spawnSync('bash', [script, String(o.opensslDevices), dir], { encoding: 'utf8', timeout: 300_000 });
          const seconds = (performance.now() - t0) / 1000;
          if (r.error) throw r.error;
          if (r.status !== 0) throw new Error(`${script} exited with ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
          const certs = readdirSync(join(dir, 'devices')).filter((f) => f.endsWith('.pem')).length;
          rmSync(dir, { recursive: true, force: true });
          if (certs !== o.opensslDevices) throw new Error(`${script} made ${certs} certificates, not ${o.opensslDevices}`);
          return { count: certs, seconds };
        });
        ctx.log(`openssl loop devices/s per repetition: ${openssl.rates.map((r) => r.toFixed(1)).join(', ')}`);

        return [
          { name: 'ca_issuance_per_s', value: issuance.rate, unit: 'issuances/s', target: { op: '>=', value: o.issuanceTarget } },
          { name: 'ca_raw_sign_per_s', value: raw.rate, unit: 'signs/s' },
          { name: 'ca_openssl_loop_per_s', value: openssl.rate, unit: 'devices/s' },
          { name: 'ca_issuance_vs_raw', value: issuance.rate / raw.rate, unit: 'ratio' },
          { name: 'ca_issuance_vs_openssl', value: issuance.rate / openssl.rate, unit: 'ratio' },
        ];
      } finally {
        store?.close();
        ca?.close();
        softhsm.restore();
      }
    },
  };
}

export const caGroup: BenchGroup = createCaGroup();
