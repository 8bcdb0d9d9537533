/**
 * HttpsSyncTarget: `POST {url}/api/v1/records` over HTTPS with mutual TLS (node:https), as
 * docs/sync-api.md says. The client key is a PEM file (mode 0600, refused otherwise), separate
 * from the HSM key that signs records (contracts.md §5); the server is checked against the CA
 * certificate configured for the target (and the name in the URL). One keep-alive agent per
 * target. Every failure is a SendResult; nothing here throws for the network.
 */
import { readFileSync, statSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { RecordOutcome, SignedDeviceRecord } from '../../core/device-record';
import { ConfigError } from '../../core/errors';
import type { SyncTargetName } from '../outbox/outbox-store';
import type { SendResult, SyncTarget } from './sync-target';

export interface HttpsSyncTargetOptions {
  name: SyncTargetName;
  /** Base URL of the service, https://host:port (a path prefix is kept). */
  url: string;
  /** PEM file(s): the CA that issued the service's TLS certificate. */
  serverCaCertificatePath: string;
  /** PEM PKCS#8 client key, mode 0600. */
  clientKeyPath: string;
  /** PEM client certificate (then its CA). */
  clientCertificatePath: string;
  /** A request that has not answered after this long is retried later. Default 15 s. */
  requestTimeoutMs?: number;
}

const OUTCOMES = new Set(['stored', 'duplicate', 'conflict', 'rejected']);

function readSecretKey(path: string): Buffer {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    throw new ConfigError('SYNC_CLIENT_KEY_MISSING', `The TLS client key ${path} does not exist. Run "station ca station-cert".`);
  }
  if ((mode & 0o077) !== 0) throw new ConfigError('SYNC_CLIENT_KEY_MODE', `The TLS client key ${path} can be read by others (mode ${(mode & 0o777).toString(8)}); run "chmod 600 ${path}".`);
  return readFileSync(path);
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new ConfigError('SYNC_FILE_MISSING', `The ${what} ${path} cannot be read.`);
  }
}

/** Retry-After in seconds or as an HTTP date, in ms; undefined when absent or unreadable. */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

function parseResults(body: string): RecordOutcome[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const results = (parsed as { results?: unknown })?.results;
  if (!Array.isArray(results)) return undefined;
  const out: RecordOutcome[] = [];
  for (const r of results) {
    const o = r as { idempotencyKey?: unknown; status?: unknown; reason?: unknown };
    if (typeof o?.idempotencyKey !== 'string' || typeof o.status !== 'string' || !OUTCOMES.has(o.status)) return undefined;
    out.push({ idempotencyKey: o.idempotencyKey, status: o.status as RecordOutcome['status'], ...(typeof o.reason === 'string' ? { reason: o.reason.slice(0, 500) } : {}) });
  }
  return out;
}

export class HttpsSyncTarget implements SyncTarget {
  readonly name: SyncTargetName;
  readonly url: string;
  private readonly endpoint: URL;
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(options: HttpsSyncTargetOptions) {
    this.name = options.name;
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new ConfigError('SYNC_URL_INVALID', `The ${options.name} URL "${options.url}" is not a URL.`);
    }
    if (base.protocol !== 'https:') throw new ConfigError('SYNC_URL_INVALID', `The ${options.name} URL must be https:// (mutual TLS), not ${base.protocol}.`);
    if (base.username || base.password) throw new ConfigError('SYNC_URL_INVALID', `The ${options.name} URL must not carry credentials; the station authenticates with its client certificate.`);
    this.url = base.origin + base.pathname.replace(/\/$/, '');
    this.endpoint = new URL(`${base.pathname.replace(/\/$/, '')}/api/v1/records`, base.origin);
    this.timeoutMs = options.requestTimeoutMs ?? 15_000;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 2,
      ca: readFile(options.serverCaCertificatePath, `${options.name} server CA certificate`),
      key: readSecretKey(options.clientKeyPath),
      cert: readFile(options.clientCertificatePath, 'TLS client certificate'),
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    });
  }

  send(records: readonly SignedDeviceRecord[], signal?: AbortSignal): Promise<SendResult> {
    const body = Buffer.from(JSON.stringify({ records }), 'utf8');
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const done = (r: SendResult) => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };
      const req = request(
        this.endpoint,
        { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': body.length, accept: 'application/json' }, signal, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= 8 * 1024 * 1024) chunks.push(c);
          });
          res.on('error', (err) => done({ kind: 'retry', error: `reading the answer failed: ${err.message}` }));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            const brief = `HTTP ${status}${text ? `: ${text.replace(/\s+/g, ' ').slice(0, 200)}` : ''}`;
            if (status === 200 || status === 201) {
              const results = parseResults(text);
              return done(results ? { kind: 'ok', results } : { kind: 'retry', error: `HTTP ${status} with an answer that is not a results list` });
            }
            if (status === 401 || status === 403) return done({ kind: 'unauthorized', status, error: brief });
            if (status === 400 || status === 409 || status === 422) return done({ kind: 'invalid', status, error: brief });
            const after = retryAfterMs(res.headers['retry-after']);
            return done({ kind: 'retry', error: brief, ...(after !== undefined ? { retryAfterMs: after } : {}) });
          });
        },
      );
      req.on('timeout', () => {
        req.destroy(new Error(`no answer within ${this.timeoutMs} ms`));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // TLS errors (an untrusted server, a refused client certificate at handshake) and network errors alike: retry.
        done({ kind: 'retry', error: `${err.code ? `${err.code}: ` : ''}${err.message}` });
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
