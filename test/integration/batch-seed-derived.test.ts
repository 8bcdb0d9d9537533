/**
 * Method 5 through the real CLI: `station batch --simulate --method seed-derived` runs the chip
 * vendor's kit, imports its seed file as a real vendor's, and provisions devices whose keys the
 * station derives in its HSM worker and the devices derive on first boot. Checked: the report
 * (schema, chipId), openssl verify of each certificate, the certified key against the chip's own
 * seed, the seeds table and audit chain, no seed in the clear anywhere in the database files,
 * every rejection (unknown chip, a chip burned with another seed, a cloned chip, a tampered file,
 * a file for another station, a conflicting seed) and `station import seeds` itself.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { deriveSeedPublicKeySpki } from '../../src/core/seed-derivation';
import { seedRecipientKeyId } from '../../src/core/seed-file-envelope';
import { verifyAuditChain } from '../../src/manufacturer-db/audit-chain';
import type { RunReport } from '../../src/station/run/report';
import { writeSeedFile } from '../../src/simulator/vendor/seed-file-writer';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

type Device = RunReport['devices'][number];

/** The seeds the simulated chip vendor burned into the chips devices took (its fab records). */
function takenChipSeeds(dataDir: string): Map<string, Buffer> {
  const dir = join(dataDir, 'sim', 'vendor', 'chips', 'taken');
  const seeds = new Map<string, Buffer>();
  for (const f of readdirSync(dir)) {
    const doc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { chipId: string; seed: string };
    seeds.set(doc.chipId, Buffer.from(doc.seed, 'base64'));
  }
  return seeds;
}

function certificateSpki(path: string): Buffer {
  return createPublicKey(readFileSync(path)).export({ format: 'der', type: 'spki' });
}

function withDb<T>(dataDir: string, fn: (db: BetterSqlite3.Database) => T): T {
  const db = new BetterSqlite3(join(dataDir, 'station.db'), { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe('station batch --simulate, seed-derived', () => {
  let out: string;
  let dataDir: string;
  let report: RunReport;
  let exitCode: number | null;
  let stderr: string;

  beforeAll(async () => {
    out = testDir('batch-m5');
    dataDir = join(out, 'data');
    const r = await runStation(['batch', '--simulate', '2', '--count', '3', '--method', 'seed-derived', '--out', out]);
    exitCode = r.code;
    stderr = r.stderr;
    report = validateReport(join(out, 'report.json')) as RunReport;
  });

  it('passes every device with no other setup, keyOrigin seed-derived and the chip id in the report', () => {
    expect(stderr).toContain('3/3 passed');
    expect(exitCode).toBe(0);
    expect(report.workOrder).toBe('WO-DEMO-SEED');
    expect(report.counts).toEqual({ total: 3, passed: 3, failed: 0, labelPending: 0 });
    for (const d of report.devices) {
      expect(d.status).toBe('passed');
      expect(d.method).toBe('seed-derived');
      expect(d.keyOrigin).toBe('seed-derived');
      expect(d.chipId).toMatch(/^[0-9a-f]{16}$/);
      expect(d.serial).toMatch(/^SEED-\d{6}$/);
    }
    expect(new Set(report.devices.map((d) => d.chipId)).size).toBe(3);
  });

  it('issues certificates openssl verifies, over the key each chip\'s own seed derives', () => {
    const chainPem = readFileSync(join(out, report.devices[0]!.chainPath!), 'utf8');
    const [issuingPem, rootPem] = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
    writeFileSync(join(out, 'root.pem'), rootPem!);
    writeFileSync(join(out, 'issuing.pem'), issuingPem!);
    const seeds = takenChipSeeds(dataDir);
    for (const d of report.devices) {
      const certPath = join(out, d.certificatePath!);
      const v = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(out, 'root.pem'), '-untrusted', join(out, 'issuing.pem'), certPath]);
      expect(v.out).toContain(': OK');
      expect(v.code).toBe(0);
      const seed = seeds.get(d.chipId!);
      expect(seed).toBeDefined();
      expect(certificateSpki(certPath)).toEqual(deriveSeedPublicKeySpki(seed!, Buffer.from(d.chipId!, 'hex')));
    }
  });

  it('records each seed used and bound to its device, with an intact audit chain', () => {
    withDb(dataDir, (db) => {
      for (const d of report.devices) {
        const row = db.prepare('SELECT state, bound_serial, public_key_sha256, length(seed_sealed) AS n FROM seeds WHERE chip_id = ?').get(d.chipId) as { state: string; bound_serial: string; public_key_sha256: string; n: number };
        expect(row).toMatchObject({ state: 'used', bound_serial: d.serial, n: 60 });
        expect(row.public_key_sha256).toBe(createHash('sha256').update(certificateSpki(join(out, d.certificatePath!))).digest('hex'));
      }
      const types = (db.prepare("SELECT type FROM audit_events WHERE type LIKE 'seed%'").all() as { type: string }[]).map((r) => r.type);
      expect(types.filter((t) => t === 'seeds.imported')).toHaveLength(1);
      expect(types.filter((t) => t === 'seed.bound')).toHaveLength(3);
      expect(types.filter((t) => t === 'seed.used')).toHaveLength(3);
      expect(verifyAuditChain(db).ok).toBe(true);
    });
  });

  describe('rejections', () => {
    let faulty: RunReport;
    let faultyCode: number | null;
    let faultyData: string;
    const onPort = (r: RunReport, i: number): Device => r.devices.find((d) => d.port.endsWith(`port${i}`))!;

    beforeAll(async () => {
      const o = testDir('batch-m5-faults');
      faultyData = join(o, 'data');
      const r = await runStation(['batch', '--simulate', '2', '--count', '2', '--method', 'seed-derived', '--sim-faults', '0=chip-unknown,1=seed-mismatch', '--out', o]);
      faultyCode = r.code;
      faulty = validateReport(join(o, 'report.json')) as RunReport;
    });

    it('an unknown chip fails at obtain-key with SEED_UNKNOWN naming the chip', () => {
      expect(faultyCode).toBe(1);
      const d = onPort(faulty, 0);
      expect(d.status).toBe('failed');
      expect(d.error).toMatchObject({ code: 'SEED_UNKNOWN', stage: 'obtain-key' });
      expect(d.error!.message).toContain('station import seeds');
      expect(d.certificatePath).toBeNull();
    });

    it('a device that derives another key fails at install with SEED_KEY_MISMATCH naming the chip; its certificate is voided', () => {
      const d = onPort(faulty, 1);
      expect(d.status).toBe('failed');
      expect(d.error).toMatchObject({ code: 'SEED_KEY_MISMATCH', stage: 'install' });
      expect(d.chipId).toMatch(/^[0-9a-f]{16}$/);
      expect(d.error!.message).toContain(`chip ${d.chipId}`);
      withDb(faultyData, (db) => {
        expect(db.prepare('SELECT status FROM certificates WHERE device_serial = ?').all(d.serial)).toEqual([{ status: 'void' }]);
        // the chip keeps its binding to the failed device as history, and stays available for rework
        expect(db.prepare('SELECT state, bound_serial FROM seeds WHERE chip_id = ?').get(d.chipId)).toEqual({ state: 'available', bound_serial: d.serial });
      });
    });

    it('a cloned chip (the same chip id twice) fails with SEED_ALREADY_USED', async () => {
      const o = testDir('batch-m5-clone');
      const r = await runStation(['batch', '--simulate', '1', '--count', '2', '--method', 'seed-derived', '--sim-faults', '0=chip-clone', '--out', o]);
      expect(r.code).toBe(1);
      const rep = validateReport(join(o, 'report.json')) as RunReport;
      const [first, second] = rep.devices;
      expect(first!.status).toBe('passed');
      expect(second!.status).toBe('failed');
      expect(second!.error).toMatchObject({ code: 'SEED_ALREADY_USED', stage: 'obtain-key' });
      expect(second!.error!.message).toContain(first!.serial!);
    });
  });

  describe('station import seeds', () => {
    let recipientPem: string;
    const station = (...args: string[]) => runStation(['--data-dir', dataDir, 'import', 'seeds', ...args]);
    const chipsNow = () => withDb(dataDir, (db) => (db.prepare('SELECT chip_id FROM seeds').all() as { chip_id: string }[]).map((r) => r.chip_id));

    beforeAll(async () => {
      const r = await station('--show-recipient-key', '--out', join(out, 'recipient.pem'));
      expect(r.code).toBe(0);
      recipientPem = readFileSync(join(out, 'recipient.pem'), 'utf8');
    });

    it('shows the recipient key the simulated vendor encrypted to', async () => {
      const r = await station('--show-recipient-key');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(recipientPem);
      expect(readFileSync(join(dataDir, 'sim', 'seed-recipient.pem'), 'utf8').replace(/\s/g, '')).toBe(recipientPem.replace(/\s/g, ''));
      const spki = createPublicKey(recipientPem).export({ format: 'der', type: 'spki' });
      expect(r.stderr).toContain(seedRecipientKeyId(spki));
    });

    it('imports a vendor file, and again idempotently', async () => {
      const chips = [0, 1].map(() => ({ chipId: randomBytes(8), seed: randomBytes(32) }));
      const file = join(out, 'vendor-seeds.json');
      writeFileSync(file, writeSeedFile(recipientPem, { vendor: 'Acme Chips', lot: 'A-1', chips }));
      const first = await station(file, '--operator', 'tester');
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('imported 2 chip(s) from Acme Chips, lot A-1: 2 new, 0 already present');
      const again = await station(file);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('2 already present');
      expect(chipsNow()).toEqual(expect.arrayContaining(chips.map((c) => c.chipId.toString('hex'))));
    });

    it('refuses a tampered file, a file for another station, a malformed one and a conflicting seed, importing nothing', async () => {
      const before = chipsNow();
      const existing = before[0]!;
      const fresh = randomBytes(8);

      const good = JSON.parse(writeSeedFile(recipientPem, { vendor: 'V', lot: 'L', chips: [{ chipId: fresh, seed: randomBytes(32) }] }).toString('utf8')) as Record<string, string>;
      const ct = Buffer.from(good.ciphertext!, 'base64url');
      ct[3] ^= 1;
      writeFileSync(join(out, 'tampered.json'), JSON.stringify({ ...good, ciphertext: ct.toString('base64url') }));
      const tampered = await station(join(out, 'tampered.json'));
      expect(tampered.code).toBe(2);
      expect(tampered.stderr).toContain('SEED_FILE_DECRYPT_FAILED');

      const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
      writeFileSync(join(out, 'other.json'), writeSeedFile(other, { vendor: 'V', lot: 'L', chips: [{ chipId: fresh, seed: randomBytes(32) }] }));
      const wrong = await station(join(out, 'other.json'));
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain('SEED_FILE_WRONG_RECIPIENT');

      writeFileSync(join(out, 'malformed.json'), '{"protected":');
      const malformed = await station(join(out, 'malformed.json'));
      expect(malformed.code).toBe(2);
      expect(malformed.stderr).toContain('SEED_FILE_MALFORMED');

      // a chip already imported with another seed, beside a new chip: the whole file is refused
      writeFileSync(
        join(out, 'conflict.json'),
        writeSeedFile(recipientPem, { vendor: 'V', lot: 'L', chips: [{ chipId: fresh, seed: randomBytes(32) }, { chipId: Buffer.from(existing, 'hex'), seed: randomBytes(32) }] }),
      );
      const conflict = await station(join(out, 'conflict.json'));
      expect(conflict.code).toBe(2);
      expect(conflict.stderr).toContain('SEED_CONFLICT');
      expect(conflict.stderr).toContain(existing);
      expect(chipsNow().sort()).toEqual(before.sort());
    });
  });

  it('never stores a seed in the clear: no seed in the database files (or the run log), raw, hex or base64', () => {
    const seeds = [...takenChipSeeds(dataDir).values()];
    expect(seeds.length).toBeGreaterThanOrEqual(3);
    const files = [...readdirSync(dataDir).filter((f) => f.startsWith('station.db')).map((f) => join(dataDir, f)), join(out, 'station.log')];
    expect(files.some((f) => existsSync(f))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      const text = bytes.toString('latin1');
      for (const seed of seeds) {
        expect(bytes.includes(seed)).toBe(false);
        for (const form of [seed.toString('hex'), seed.toString('hex').toUpperCase(), seed.toString('base64'), seed.toString('base64url')]) {
          expect(text.includes(form)).toBe(false);
        }
      }
    }
  });
});
