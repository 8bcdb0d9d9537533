/**
 * Method 4 end to end through the real CLIs: `station batch --simulate --method se-preprovisioned`
 * runs the simulated SE vendor's kit, imports its signed manifest as it would a real vendor's,
 * and issues IDevIDs over the vendor-made SE keys (openssl verifies both chains). Then each
 * refusal with its code, and nothing lost: a tampered manifest (MANIFEST_SIGNATURE_INVALID), an
 * SE bound already (SE_ALREADY_BOUND), an SE in no imported manifest (SE_UNKNOWN) and an SE whose
 * key is not the one its manifest lists (SE_KEY_MISMATCH).
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { X509Certificate } from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11Library } from '../../src/hsm/pkcs11/pkcs11-library';
import { Pkcs11Token } from '../../src/hsm/pkcs11/pkcs11-token';
import { verifyAuditChain } from '../../src/manufacturer-db/audit-chain';
import type { RunReport } from '../../src/station/run/report';
import { validateReport } from '../helpers/report-schema';
import { REPO, cleanEnv, runStation, testDir, type CliResult } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

const STATION_SIM_BIN = join(REPO, 'bin/station-sim.js');

function runKit(args: string[]): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [STATION_SIM_BIN, 'vendor-kit', 'se', ...args], { env: cleanEnv(), cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** A configuration that trusts the simulated vendor's published certificates (paths relative to the data dir). */
function trustConfig(dir: string): string {
  const path = join(dir, 'se-vendor.json');
  writeFileSync(path, JSON.stringify({ seVendor: { manifestSignerCertificates: ['sim/vendor/manifest-signer.pem'], vendorCaCertificates: ['sim/vendor/se-vendor-ca.pem'] } }));
  return path;
}

interface DbState {
  entries: { unique_id: string; bound_serial: string | null }[];
  devices: { serial: string; status: string; error_code: string | null }[];
  activeCertificates: number;
  auditOk: boolean;
}

function dbState(dataDir: string): DbState {
  const db = new BetterSqlite3(join(dataDir, 'station.db'), { readonly: true });
  try {
    return {
      entries: db.prepare('SELECT unique_id, bound_serial FROM se_manifest_entries ORDER BY unique_id').all() as DbState['entries'],
      devices: db.prepare('SELECT serial, status, error_code FROM devices ORDER BY serial').all() as DbState['devices'],
      activeCertificates: (db.prepare("SELECT COUNT(*) AS n FROM certificates WHERE status = 'active'").get() as { n: number }).n,
      auditOk: verifyAuditChain(db).ok,
    };
  } finally {
    db.close();
  }
}

describe('station batch --simulate, se-preprovisioned', () => {
  let out: string;
  let dataDir: string;
  let report: RunReport;
  let first: { code: number | null; stderr: string };

  beforeAll(async () => {
    out = testDir('batch-m4');
    dataDir = join(out, 'data');
    const r = await runStation(['batch', '--simulate', '2', '--count', '3', '--method', 'se-preprovisioned', '--out', out]);
    first = r;
    report = validateReport(join(out, 'report.json')) as RunReport;
  });

  it('passes every device with no other setup: keyOrigin se-vendor, the SE serial, its certificates and its manifest entry in the report', () => {
    expect(first.stderr).toContain('3/3 passed');
    expect(first.code).toBe(0);
    expect(report.method).toBe('se-preprovisioned');
    expect(report.workOrder).toBe('WO-DEMO-SE');
    const state = dbState(dataDir);
    for (const d of report.devices) {
      expect(d.status).toBe('passed');
      expect(d.serial).toMatch(/^SEP-\d{6}$/);
      expect(d.keyOrigin).toBe('se-vendor');
      expect(d.seSerial).toMatch(/^0123[0-9a-f]{12}01$/);
      expect(d.manifestEntryId).toMatch(new RegExp(`^${d.seSerial}@[0-9a-f]{16}$`));
      expect(d.seCertificatePath).toBe(`certs/${d.serial}.se.pem`);
      expect(d.seChainPath).toBe(`certs/${d.serial}.se-chain.pem`);
      expect(state.entries.find((e) => e.unique_id === d.seSerial)?.bound_serial).toBe(d.serial);
    }
    expect(new Set(report.devices.map((d) => d.seSerial)).size).toBe(3);
  });

  it('issues IDevIDs over the SE vendor key, and both chains verify with openssl', () => {
    const chainPem = readFileSync(join(out, report.devices[0]!.chainPath!), 'utf8');
    const [issuingPem, rootPem] = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
    writeFileSync(join(out, 'root.pem'), rootPem!);
    writeFileSync(join(out, 'issuing.pem'), issuingPem!);
    for (const d of report.devices) {
      const idevid = join(out, d.certificatePath!);
      const v = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(out, 'root.pem'), '-untrusted', join(out, 'issuing.pem'), idevid]);
      expect(v.out).toContain(': OK');
      expect(v.code).toBe(0);
      const se = openssl(['verify', '-x509_strict', '-CAfile', join(out, d.seChainPath!), join(out, d.seCertificatePath!)]);
      expect(se.out).toContain(': OK');
      expect(se.code).toBe(0);
      const idevidKey = Buffer.from(new X509Certificate(readFileSync(idevid, 'utf8')).publicKey.rawData);
      const seKey = Buffer.from(new X509Certificate(readFileSync(join(out, d.seCertificatePath!), 'utf8')).publicKey.rawData);
      expect(idevidKey.equals(seKey)).toBe(true);
    }
  });

  it('keeps each SE key on the vendor reel token: made there, never extractable', () => {
    process.env.SOFTHSM2_CONF = join(dataDir, 'sim', 'softhsm2.conf');
    const library = Pkcs11Library.open('/usr/lib/softhsm/libsofthsm2.so');
    const token = Pkcs11Token.login(library, 'se-reel', readFileSync(join(dataDir, 'sim', 'vendor', 'se-reel-pin'), 'utf8').trim());
    try {
      for (const d of report.devices) {
        const priv = token.findPrivateKey(`se-${d.seSerial}`);
        expect(priv).toBeDefined();
        expect(token.auditPrivateKey(priv!)).toMatchObject({ local: true, neverExtractable: true, alwaysSensitive: true, extractable: false, sensitive: true, token: true, sign: true, decrypt: false });
      }
    } finally {
      token.close();
    }
  });

  it('refuses a tampered manifest (MANIFEST_SIGNATURE_INVALID, exit 2) and imports nothing; the original again is a no-op', async () => {
    const before = dbState(dataDir);
    const config = trustConfig(out);
    const manifests = readdirSync(join(dataDir, 'sim', 'vendor', 'manifests'));
    expect(manifests).toHaveLength(1);
    const manifestPath = join(dataDir, 'sim', 'vendor', 'manifests', manifests[0]!);
    const entries = JSON.parse(readFileSync(manifestPath, 'utf8')) as { payload: string }[];
    const payload = JSON.parse(Buffer.from(entries[1]!.payload, 'base64url').toString('utf8')) as { uniqueId: string };
    payload.uniqueId = '0123ffffffffffff01';
    entries[1]!.payload = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const tampered = join(out, 'tampered.json');
    writeFileSync(tampered, JSON.stringify(entries));
    const bad = await runStation(['--config', config, '--data-dir', dataDir, 'import', 'se-manifest', tampered]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^station: MANIFEST_SIGNATURE_INVALID: Manifest entry 2 \(uniqueId 0123ffffffffffff01\): .*Nothing was imported\./);
    const again = await runStation(['--config', config, '--data-dir', dataDir, 'import', 'se-manifest', manifestPath]);
    expect(again.stdout).toContain('3 entries (0 new, 3 already imported)');
    expect(again.code).toBe(0);
    const verifyOnly = await runStation(['--config', config, '--data-dir', dataDir, 'import', 'se-manifest', '--verify-only', manifestPath]);
    expect(verifyOnly.stdout).toContain('3 entries; nothing stored');
    expect(verifyOnly.code).toBe(0);
    const untrusted = await runStation(['--data-dir', dataDir, 'import', 'se-manifest', manifestPath]);
    expect(untrusted.stderr).toMatch(/^station: SE_VENDOR_TRUST_MISSING: /);
    expect(untrusted.code).toBe(2);
    expect(dbState(dataDir)).toEqual(before);
  });

  it('refuses an SE that is bound to a passed device (SE_ALREADY_BOUND) and keeps everything recorded', async () => {
    const before = dbState(dataDir);
    // the same SEs come round again (a reused or cloned reel): the simulator starts the reel over
    writeFileSync(join(dataDir, 'sim', 'vendor', 'se-reel-state.json'), JSON.stringify({ next: 0 }));
    const out2 = join(out, 'again');
    const r = await runStation(['--data-dir', dataDir, 'batch', '--simulate', '1', '--count', '1', '--method', 'se-preprovisioned', '--out', out2]);
    expect(r.code).toBe(1);
    const again = validateReport(join(out2, 'report.json')) as RunReport;
    const d = again.devices[0]!;
    expect(d.status).toBe('failed');
    expect(d.error).toMatchObject({ code: 'SE_ALREADY_BOUND', stage: 'obtain-key' });
    expect(d.serial).toBe('SEP-000004');
    const holder = report.devices.find((p) => d.error!.message.includes(p.seSerial!));
    expect(holder).toBeDefined();
    expect(d.error!.message).toContain(`already bound to device ${holder!.serial} (passed)`);
    const after = dbState(dataDir);
    expect(after.entries.filter((e) => before.entries.some((b) => b.unique_id === e.unique_id))).toEqual(before.entries);
    expect(after.devices.filter((x) => x.serial !== 'SEP-000004')).toEqual(before.devices);
    expect(after.devices.find((x) => x.serial === 'SEP-000004')).toMatchObject({ status: 'failed', error_code: 'SE_ALREADY_BOUND' });
    expect(after.activeCertificates).toBe(3);
    expect(after.auditOk).toBe(true);
  });
});

describe('station batch --simulate, se-preprovisioned: SEs the manifests do not vouch for', () => {
  it('fails an SE in no imported manifest with SE_UNKNOWN, and an SE whose key is not the listed one with SE_KEY_MISMATCH', async () => {
    const out = testDir('batch-m4-refused');
    const dataDir = join(out, 'data');
    const simDir = join(dataDir, 'sim');
    // First on the reel: an SE the vendor's manifest lists with another key (a vendor mix-up),
    // imported by the operator; second: an SE whose manifest never reached the station.
    const wrong = await runKit(['--dir', simDir, '--count', '1', '--list-wrong-key']);
    expect(wrong.code).toBe(0);
    const wrongKit = JSON.parse(wrong.stdout) as { manifest: string; serials: string[] };
    const config = trustConfig(out);
    const imported = await runStation(['--config', config, '--data-dir', dataDir, 'import', 'se-manifest', wrongKit.manifest]);
    expect(imported.code).toBe(0);
    const unlisted = await runKit(['--dir', simDir, '--count', '1']);
    expect(unlisted.code).toBe(0);
    const unlistedSerial = (JSON.parse(unlisted.stdout) as { serials: string[] }).serials[0]!;

    const r = await runStation(['--config', config, '--data-dir', dataDir, 'batch', '--simulate', '2', '--count', '2', '--method', 'se-preprovisioned', '--out', out]);
    expect(r.code).toBe(1);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    const bySe = new Map(report.devices.map((d) => [d.error?.message.match(/secure element ([0-9a-f]+)/)?.[1], d]));
    expect(bySe.get(wrongKit.serials[0]!)?.error).toMatchObject({ code: 'SE_KEY_MISMATCH', stage: 'obtain-key' });
    expect(bySe.get(unlistedSerial)?.error).toMatchObject({ code: 'SE_UNKNOWN', stage: 'obtain-key' });
    for (const d of report.devices) {
      expect(d.status).toBe('failed');
      expect(d.certificatePath).toBeFalsy();
    }
    const state = dbState(dataDir);
    expect(state.entries.find((e) => e.unique_id === wrongKit.serials[0])).toEqual({ unique_id: wrongKit.serials[0], bound_serial: null });
    expect(state.entries.some((e) => e.unique_id === unlistedSerial)).toBe(false);
    expect(state.devices.map((d) => d.error_code).sort()).toEqual(['SE_KEY_MISMATCH', 'SE_UNKNOWN']);
    expect(state.activeCertificates).toBe(0);
    expect(state.auditOk).toBe(true);
  });
});
