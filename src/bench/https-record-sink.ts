/**
 * A minimal record sink speaking the upload half of docs/sync-api.md over HTTPS with mutual TLS:
 * `POST /api/v1/records`, each record stored once by its idempotency key (stored / duplicate /
 * conflict), 401 without a client certificate the CA trusts. For the `sync` bench when the
 * reference services are absent, and for the relay's tests, which script its answers (`script`:
 * return a behaviour for each request). It does not verify record signatures (the reference
 * MASA does); the tests check signatures themselves.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { canonicalJson, type JsonValue } from '../core/canonical-json';

export type SinkBehaviour =
  | { kind: 'normal' }
  | { kind: 'status'; status: number; body?: string; retryAfter?: string }
  /** Answer normally after this delay. */
  | { kind: 'slow'; delayMs: number }
  /** Store the batch, then drop the connection without answering. */
  | { kind: 'drop-after-commit' }
  /** Store normally but answer these keys as rejected (reason) instead. */
  | { kind: 'reject'; keys: readonly string[]; reason: string };

export interface SinkRequest {
  n: number;
  keys: string[];
  authorized: boolean;
}

export interface HttpsRecordSinkOptions {
  caCert: string;
  serverCert: string;
  serverKey: string;
  script?: (request: SinkRequest) => SinkBehaviour;
}

export class HttpsRecordSink {
  /** idempotency key -> canonical payload, stored once. */
  readonly stored = new Map<string, string>();
  /** Every store attempt per key (a duplicate send counts here, not in `stored`). */
  readonly received = new Map<string, number>();
  readonly requests: SinkRequest[] = [];
  private server: Server | undefined;
  url = '';

  constructor(private readonly options: HttpsRecordSinkOptions) {}

  /** Listens on 127.0.0.1 (`port` 0: a free one); returns the base URL. */
  async start(port = 0): Promise<string> {
    const o = this.options;
    this.server = createServer({ key: readFileSync(o.serverKey), cert: readFileSync(o.serverCert), ca: readFileSync(o.caCert), requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const authorized = (req.socket as TLSSocket).authorized;
        let body: { records?: { idempotencyKey: string; payload: JsonValue }[] };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          res.writeHead(400).end('{"error":"not JSON"}');
          return;
        }
        const records = Array.isArray(body.records) ? body.records : [];
        const request: SinkRequest = { n: this.requests.length + 1, keys: records.map((r) => r.idempotencyKey), authorized };
        this.requests.push(request);
        if (!authorized) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"client certificate required"}');
          return;
        }
        if (req.method !== 'POST' || req.url !== '/api/v1/records' || records.length === 0 || records.length > 1000) {
          res.writeHead(400).end('{"error":"bad request"}');
          return;
        }
        const behaviour = this.options.script?.(request) ?? { kind: 'normal' };
        if (behaviour.kind === 'status') {
          res.writeHead(behaviour.status, { 'content-type': 'application/json', ...(behaviour.retryAfter ? { 'retry-after': behaviour.retryAfter } : {}) }).end(behaviour.body ?? '{}');
          return;
        }
        const rejected = new Set(behaviour.kind === 'reject' ? behaviour.keys : []);
        const results = records.map((r) => {
          if (rejected.has(r.idempotencyKey)) return { idempotencyKey: r.idempotencyKey, status: 'rejected', reason: behaviour.kind === 'reject' ? behaviour.reason : '' };
          this.received.set(r.idempotencyKey, (this.received.get(r.idempotencyKey) ?? 0) + 1);
          const canonical = canonicalJson(r.payload);
          const before = this.stored.get(r.idempotencyKey);
          if (before === undefined) {
            this.stored.set(r.idempotencyKey, canonical);
            return { idempotencyKey: r.idempotencyKey, status: 'stored' };
          }
          return { idempotencyKey: r.idempotencyKey, status: before === canonical ? 'duplicate' : 'conflict', ...(before === canonical ? {} : { reason: 'same key, different payload' }) };
        });
        const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
        if (behaviour.kind === 'drop-after-commit') req.socket.destroy();
        else if (behaviour.kind === 'slow') setTimeout(answer, behaviour.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
