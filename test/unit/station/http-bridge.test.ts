/**
 * The bridge on loopback: requests without the token, with a foreign Host or Origin, and
 * messages that are not valid calls are refused before the API sees them; a valid call is answered
 * and events reach the page. Real HTTP and WebSocket on 127.0.0.1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { silentLogger } from '../../../src/core/logger';
import type { ApiClient, CallReply } from '../../../src/station/api/station-api-service';
import { HttpBridge } from '../../../src/station/bridge/http-bridge';
import { testDir } from '../../helpers/station-cli';

class RecordingApi {
  readonly calls: { command: string; args: unknown }[] = [];
  readonly clients: ApiClient[] = [];
  connect(client: ApiClient) {
    this.clients.push(client);
    return {
      call: async (command: string, args: unknown): Promise<CallReply> => {
        this.calls.push({ command, args });
        return { ok: true, value: { echo: command } };
      },
      close: () => undefined,
    };
  }
}

let bridge: HttpBridge;
const api = new RecordingApi();

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(path, bridge.origin);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function socket(headers: Record<string, string>, query = ''): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${new URL(bridge.origin).port}/ws${query}`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function next(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()) as Record<string, unknown>)));
}

const cookie = () => `station_token=${bridge.token}`;

describe('HttpBridge', () => {
  beforeAll(async () => {
    const dir = join(testDir('bridge'), 'renderer');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(dir, 'app.js'), 'void 0;');
    bridge = await HttpBridge.start({ api, rendererDir: dir, log: silentLogger });
  });
  afterAll(() => bridge.close());

  it('listens on 127.0.0.1 and prints a URL with a long random token', () => {
    expect(bridge.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
  });

  it('refuses requests without the token or with a wrong one', async () => {
    expect((await get('/')).status).toBe(401);
    expect((await get('/app.js')).status).toBe(401);
    expect((await get('/?token=nope')).status).toBe(401);
    expect((await get('/', { Cookie: 'station_token=nope' })).status).toBe(401);
  });

  it('trades the URL token for an HttpOnly SameSite cookie, then serves the page under a strict CSP', async () => {
    const entry = await get(`/?token=${bridge.token}`);
    expect(entry.status).toBe(303);
    expect(entry.headers.location).toBe('/');
    expect(String(entry.headers['set-cookie'])).toMatch(/^station_token=[^;]+; HttpOnly; SameSite=Strict; Path=\/$/);
    const page = await get('/', { Cookie: cookie() });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect((await get('/../package.json', { Cookie: cookie() })).status).toBe(404);
  });

  it('refuses a foreign Host (DNS rebinding) and a foreign Origin', async () => {
    expect((await get('/', { Cookie: cookie(), Host: 'evil.example' })).status).toBe(403);
    expect((await get('/', { Cookie: cookie(), Origin: 'http://evil.example' })).status).toBe(403);
    await expect(socket({ Cookie: cookie(), Origin: 'http://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(socket({})).rejects.toThrow('HTTP 401');
    await expect(socket({}, '?token=nope')).rejects.toThrow('HTTP 401');
  });

  it('answers a valid call, refuses anything else before the API sees it, and forwards events', async () => {
    const ws = await socket({ Cookie: cookie(), Origin: bridge.origin });
    const before = api.calls.length;
    for (const bad of ['not json', JSON.stringify({ type: 'call', id: 'x', command: 'status' }), JSON.stringify({ type: 'call', id: 1, command: 'status', args: {}, extra: 1 }), JSON.stringify([1, 2])]) {
      const reply = next(ws);
      ws.send(bad);
      expect(await reply).toMatchObject({ type: 'result', id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    }
    const binary = next(ws);
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await binary).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(api.calls.length).toBe(before);
    const reply = next(ws);
    ws.send(JSON.stringify({ type: 'call', id: 7, command: 'status', args: {} }));
    expect(await reply).toEqual({ type: 'result', id: 7, ok: true, value: { echo: 'status' } });
    const event = next(ws);
    api.clients[api.clients.length - 1]!.send({ type: 'session.ended', reason: 'inactivity' });
    expect(await event).toEqual({ type: 'event', event: { type: 'session.ended', reason: 'inactivity' } });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('x'.repeat(64 * 1024));
    expect(await closed).toBe(1009); // message too big
  });
});
