/**
 * Group `ca` (contracts.md §4): IDevID issuances per second through the station's own issuer,
 * against raw C_Sign on the same token and against a shell loop of openssl commands.
 *
 * - ca_raw_sign_per_s: synchronous C_Sign(CKM_ECDSA) on a 32-byte digest with the CA key, one
 *   session, one thread, ~1 s per repetition.
 * - ca_issuance_per_s: per device, a distinct CSR from a distinct P-256 key (made before the
 *   clock starts), then serial allocation (allocateDevice, one transaction per 64 devices), CSR
 *   check (checkCsr: parse, proof of possession, serial, requested extensions) and
 *   IdevidIssuer.issue with 64 issuances in flight through a GroupCommitJournal: the intent rows
 *   and the issued rows of the issuances in flight share WAL, synchronous=FULL transactions, and
 *   each certificate is returned only after the transaction holding its row has committed.
 * - ca_openssl_loop_per_s: scripts/openssl-loop.sh over 200 devices, from wall time.
 * Each rate is the median of three repetitions; the ratios divide the medians.
 */
import { X509Certificate, generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultStationConfig, formatSerial, type HsmConfig, type WorkOrder } from '../../core/config';
import { checkCsrWith } from '../../hsm/ca/csr-check';
import { openIdevidCa, type IdevidCa } from '../../hsm/ca/idevid-ca';
import { IdevidIssuer } from '../../hsm/ca/idevid-issuer';
import { initTestPki } from '../../hsm/ca/test-pki';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { GroupCommitJournal, SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import { buildCsr } from '../../simulator/csr-builder';
import { useFreshSoftHsm } from '../softhsm-env';
import { MIN_REPETITIONS, medianRate } from '../stats';
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
  /** Issuances in flight (their journal rows share commits, their signatures pipeline). */
  concurrency: number;
}

export const CA_GROUP_DEFAULTS: CaGroupOptions = {
  repetitions: MIN_REPETITIONS,
  issuanceBatch: 3000,
  warmupIssuances: 300,
  rawSignSeconds: 1,
  opensslDevices: 200,
  issuanceTarget: 5000,
  concurrency: 64,
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
      let journal: GroupCommitJournal | undefined;
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
        ctx.note('database', `better-sqlite3, journal_mode=${journalMode}, synchronous=FULL, group commit (intent rows and issued rows of the issuances in flight share transactions)`);
        store.ensureWorkOrder(wo);
        const runId = `bench-ca-${Date.now()}`;
        store.startRun(runId, wo.id);
        // The journal: the record store behind a group committer (one FULL-sync transaction for
        // the intent rows, one for the issued rows of whatever is in flight; a certificate is
        // released only after the transaction holding its row has committed).
        const stages = { allocate: 0, check: 0, issue: 0, devices: 0 };
        journal = new GroupCommitJournal(store, { maxRows: 256, maxWaitMs: 1 });
        const gj = journal;
        const issuer = new IdevidIssuer(ca.signer, ca.chain, gj, { signatureChecker: ca.signatureChecker });
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
        const allocate = (d: PreparedDevice): void => {
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
        };
        const issueOne = async (d: PreparedDevice): Promise<Buffer> => {
          const t1 = performance.now();
          // The duplicate-key lookup is the issuer's (it sees queued intents too), not repeated here.
          const checked = await checkCsrWith(ca!.signatureChecker, d.csr, { serial: d.serial, profile: product.idevid });
          stages.check += performance.now() - t1;
          const issued = await issuer.issue({ spki: checked.spki, serial: d.serial, model: product.model, workOrderId: wo.id, profile: product.idevid });
          stages.devices++;
          return issued.certificateDer;
        };
        /**
         * Allocation (serial + device row) in one transaction per `concurrency` devices, then a
         * pool of `concurrency` issuances kept in flight, so that their journal rows share
         * commits and their signatures pipeline through the PKCS#11 worker while the main
         * thread checks CSRs and verifies certificates.
         */
        const issueAll = async (devices: PreparedDevice[]): Promise<Buffer | undefined> => {
          const t0 = performance.now();
          for (let w = 0; w < devices.length; w += o.concurrency) {
            const window = devices.slice(w, w + o.concurrency);
            store!.db.transaction(() => window.forEach(allocate))();
          }
          const t1 = performance.now();
          stages.allocate += t1 - t0;
          const certs: Buffer[] = new Array(devices.length);
          let nextIndex = 0;
          const lane = async (): Promise<void> => {
            while (nextIndex < devices.length) {
              const i = nextIndex++;
              certs[i] = await issueOne(devices[i]!);
            }
          };
          await Promise.all(Array.from({ length: Math.min(o.concurrency, devices.length) }, lane));
          stages.issue += performance.now() - t1;
          return certs[certs.length - 1];
        };
        const assertIssuedBy = (der: Buffer | undefined): void => {
          if (!der || !new X509Certificate(der).verify(caCert.publicKey)) throw new Error('an issued certificate does not verify with the issuing CA key');
        };

        // Warm-up, untimed.
        assertIssuedBy(await issueAll(prepare(o.warmupIssuances)));
        Object.assign(stages, { allocate: 0, check: 0, issue: 0, devices: 0 });
        Object.assign(gj.stats, { commits: 0, rows: 0 });

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
        let issuanceCpuUs = 0;
        let issuanceCount = 0;
        const issuance = await medianRate(o.repetitions, async () => {
          const devices = prepare(o.issuanceBatch);
          const t0 = performance.now();
          const cpu0 = process.cpuUsage();
          const last = await issueAll(devices);
          const seconds = (performance.now() - t0) / 1000;
          const cpu = process.cpuUsage(cpu0);
          issuanceCpuUs += cpu.user + cpu.system;
          issuanceCount += devices.length;
          assertIssuedBy(last);
          return { count: devices.length, seconds };
        });
        ctx.log(`issuances/s per repetition: ${issuance.rates.map((r) => r.toFixed(1)).join(', ')}`);
        const checks = ca.signatureChecker.stats;
        ctx.note(
          'CPU per issuance',
          `${(issuanceCpuUs / issuanceCount / 1000).toFixed(3)} ms (process.cpuUsage: main thread, PKCS#11 worker, signature-check worker and libuv pool together; 2 cores allow at most ${(2e6 / (issuanceCpuUs / issuanceCount)).toFixed(0)}/s); signature checks ${checks.checks} in ${checks.batches} worker batches, ${checks.inProcess} in process`,
        );
        const per = (ms: number) => (ms / stages.devices).toFixed(2);
        ctx.note(
          'mean ms per issuance',
          `allocateDevice (${o.concurrency} per transaction) ${per(stages.allocate)}, checkCsr ${per(stages.check)}, check+issue wall time per device with ${o.concurrency} in flight ${per(stages.issue)}; journal rows per commit ${(gj.stats.rows / Math.max(1, gj.stats.commits)).toFixed(1)}`,
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
        journal?.close();
        store?.close();
        ca?.close();
        softhsm.restore();
      }
    },
  };
}

export const caGroup: BenchGroup = createCaGroup();
