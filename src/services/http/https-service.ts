/**
 * The reference services' HTTPS server (node:https): TLS 1.2+, the client certificate requested
 * on every connection and classified per request (station CA, owner CA, unknown, none), JSON
 * bodies, a tiny router, one structured log line per request, graceful stop.
 */
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from '../../core/logger';
import { takeFault, type ServiceFault } from './service-faults';

export const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface ClientIdentity {
  /** none: no client certificate; unknown: one no configured CA vouches for; station / owner: issued under that CA. */
  role: 'none' | 'unknown' | 'station' | 'owner';
  commonName?: string;
  certificate?: X509Certificate;
}

export interface RequestContext {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  client: ClientIdentity;
  body: Buffer;
}

export interface HttpResponse {
  status: number;
  json?: unknown;
  body?: Buffer;
  contentType?: string;
}

/** An answer other than 2xx, with a message for the client and the log. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Route {
  method: 'GET' | 'POST';
  /** `/api/v1/devices/:serial/audit`: `:name` matches one URL-decoded path segment. */
  pattern: string;
  /** The startup faults apply to this route (the records upload). */
  faultable?: boolean;
  handle(ctx: RequestContext): Promise<HttpResponse>;
}

export interface HttpsServiceOptions {
  name: string;
  key: Buffer;
  certificate: Buffer;
  /** CAs whose certificates identify stations / owners; TLS accepts a client chain to any of them. */
  stationCas: X509Certificate[];
  ownerCas?: X509Certificate[];
  routes: Route[];
  log: Logger;
  faults?: ServiceFault[];
}

/** 401 for no or an unknown client certificate, 403 for a known one of another role. */
export function requireRole(ctx: RequestContext, role: 'station' | 'owner'): string {
  if (ctx.client.role === 'none') throw new HttpError(401, 'CLIENT_CERTIFICATE_REQUIRED', 'a client certificate is required');
  if (ctx.client.role === 'unknown') throw new HttpError(401, 'CLIENT_CERTIFICATE_UNKNOWN', 'the client certificate is not issued by a CA this service trusts');
  if (ctx.client.role !== role) throw new HttpError(403, 'CLIENT_NOT_ALLOWED', `this endpoint is for ${role}s`);
  if (!ctx.client.commonName) throw new HttpError(403, 'CLIENT_NOT_ALLOWED', 'the client certificate has no common name');
  return ctx.client.commonName;
}

/** The request body as JSON (415 unless application/json, 400 when unreadable). */
export function jsonBody(ctx: RequestContext): unknown {
  const type = (ctx.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send application/json');
  try {
    return JSON.parse(ctx.body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'MALFORMED_JSON', 'the body is not JSON');
  }
}

function compile(pattern: string): (path: string) => Record<string, string> | undefined {
  const parts = pattern.split('/');
  return (path) => {
    const segs = path.split('/');
    if (segs.length !== parts.length) return undefined;
    const params: Record<string, string> = {};
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (p.startsWith(':')) {
        if (segs[i] === '') return undefined;
        try {
          params[p.slice(1)] = decodeURIComponent(segs[i]!);
        } catch {
          return undefined;
        }
      } else if (p !== segs[i]) return undefined;
    }
    return params;
  };
}

function peerChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let peer: PeerCertificate | undefined = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
  const seen = new Set<string>();
  while (peer && peer.raw && !seen.has(peer.fingerprint256)) {
    seen.add(peer.fingerprint256);
    chain.push(new X509Certificate(peer.raw));
    peer = (peer as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return chain;
}

export class HttpsService {
  private readonly server: Server;
  private readonly routes: { route: Route; match: (path: string) => Record<string, string> | undefined }[];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: HttpsServiceOptions) {
    this.routes = options.routes.map((route) => ({ route, match: compile(route.pattern) }));
    this.server = createServer(
      {
        key: options.key,
        cert: options.certificate,
        ca: [...options.stationCas, ...(options.ownerCas ?? [])].map((c) => c.toString()),
        requestCert: true,
        // the handler answers 401/403 itself, so that a client learns why (docs/sync-api.md)
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      },
      (req, res) => {
        const done = this.handle(req, res).finally(() => this.inFlight.delete(done));
        this.inFlight.add(done);
      },
    );
  }

  private identify(socket: TLSSocket): ClientIdentity {
    const chain = peerChain(socket);
    const leaf = chain[0];
    if (!leaf) return { role: 'none' };
    const cn = leaf.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3);
    if (!socket.authorized) return { role: 'unknown', commonName: cn, certificate: leaf };
    const issuedBy = (cas: X509Certificate[] | undefined) => (cas ?? []).some((ca) => chain.some((c) => c.fingerprint256 === ca.fingerprint256 || (c.checkIssued(ca) && c.verify(ca.publicKey))));
    const role = issuedBy(this.options.stationCas) ? 'station' : issuedBy(this.options.ownerCas) ? 'owner' : 'unknown';
    return { role, commonName: cn, certificate: leaf };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'https://service.invalid');
    const client = this.identify(req.socket as TLSSocket);
    let status = 500;
    let dropped = false;
    try {
      const found = this.routes.map((r) => ({ r, params: r.match(url.pathname) })).filter((x) => x.params !== undefined);
      const hit = found.find((x) => x.r.route.method === req.method);
      if (found.length === 0) throw new HttpError(404, 'NOT_FOUND', `no endpoint ${url.pathname}`);
      if (!hit) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`);
      const faults = hit.r.route.faultable ? (this.options.faults ?? []) : [];
      const statusFault = takeFault(faults, 'status');
      if (statusFault) throw new HttpError(statusFault.status, 'FAULT_INJECTED', `fault injected: status ${statusFault.status}`);
      const delay = takeFault(faults, 'delay');
      if (delay) await new Promise((r) => setTimeout(r, delay.ms));
      const body = await readBody(req);
      const answer = await hit.r.route.handle({ method: req.method ?? 'GET', path: url.pathname, params: hit.params!, query: url.searchParams, headers: req.headers, client, body });
      status = answer.status;
      if (takeFault(faults, 'drop-after-commit')) {
        dropped = true;
        req.socket.destroy();
        return;
      }
      if (answer.json !== undefined) send(res, answer.status, 'application/json', Buffer.from(JSON.stringify(answer.json)));
      else send(res, answer.status, answer.contentType ?? 'application/octet-stream', answer.body ?? Buffer.alloc(0));
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'INTERNAL_ERROR', 'internal error');
      if (!(err instanceof HttpError)) this.options.log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'request failed');
      status = e.status;
      if (!res.headersSent && !req.socket.destroyed) send(res, e.status, 'application/json', Buffer.from(JSON.stringify({ error: { code: e.code, message: e.message } })));
    } finally {
      this.options.log.info(
        { method: req.method, path: url.pathname, status, dropped, client: client.commonName ?? null, role: client.role, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'request',
      );
    }
  }

  /** Listens on host:port (0 = a free port); resolves to the service URL. */
  listen(port: number, host: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address() as AddressInfo;
        resolve(`https://${host.includes(':') ? `[${host}]` : host}:${a.port}`);
      });
    });
  }

  /** Stops accepting, lets the requests in flight finish (at most `graceMs`), then closes every connection. */
  async stop(graceMs = 5000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.server.closeAllConnections();
    await closed;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'BODY_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, contentType: string, body: Buffer): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': body.length, 'cache-control': 'no-store' });
  res.end(body);
}
