/**
 * The local HTTP + WebSocket bridge (`station gui`): serves the built renderer and carries
 * StationApi over one WebSocket per page, on 127.0.0.1 only. A request without the per-start
 * token, from a non-loopback peer, with a foreign Host or Origin, or with an invalid message is
 * refused (bridge-security.ts; docs/gui.md).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { extname, join } from 'node:path';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { ConfigError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { InboundMessageSchema, MAX_INBOUND_BYTES, type OutboundMessage } from '../contract/messages';
import type { ApiClient, ApiConnection } from '../api/station-api-service';
import {
  TOKEN_COOKIE,
  cookieValue,
  isAllowedHost,
  isAllowedOrigin,
  isLoopbackAddress,
  newBridgeToken,
  securityHeaders,
  tokensEqual,
} from './bridge-security';

export interface ApiConnector {
  connect(client: ApiClient): ApiConnection;
}

export interface HttpBridgeOptions {
  api: ApiConnector;
  /** The built renderer (dist/renderer): index.html and its assets. */
  rendererDir: string;
  log: Logger;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Tests may fix it; default a fresh random token per start. */
  token?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

export class HttpBridge {
  private readonly assets = new Map<string, { type: string; body: Buffer }>();
  private readonly sockets = new Set<WebSocket>();
  private readonly wss: WebSocketServer;
  private port = 0;

  private constructor(
    private readonly opts: HttpBridgeOptions,
    private readonly server: Server,
    readonly token: string,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_INBOUND_BYTES });
  }

  static async start(opts: HttpBridgeOptions): Promise<HttpBridge> {
    const server = createServer();
    const bridge = new HttpBridge(opts, server, opts.token ?? newBridgeToken());
    bridge.loadAssets();
    server.on('request', (req, res) => bridge.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => bridge.onUpgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ConfigError('BRIDGE_LISTEN_FAILED', `The GUI bridge cannot listen on 127.0.0.1:${opts.port ?? 0}: ${err.message}`)));
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    bridge.port = typeof address === 'object' && address ? address.port : 0;
    return bridge;
  }

  /** The kiosk URL: the token is in it once; the page then lives on an HttpOnly cookie. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/?token=${this.token}`;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private loadAssets(): void {
    let names: string[];
    try {
      names = readdirSync(this.opts.rendererDir);
    } catch {
      throw new ConfigError('RENDERER_MISSING', `The GUI is not built: ${this.opts.rendererDir} is missing. Run "npm run build".`);
    }
    for (const name of names) {
      const type = CONTENT_TYPES[extname(name)];
      if (type && /^[a-z0-9][a-z0-9._-]*$/i.test(name)) this.assets.set(`/${name}`, { type, body: readFileSync(join(this.opts.rendererDir, name)) });
    }
    if (!this.assets.has('/index.html')) throw new ConfigError('RENDERER_MISSING', `The GUI is not built: ${this.opts.rendererDir}/index.html is missing. Run "npm run build".`);
  }

  /** Loopback peer, our Host, our Origin (when sent). */
  private placeOk(req: IncomingMessage): boolean {
    return isLoopbackAddress(req.socket.remoteAddress) && isAllowedHost(req.headers.host, this.port) && isAllowedOrigin(req.headers.origin, this.port);
  }

  private send(res: ServerResponse, status: number, body: string | Buffer, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}): void {
    res.writeHead(status, { ...securityHeaders(this.port), 'Content-Type': type, ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (!this.placeOk(req)) return this.send(res, 403, 'Forbidden: the station GUI answers its own loopback origin only.\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.send(res, 405, 'Method not allowed.\n', undefined, { Allow: 'GET, HEAD' });
    const url = new URL(req.url ?? '/', this.origin);
    const given = url.searchParams.get('token');
    if (given !== null) {
      if (!tokensEqual(this.token, given)) return this.send(res, 401, 'Unauthorized: wrong token. Use the URL "station gui" printed.\n');
      // trade the URL token for a cookie and drop it from the address bar
      return this.send(res, 303, '', undefined, {
        Location: url.pathname,
        'Set-Cookie': `${TOKEN_COOKIE}=${this.token}; HttpOnly; SameSite=Strict; Path=/`,
      });
    }
    if (!tokensEqual(this.token, cookieValue(req.headers.cookie, TOKEN_COOKIE))) {
      return this.send(res, 401, 'Unauthorized: open the URL that "station gui" printed (it carries the token).\n');
    }
    const asset = this.assets.get(url.pathname === '/' ? '/index.html' : url.pathname);
    if (!asset) return this.send(res, 404, 'Not found.\n');
    return this.send(res, 200, asset.body, asset.type);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!this.placeOk(req)) return refuse('403 Forbidden');
    const url = new URL(req.url ?? '/', this.origin);
    if (url.pathname !== '/ws') return refuse('404 Not Found');
    const token = cookieValue(req.headers.cookie, TOKEN_COOKIE) ?? url.searchParams.get('token');
    if (!tokensEqual(this.token, token)) return refuse('401 Unauthorized');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws, req));
  }

  private onSocket(ws: WebSocket, req: IncomingMessage): void {
    this.sockets.add(ws);
    const out = (m: OutboundMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
    };
    const connection = this.opts.api.connect({ label: `bridge ${req.socket.remoteAddress ?? '?'}`, send: (event) => out({ type: 'event', event }) });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return out({ type: 'result', id: null, ok: false, error: { code: 'BAD_REQUEST', message: 'Text frames only.' } });
      let json: unknown;
      try {
        json = JSON.parse(data.toString());
      } catch {
        return out({ type: 'result', id: null, ok: false, error: { code: 'BAD_REQUEST', message: 'Not JSON.' } });
      }
      const msg = InboundMessageSchema.safeParse(json);
      if (!msg.success) return out({ type: 'result', id: null, ok: false, error: { code: 'BAD_REQUEST', message: 'Not a call message: {type:"call", id, command, args}.' } });
      const { id, command, args } = msg.data;
      void connection.call(command, args).then((reply) => out(reply.ok ? { type: 'result', id, ok: true, value: reply.value } : { type: 'result', id, ok: false, error: reply.error }));
    });
    ws.on('close', () => {
      this.sockets.delete(ws);
      connection.close();
    });
    ws.on('error', (err) => this.opts.log.warn({ reason: err.message }, 'GUI bridge socket error'));
  }
}
