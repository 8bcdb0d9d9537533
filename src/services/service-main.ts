/**
 * Entry point of a reference service process (docs/services.md):
 *   node dist/services/service-main.js --config FILE [--port N] [--host H]
 * `--port 0` picks a free port. When listening it prints one JSON line on stdout,
 * {"event":"listening","service":...,"url":...}; logs are JSON lines on stderr. It stops on
 * SIGTERM or SIGINT, and when its stdin closes (its parent went away).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import type { Logger } from '../core/logger';
import { HttpsService, type Route } from './http/https-service';
import { parseServiceFault } from './http/service-faults';
import { masaRoutes } from './masa/masa-routes';
import type { OwnershipPolicy } from './masa/ownership-policy';
import { VoucherIssuer } from './masa/voucher-request-handler';
import { readCertificates, readPrivateKey } from './pki/key-files';
import { StationTrust } from './records/station-trust';
import { loadServiceConfig } from './service-config';
import { openSqlDatabase } from './storage/open-sql-database';
import type { SqlDatabase } from './storage/sql-database';
import { supplyChainRoutes } from './supply-chain/supply-chain-routes';

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export async function runService(argv: string[]): Promise<void> {
  const configFile = option(argv, '--config');
  if (!configFile) throw new Error('usage: service-main --config FILE [--port N] [--host H]');
  const portText = option(argv, '--port') ?? '0';
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new Error('--port must be 0..65535');
  const host = option(argv, '--host') ?? '127.0.0.1';
  const { config, resolvePath } = loadServiceConfig(configFile);
  const log = pino({ base: { service: config.service } }, pino.destination(2)) as unknown as Logger;

  const trust = new StationTrust(readCertificates(resolvePath(config.stationCa)), config.allowedStations);
  const storage = config.storage.kind === 'sqlite' ? { kind: 'sqlite' as const, path: resolvePath(config.storage.path) } : config.storage;
  const db: SqlDatabase = await openSqlDatabase(storage);
  let routes: Route[];
  let ownerCas: X509Certificate[] | undefined;
  if (config.service === 'masa') {
    const m = config.masa!;
    const ownership: OwnershipPolicy =
      m.ownership.mode === 'trust-on-first-use'
        ? { mode: 'trust-on-first-use' }
        : { mode: 'sales-integration', owners: new Map(Object.entries(m.ownership.owners).map(([owner, files]) => [owner, files.flatMap((f) => readCertificates(resolvePath(f)))])) };
    const vouchers = new VoucherIssuer({
      db,
      signingKey: readPrivateKey(resolvePath(m.signingKey)),
      signingCertificate: readCertificates(resolvePath(m.signingCertificate))[0]!.raw,
      ownership,
      noncelessLifetimeSeconds: m.noncelessVoucherLifetimeSeconds,
    });
    routes = masaRoutes(db, trust, vouchers);
  } else {
    ownerCas = readCertificates(resolvePath(config.supplyChain!.ownerCa));
    routes = supplyChainRoutes(db, trust);
  }
  const service = new HttpsService({
    name: config.service,
    key: readFileSync(resolvePath(config.tls.key)),
    certificate: readFileSync(resolvePath(config.tls.certificate)),
    stationCas: readCertificates(resolvePath(config.stationCa)),
    ownerCas,
    routes,
    log,
    faults: config.faults.map(parseServiceFault),
  });
  const url = await service.listen(port, host);
  log.info({ url, storage: config.storage.kind, faults: config.faults }, 'listening');
  process.stdout.write(JSON.stringify({ event: 'listening', service: config.service, url, pid: process.pid }) + '\n');

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'stopping');
    await service.stop();
    await db.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.stdin.on('end', () => void stop('parent went away'));
  process.stdin.on('error', () => void stop('parent went away'));
  process.stdin.resume();
}

if (require.main === module) {
  runService(process.argv.slice(2)).catch((err: Error) => {
    process.stderr.write(JSON.stringify({ level: 'fatal', msg: `service failed to start: ${err.message}` }) + '\n');
    process.exit(1);
  });
}
