/**
 * Test parts for the reference services (src/services): a software station identity (station
 * CA, station certificate for mTLS and record signing), signed device records, a plain HTTPS
 * client, registrar and pledge CMS voucher-requests, and a throwaway PostgreSQL cluster on
 * 127.0.0.1 (initdb + pg_ctl from Debian's postgresql, run as the postgres user when root).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJsonBytes, type JsonValue } from '../../src/core/canonical-json';
import { idempotencyKeyOf, type DeviceRecordPayload, type SignedDeviceRecord } from '../../src/core/device-record';
import { VOUCHER_CMS_MEDIA_TYPE, VOUCHER_REQUEST_KEY, signVoucherCms } from '../../src/core/voucher-cms';
import { EKU_CLIENT_AUTH, EKU_CMC_RA, generateP256Key, issueCertificate, toPem } from '../../src/services/pki/software-certificates';

export interface Identity {
  key: KeyObject;
  certificate: Buffer;
  certificatePath: string;
  keyPath: string;
}

export interface Ca {
  key: KeyObject;
  certificate: Buffer;
  path: string;
}

export function makeCa(dir: string, name: string): Ca {
  const key = generateP256Key();
  const certificate = issueCertificate({ subject: { commonName: name }, publicKey: createPublicKey(key), signingKey: key, validityDays: 30, ca: {}, keyUsage: ['keyCertSign', 'cRLSign'] });
  const path = join(dir, `${name.replace(/\W+/g, '-')}.pem`);
  writeFileSync(path, toPem(certificate));
  return { key, certificate, path };
}

export function issueIdentity(dir: string, ca: Ca, commonName: string, opts: { eku?: string[]; serialNumber?: string } = {}): Identity {
  const key = generateP256Key();
  const certificate = issueCertificate({
    subject: { commonName, ...(opts.serialNumber ? { serialNumber: opts.serialNumber } : {}) },
    publicKey: createPublicKey(key),
    issuerCertificate: ca.certificate,
    signingKey: ca.key,
    validityDays: 30,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: opts.eku ?? [EKU_CLIENT_AUTH],
  });
  const base = join(dir, commonName.replace(/\W+/g, '-'));
  writeFileSync(`${base}.pem`, toPem(certificate));
  writeFileSync(`${base}.key`, key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  return { key, certificate, certificatePath: `${base}.pem`, keyPath: `${base}.key` };
}

export function registrarIdentity(dir: string, domainCa: Ca, name: string): Identity {
  return issueIdentity(dir, domainCa, name, { eku: [EKU_CMC_RA, EKU_CLIENT_AUTH] });
}

/** A device's IDevID (subject serialNumber) and its software key, from a test IDevID CA. */
export function deviceIdentity(dir: string, idevidCa: Ca, serial: string): Identity {
  return issueIdentity(dir, idevidCa, `device ${serial}`, { serialNumber: serial, eku: [EKU_CLIENT_AUTH] });
}

export function payloadFor(serial: string, idevid: Buffer, over: Partial<DeviceRecordPayload> = {}): DeviceRecordPayload {
  return {
    schema: 'device-record-v1',
    stationId: 'station-1',
    sequence: 1,
    serial,
    workOrder: 'WO-TEST-1',
    owner: null,
    model: 'DemoSensor-1',
    method: 'secure-element-keygen',
    keyOrigin: 'secure-element',
    macs: ['02005e000001'],
    seSerial: null,
    chipId: null,
    publicKeySha256: createHash('sha256').update(new X509Certificate(idevid).publicKey.export({ format: 'der', type: 'spki' })).digest('hex'),
    idevid: idevid.toString('base64'),
    certificateSerial: new X509Certificate(idevid).serialNumber.toLowerCase().replace(/^0+/, '') || '0',
    dppUri: `DPP:C:81/1;M:02005e000001;I:${serial};V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACc3ZQ2wMKXqG5LwZ6+fqY0t2f3cUqQ1l7gbH7V1D1tdU=;;`,
    status: 'active',
    voidReason: null,
    recordedAt: new Date().toISOString(),
    ...over,
  };
}

export function signRecord(station: Identity, payload: DeviceRecordPayload): SignedDeviceRecord {
  const value = sign('sha256', canonicalJsonBytes(payload as unknown as JsonValue), { key: station.key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return { idempotencyKey: idempotencyKeyOf(payload), payload, signature: { alg: 'ES256', stationCertificate: station.certificate.toString('base64'), value } };
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: <T = unknown>() => T;
}

export function httpsRequest(url: string, opts: { method?: string; ca: Buffer | string; client?: { key: KeyObject; certificate: Buffer }; body?: Buffer | object; contentType?: string; accept?: string }): Promise<HttpsAnswer> {
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? (body ? 'POST' : 'GET'),
        ca: opts.ca,
        agent: false,
        ...(opts.client ? { key: opts.client.key.export({ format: 'pem', type: 'pkcs8' }), cert: toPem(opts.client.certificate) } : {}),
        headers: {
          ...(body ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': body.length } : {}),
          ...(opts.accept ? { accept: opts.accept } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, json: <T>() => JSON.parse(buf.toString('utf8')) as T });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The pledge's CMS voucher-request, signed with its IDevID key (what BUILD_VOUCHER_REQUEST returns). */
export function pledgeVoucherRequest(device: Identity, serial: string, nonce: Buffer | undefined, registrarCert: Buffer): Buffer {
  return signVoucherCms(
    { [VOUCHER_REQUEST_KEY]: { assertion: 'proximity', 'created-on': new Date().toISOString(), 'serial-number': serial, ...(nonce ? { nonce: nonce.toString('base64') } : {}), 'proximity-registrar-cert': registrarCert.toString('base64') } },
    { certificates: [device.certificate], sign: (d) => sign('sha256', d, { key: device.key, dsaEncoding: 'der' }) },
  );
}

export function registrarVoucherRequest(registrar: Identity, domainCa: Buffer, serial: string, nonce: Buffer | undefined, prior: Buffer): Buffer {
  return signVoucherCms(
    { [VOUCHER_REQUEST_KEY]: { 'created-on': new Date().toISOString(), 'serial-number': serial, ...(nonce ? { nonce: nonce.toString('base64') } : {}), 'prior-signed-voucher-request': prior.toString('base64') } },
    { certificates: [registrar.certificate, domainCa], sign: (d) => sign('sha256', d, { key: registrar.key, dsaEncoding: 'der' }) },
  );
}

export const VOUCHER_CMS = VOUCHER_CMS_MEDIA_TYPE;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function postgresBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed: install the Debian package postgresql (make test does this when run as root)');
  return join(base, versions[0]!, 'bin');
}

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/DB (trust authentication on loopback, no password). */
  url(database: string): string;
  createDatabase(name: string): void;
  stop(): void;
}

/** A PostgreSQL cluster in a temporary folder on 127.0.0.1 and a free port; root runs it as the postgres user. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const bin = postgresBin();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'svc-pg-'));
  chmodSync(dir, 0o700);
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] as const : [join(bin, cmd), args] as const;
    const r = spawnSync(full[0], [...full[1]], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  run('pg_ctl', ['-D', data, '-o', `-h 127.0.0.1 -p ${port} -k ${dir} -F`, '-l', join(dir, 'log'), '-w', 'start']);
  const psql = (sql: string) => {
    const r = spawnSync(join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
  };
  let stopped = false;
  return {
    url: (db) => `postgres://postgres@127.0.0.1:${port}/${db}`,
    createDatabase: (name) => psql(`CREATE DATABASE ${name}`),
    stop: () => {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}
