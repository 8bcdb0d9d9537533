/**
 * `--with-services` (docs/services.md): the reference MASA and supply-chain service started for
 * one command, under DATA/services (their PKI, databases and logs persist there, so a later
 * `station qa brski --with-services` finds the records a batch delivered). The station's sync
 * targets for that command point at them, with the station's own client key and certificate;
 * a product without a configured MASA trust anchor gets the reference MASA's certificate.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SyncConfigSchema, type StationConfig } from '../core/config';
import { ConfigError } from '../core/errors';
import { stationPkiPaths } from '../hsm/identity/station-pki';
import { ensureMasaIdentity, startReferenceServices, type ReferenceServices } from '../services/launcher';

export function servicesDir(dataDir: string): string {
  return join(dataDir, 'services');
}

/** The MASA trust anchor of `--with-services` runs: made before any device is provisioned. */
export function referenceMasaTrustAnchor(dataDir: string): string {
  return ensureMasaIdentity(servicesDir(dataDir)).certificatePath;
}

export interface RunServices {
  services: ReferenceServices;
  /** The configuration for this command: sync targets and MASA trust anchor filled in. */
  config: StationConfig;
}

export async function startServicesForRun(config: StationConfig, dataDir: string): Promise<RunServices> {
  const stationCa = stationPkiPaths(dataDir).stationCa;
  if (!existsSync(stationCa)) {
    throw new ConfigError('STATION_CA_MISSING', `--with-services needs the station CA (${stationCa}); run "station pki init" with this data dir first.`);
  }
  const anchor = referenceMasaTrustAnchor(dataDir);
  let services: ReferenceServices;
  try {
    services = await startReferenceServices({ dir: servicesDir(dataDir), stationCaCertificatePath: stationCa });
  } catch (err) {
    throw new ConfigError('SERVICES_START_FAILED', `The reference services did not start: ${(err as Error).message}`);
  }
  const products = Object.fromEntries(
    Object.entries(config.products).map(([name, p]) => [name, p.install.masaTrustAnchor === undefined ? { ...p, install: { ...p.install, masaTrustAnchor: anchor } } : p]),
  );
  const sync = SyncConfigSchema.parse({
    ...(config.sync ?? {}),
    masa: { url: services.masaUrl, serverCaCertificate: services.serverCaPath },
    supplyChain: { url: services.supplyChainUrl, serverCaCertificate: services.serverCaPath },
  });
  return { services, config: { ...config, products, sync } };
}
