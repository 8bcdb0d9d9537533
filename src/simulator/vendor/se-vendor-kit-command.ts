/**
 * `station-sim vendor-kit se --count N [--dir DIR] [--out FILE]`: as an SE vendor would, put N
 * new secure elements on the reel (a key pair generated on the `se-reel` SoftHSM token for each,
 * certified by the vendor CA) and write their signed manifest in Microchip's Trust&GO format.
 * Everything goes to DIR/vendor, where `station-sim start --dir DIR` takes the SEs from: the
 * manifest (DIR/vendor/manifests/), the vendor CA certificate and the manifest signer certificate
 * (what a vendor publishes for its customers to trust). docs/simulator.md.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Pkcs11Library } from '../../hsm/pkcs11/pkcs11-library';
import { SOFTHSM_DEFAULT_MODULE, ensureSoftHsmConfig } from '../../hsm/pkcs11/softhsm-config';
import { MANIFEST_SIGNER_CERT_FILE, SeManifestSigner } from './se-manifest-signer';
import { manifestJson, signedSecureElement, type SeBatch } from './se-manifest-writer';
import { SeReel } from './se-reel';
import { SE_VENDOR_CA_CERT_FILE, SeVendorCa } from './se-vendor-ca';

const VENDOR = 'Simulated SE Vendor';

function fail(message: string, code: number): never {
  process.stderr.write(`station-sim: ${message}\n`);
  process.exit(code);
}

function batchInfo(groupId: string): SeBatch {
  const vendor = { organizationName: VENDOR, organizationalUnitName: 'Secure Products' };
  return {
    model: 'SIM-SE-608',
    partNumber: 'SIM-SE-608-TNGSIM',
    manufacturer: vendor,
    provisioner: vendor,
    distributor: { organizationName: VENDOR, organizationalUnitName: 'Direct' },
    groupId,
  };
}

export interface SeVendorKitResult {
  event: 'se-manifest';
  manifest: string;
  signerCertificate: string;
  vendorCaCertificate: string;
  count: number;
  serials: string[];
}

export function runSeVendorKit(opts: { dir: string; count: number; out?: string; softhsmModule: string; listWrongKey?: boolean }): SeVendorKitResult {
  const dir = resolve(opts.dir);
  const vendorDir = join(dir, 'vendor');
  mkdirSync(vendorDir, { recursive: true, mode: 0o700 });
  // SoftHSM reads SOFTHSM2_CONF when the module initialises: the simulator's own, as `start` uses.
  process.env.SOFTHSM2_CONF = ensureSoftHsmConfig(dir);
  const reel = SeReel.open(Pkcs11Library.open(opts.softhsmModule), vendorDir, true)!;
  try {
    const ca = SeVendorCa.openOrCreate(vendorDir);
    const signer = SeManifestSigner.openOrCreate(vendorDir, VENDOR);
    const ses = reel.provision(opts.count, (serialHex, spki) => ca.issueSeCertificate(serialHex, spki));
    const now = new Date();
    const groupId = `SIM${now.getTime().toString(36).toUpperCase()}${process.pid.toString(36).toUpperCase()}`;
    const entries = ses.map((se) => {
      const uniqueId = se.serial.toString('hex');
      let spki = se.spki;
      let certificate = se.certificate;
      if (opts.listWrongKey) {
        // A vendor's mix-up, for tests: the manifest lists (and certifies) a key the SE does not hold.
        spki = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
        certificate = ca.issueSeCertificate(uniqueId, spki);
      }
      return signedSecureElement({ uniqueId, spki, x5c: [certificate, ca.certificate], provisionedAt: now }, batchInfo(groupId), signer);
    });
    const out = opts.out ? resolve(opts.out) : join(vendorDir, 'manifests', `se-manifest-${now.toISOString().replace(/[-:.]/g, '')}-${process.pid}.json`);
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, manifestJson(entries), { mode: 0o644 });
    return {
      event: 'se-manifest',
      manifest: out,
      signerCertificate: join(vendorDir, MANIFEST_SIGNER_CERT_FILE),
      vendorCaCertificate: join(vendorDir, SE_VENDOR_CA_CERT_FILE),
      count: ses.length,
      serials: ses.map((s) => s.serial.toString('hex')),
    };
  } finally {
    reel.close();
  }
}

export function registerSeVendorKitCommand(vendorKit: Command): Command {
  return vendorKit
    .command('se')
    .description('put N vendor-provisioned secure elements on the reel in DIR/vendor and write their signed Trust&GO-format manifest; prints one JSON line with the paths')
    .requiredOption('--count <N>', 'number of secure elements', (v) => Number.parseInt(v, 10))
    .option('--dir <DIR>', 'simulator state (its vendor folder is DIR/vendor)', 'sim')
    .option('--out <FILE>', 'where the manifest goes (default DIR/vendor/manifests/se-manifest-<time>.json)')
    .option('--softhsm-module <PATH>', 'PKCS#11 module of the simulator\'s SoftHSM', SOFTHSM_DEFAULT_MODULE)
    .option('--list-wrong-key', 'test aid: the manifest lists a key the SEs do not hold (a vendor mix-up; the station answers SE_KEY_MISMATCH)')
    .action((opts: { count: number; dir: string; out?: string; softhsmModule: string; listWrongKey?: boolean }) => {
      if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 100_000) fail('--count must be 1..100000', 2);
      let result: SeVendorKitResult;
      try {
        result = runSeVendorKit(opts);
      } catch (err) {
        fail(`vendor-kit se: ${(err as Error).message}`, 1);
      }
      process.stdout.write(JSON.stringify(result) + '\n');
    });
}
