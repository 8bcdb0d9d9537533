/**
 * IPC handlers: one `ipcMain.handle` per StationApi channel (contract/channels.ts), all going to
 * the same StationApiService connection of the sending window. A message from any sender but
 * the main frame of our own window showing our renderer is dropped: the service never sees it
 * (electron/fiddle's ipc.ts does the same). Arguments are validated by the service's schemas.
 */
import { COMMAND_CHANNELS, EVENT_CHANNEL, type IpcReply } from '../../src/station/contract/channels';
import type { CommandName } from '../../src/station/contract/commands';
import type { ApiClient, ApiConnection } from '../../src/station/api/station-api-service';

export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => Promise<unknown> | unknown): void;
}

export interface SenderLike {
  id: number;
  send(channel: string, ...args: unknown[]): void;
  isDestroyed(): boolean;
}

export interface IpcEventLike {
  sender: SenderLike;
  senderFrame: { url: string; parent: unknown } | null;
}

export interface ApiConnectorLike {
  connect(client: ApiClient): ApiConnection;
}

export interface TrustedRenderer {
  /** webContents id of the main window. */
  webContentsId: number;
  /** The renderer's file URL (file:///.../dist/renderer/index.html). */
  url: string;
}

export interface StationIpcOptions {
  /** The window allowed to talk to the station (set once the window exists). */
  trusted: () => TrustedRenderer | undefined;
  /** Dropped messages are reported here (never their arguments: a PIN may be in them). */
  onDropped?: (channel: string, why: string) => void;
}

export function isTrustedSender(event: IpcEventLike, trusted: TrustedRenderer | undefined): string | null {
  if (!trusted) return 'no window yet';
  if (event.sender.id !== trusted.webContentsId) return 'unknown webContents';
  if (!event.senderFrame) return 'no sender frame';
  if (event.senderFrame.parent !== null) return 'a subframe';
  if (event.senderFrame.url.split('#')[0] !== trusted.url) return 'a foreign URL';
  return null;
}

const DROPPED: IpcReply<never> = { ok: false, error: { code: 'IPC_SENDER_REFUSED', message: 'This page may not talk to the station.' } };

export function registerStationIpc(ipcMain: IpcMainLike, api: ApiConnectorLike, options: StationIpcOptions): void {
  const connections = new Map<number, ApiConnection>();
  const connectionFor = (sender: SenderLike): ApiConnection => {
    let c = connections.get(sender.id);
    if (!c) {
      c = api.connect({
        label: `electron window ${sender.id}`,
        send: (event) => {
          if (!sender.isDestroyed()) sender.send(EVENT_CHANNEL, event);
        },
      });
      connections.set(sender.id, c);
    }
    return c;
  };
  for (const [command, channel] of Object.entries(COMMAND_CHANNELS) as [CommandName, string][]) {
    ipcMain.handle(channel, async (event, args): Promise<IpcReply<unknown>> => {
      const why = isTrustedSender(event, options.trusted());
      if (why !== null) {
        options.onDropped?.(channel, why);
        return DROPPED;
      }
      const reply = await connectionFor(event.sender).call(command, args);
      return reply.ok ? { ok: true, value: reply.value } : { ok: false, error: reply.error };
    });
  }
}
