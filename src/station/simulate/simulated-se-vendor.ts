/**
 * Method 4 in `--simulate`: the simulated SE vendor (station-sim vendor-kit se) puts N SEs on
 * the reel the simulated devices take theirs from and writes their signed manifest; the station
 * then imports that manifest exactly as it imports a real vendor's file. The trust anchors for
 * the import are the configured ones plus the two certificates the simulated vendor publishes
 * (its manifest signer and its CA), as an operator would add a real vendor's.
 */
import type { StationConfig } from '../../core/config';
import type { SeManifestStore } from '../../manufacturer-db/se-manifest-store';
import { importSeManifestFile, loadSeVendorTrust, seVendorTrustFiles, type SeManifestImportOutcome } from '../import/se-manifest-import';
import { runSeVendorKit } from './simulator-process';

export async function supplySimulatedSes(opts: { simDir: string; count: number; store: SeManifestStore; config: StationConfig; dataDir: string }): Promise<SeManifestImportOutcome> {
  const kit = await runSeVendorKit({ dir: opts.simDir, count: opts.count });
  const trust = loadSeVendorTrust(
    seVendorTrustFiles(opts.config.seVendor, opts.dataDir, { manifestSignerCertificates: [kit.signerCertificate], vendorCaCertificates: [kit.vendorCaCertificate] }),
  );
  return importSeManifestFile(opts.store, kit.manifest, trust);
}
