/**
 * Starts the reference MASA and supply-chain service as node child processes on 127.0.0.1
 * (docs/services.md): their PKI and configuration under `dir`, random free ports unless given,
 * waits until both listen, and stops them (also when this process dies: their stdin is a pipe
 * from it). The services run the compiled JavaScript in dist/services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureMasaIdentity } from './masa/masa-identity';
import { ensurePrivateDir } from './pki/key-files';
import { ensureServicePki } from './pki/service-pki';
import type { ServiceConfigInput } from './service-config';

export { ensureMasaIdentity, masaIdentityPaths, type MasaIdentityPaths } from './masa/masa-identity';
export { ensureOwnerCredential, type OwnerCredential } from './pki/service-pki';

export const SERVICE_MAIN = resolve(__dirname, '../../dist/services/service-main.js');

export type ServicesOwnership = { mode: 'trust-on-first-use' } | { mode: 'sales-integration'; owners: Record<string, string[]> };

export interface ReferenceServicesOptions {
  /** Where the services keep their PKI, configuration, databases and logs (made 0700). */
  dir: string;
  /** PEM of the CA that issues station certificates. */
  stationCaCertificatePath: string;
  /** SQLite files under `dir` by default; PostgreSQL: one database per service (no password in the URL). */
  storage?: { kind: 'sqlite' } | { kind: 'postgres'; masaConnectionString: string; supplyChainConnectionString: string };
  ownership?: ServicesOwnership;
  allowedStations?: string[];
  /** Startup faults per service (docs/services.md, "Faults"). */
  faults?: { masa?: string[]; supplyChain?: string[] };
  /** Fixed ports (e.g. to restart a service where the station expects it); 0 or absent = free port. */
  ports?: { masa?: number; supplyChain?: number };
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
}

export interface ReferenceServices {
  masaUrl: string;
  supplyChainUrl: string;
  /** PEM: the CA of both services' TLS server certificate (what a client trusts). */
  serverCaPath: string;
  /** PEM: the MASA's voucher-signing certificate (the devices' MASA trust anchor). */
  masaCertificatePath: string;
  /** PEM: the CA of owner credentials at the supply-chain service. */
  ownerCaPath: string;
  dir: string;
  stop(): Promise<void>;
}

interface StartedService {
  url: string;
  child: ChildProcess;
}

function startService(name: string, configPath: string, port: number, logPath: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<StartedService> {
  if (!existsSync(SERVICE_MAIN)) {
    return Promise.reject(new Error(`${SERVICE_MAIN} is missing: build the project first (npx tsc -p tsconfig.json)`));
  }
  const logFd = openSync(logPath, 'a', 0o600);
  const child = spawn(process.execPath, [SERVICE_MAIN, '--config', configPath, '--port', String(port), '--host', '127.0.0.1'], { stdio: ['pipe', 'pipe', logFd], env });
  closeSync(logFd);
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolveStarted, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the ${name} did not start within ${timeoutMs} ms; see ${logPath}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the ${name} exited with code ${code} before listening; see ${logPath}`));
    });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        const msg = JSON.parse(line) as { event?: string; url?: string };
        if (msg.event !== 'listening' || typeof msg.url !== 'string') throw new Error(line);
        child.removeAllListeners('exit');
        resolveStarted({ url: msg.url, child });
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`the ${name} printed an unexpected line: ${line}`));
      }
    });
  });
}

function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStopped) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStopped();
    });
    child.kill('SIGTERM');
  });
}

export async function startReferenceServices(options: ReferenceServicesOptions): Promise<ReferenceServices> {
  const dir = resolve(options.dir);
  ensurePrivateDir(dir);
  const pki = ensureServicePki(dir);
  const masaIdentity = ensureMasaIdentity(dir);
  const stationCa = resolve(options.stationCaCertificatePath);
  if (!existsSync(stationCa)) throw new Error(`the station CA certificate ${stationCa} does not exist`);
  const storage = options.storage ?? { kind: 'sqlite' };
  const common = {
    tls: { certificate: pki.serverCertificatePath, key: pki.serverKeyPath },
    stationCa,
    ...(options.allowedStations ? { allowedStations: options.allowedStations } : {}),
  };
  const masaConfig: ServiceConfigInput = {
    service: 'masa',
    ...common,
    storage: storage.kind === 'sqlite' ? { kind: 'sqlite', path: join(dir, 'masa', 'masa.db') } : { kind: 'postgres', connectionString: storage.masaConnectionString },
    masa: { signingCertificate: masaIdentity.certificatePath, signingKey: masaIdentity.keyPath, ownership: options.ownership ?? { mode: 'trust-on-first-use' } },
    faults: options.faults?.masa ?? [],
  };
  const supplyConfig: ServiceConfigInput = {
    service: 'supply-chain',
    ...common,
    storage: storage.kind === 'sqlite' ? { kind: 'sqlite', path: join(dir, 'supply-chain', 'supply-chain.db') } : { kind: 'postgres', connectionString: storage.supplyChainConnectionString },
    supplyChain: { ownerCa: pki.ownerCaPath },
    faults: options.faults?.supplyChain ?? [],
  };
  for (const sub of ['masa', 'supply-chain']) ensurePrivateDir(join(dir, sub));
  const masaConfigPath = join(dir, 'masa', 'config.json');
  const supplyConfigPath = join(dir, 'supply-chain', 'config.json');
  writeFileSync(masaConfigPath, JSON.stringify(masaConfig, null, 2) + '\n', { mode: 0o600 });
  writeFileSync(supplyConfigPath, JSON.stringify(supplyConfig, null, 2) + '\n', { mode: 0o600 });
  mkdirSync(dir, { recursive: true });

  const env = options.env ?? process.env;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const started = await Promise.allSettled([
    startService('MASA', masaConfigPath, options.ports?.masa ?? 0, join(dir, 'masa', 'service.log'), env, timeoutMs),
    startService('supply-chain service', supplyConfigPath, options.ports?.supplyChain ?? 0, join(dir, 'supply-chain', 'service.log'), env, timeoutMs),
  ]);
  const children = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.child] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(children.map((c) => stopChild(c)));
    throw failed.reason as Error;
  }
  const [masa, supply] = started.map((s) => (s as PromiseFulfilledResult<StartedService>).value) as [StartedService, StartedService];
  let stopped: Promise<void> | undefined;
  return {
    masaUrl: masa.url,
    supplyChainUrl: supply.url,
    serverCaPath: pki.serverCaPath,
    masaCertificatePath: masaIdentity.certificatePath,
    ownerCaPath: pki.ownerCaPath,
    dir,
    stop: () => (stopped ??= Promise.all([stopChild(masa.child), stopChild(supply.child)]).then(() => undefined)),
  };
}
