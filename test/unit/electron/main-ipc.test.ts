/** Electron main: one handler per channel; IPC from unknown senders is dropped before the station sees it; secure window settings. */
import { describe, expect, it } from 'vitest';
import { RENDERER_CSP, SECURE_WEB_PREFERENCES, hardenContents, mainWindowOptions } from '../../../electron/main/secure-window';
import { registerStationIpc, type TrustedRenderer } from '../../../electron/main/station-ipc';
import type { ApiClient, CallReply } from '../../../src/station/api/station-api-service';
import { COMMAND_CHANNELS, EVENT_CHANNEL } from '../../../src/station/contract/channels';
import { FakeIpcMain, FakeWebContents } from '../../helpers/fake-electron';

const RENDERER_URL = 'file:///opt/station/dist/renderer/index.html';

/** A StationApiService stand-in that records what reaches it. */
class RecordingApi {
  readonly calls: { client: string; command: string; args: unknown }[] = [];
  readonly clients: ApiClient[] = [];
  connect(client: ApiClient) {
    this.clients.push(client);
    return {
      call: async (command: string, args: unknown): Promise<CallReply> => {
        this.calls.push({ client: client.label, command, args });
        return command === 'reprintLabel' ? { ok: false, error: { code: 'SUPERVISOR_REQUIRED', message: 'no' } } : { ok: true, value: `did ${command}` };
      },
      close: () => undefined,
    };
  }
}

function setUp() {
  const ipcMain = new FakeIpcMain();
  const api = new RecordingApi();
  const window = new FakeWebContents(7);
  const dropped: string[] = [];
  const trusted: TrustedRenderer = { webContentsId: window.id, url: RENDERER_URL };
  registerStationIpc(ipcMain, api, { trusted: () => trusted, onDropped: (channel, why) => dropped.push(`${channel}: ${why}`) });
  const event = (sender: FakeWebContents, url = RENDERER_URL, parent: unknown = null) => ({ sender, senderFrame: { url, parent } });
  return { ipcMain, api, window, dropped, event };
}

describe('electron main IPC', () => {
  it('handles exactly the contract channels', () => {
    const { ipcMain } = setUp();
    expect([...ipcMain.handlers.keys()].sort()).toEqual(Object.values(COMMAND_CHANNELS).sort());
  });

  it('forwards a call from the main frame of our window and answers the reply', async () => {
    const { ipcMain, api, window, event } = setUp();
    await expect(ipcMain.invoke('line:status', event(window), {})).resolves.toEqual({ ok: true, value: 'did status' });
    await expect(ipcMain.invoke('labels:reprint', event(window), { serial: 'S', reason: 'r' })).resolves.toEqual({ ok: false, error: { code: 'SUPERVISOR_REQUIRED', message: 'no' } });
    expect(api.calls.map((c) => c.command)).toEqual(['status', 'reprintLabel']);
    // one connection per window; its events go back on the event channel
    expect(api.clients).toHaveLength(1);
    api.clients[0]!.send({ type: 'session.ended', reason: 'signed-out' });
    expect(window.sent).toEqual([{ channel: EVENT_CHANNEL, args: [{ type: 'session.ended', reason: 'signed-out' }] }]);
  });

  it('drops IPC from another webContents, a subframe or a foreign URL: the station never sees it', async () => {
    const { ipcMain, api, window, dropped, event } = setUp();
    const stranger = new FakeWebContents(8);
    for (const e of [event(stranger), event(window, RENDERER_URL, { url: RENDERER_URL }), event(window, 'https://evil.example/'), { sender: window, senderFrame: null }]) {
      await expect(ipcMain.invoke('hsm:enter-pin', e, { pin: '123456' })).resolves.toMatchObject({ ok: false, error: { code: 'IPC_SENDER_REFUSED' } });
    }
    expect(api.calls).toEqual([]);
    expect(api.clients).toEqual([]);
    expect(dropped).toEqual(['hsm:enter-pin: unknown webContents', 'hsm:enter-pin: a subframe', 'hsm:enter-pin: a foreign URL', 'hsm:enter-pin: no sender frame']);
    expect(dropped.join('\n')).not.toContain('123456');
  });

  it('opens the window isolated, sandboxed, without Node, and never navigates away', () => {
    const options = mainWindowOptions('/opt/station/dist/electron/preload.js', false);
    expect(options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, webviewTag: false });
    expect(SECURE_WEB_PREFERENCES.nodeIntegrationInSubFrames).toBe(false);
    expect(RENDERER_CSP).toContain("script-src 'self'");
    expect(RENDERER_CSP).not.toMatch(/unsafe-(inline|eval)/);
    const handlers: { navigate?: (e: { preventDefault(): void }, url: string) => void; open?: (d: { url: string }) => unknown } = {};
    const contents = {
      on: (_event: string, l: (e: { preventDefault(): void }, url: string) => void) => {
        handlers.navigate = l;
        return contents;
      },
      setWindowOpenHandler: (h: (d: { url: string }) => unknown) => (handlers.open = h),
    };
    hardenContents(contents as never, RENDERER_URL);
    let prevented = 0;
    handlers.navigate!({ preventDefault: () => prevented++ }, 'https://evil.example/');
    handlers.navigate!({ preventDefault: () => prevented++ }, RENDERER_URL);
    expect(prevented).toBe(1);
    expect(handlers.open!({ url: 'https://evil.example/' })).toEqual({ action: 'deny' });
  });
});
