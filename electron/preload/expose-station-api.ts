/**
 * The preload's one job: expose exactly StationApi as `window.station`, nothing else (no
 * ipcRenderer, no Node). Each command is one invoke on its channel; events come on one channel.
 * Takes Electron's contextBridge and ipcRenderer as parameters so that a test can pass fakes.
 */
import type { CommandArgs, CommandName } from '../../src/station/contract/commands';
import { COMMAND_CHANNELS, EVENT_CHANNEL, type IpcReply } from '../../src/station/contract/channels';
import type { StationApi, StationEvent } from '../../src/station/contract/station-api';

export interface ContextBridgeLike {
  exposeInMainWorld(apiKey: string, api: unknown): void;
}

export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

/** An error that keeps the station's code across the context bridge (the message carries it too). */
function replyError(error: { code: string; message: string }): Error {
  const e = new Error(`${error.code}: ${error.message}`) as Error & { code: string };
  e.code = error.code;
  return e;
}

export function buildStationApi(ipc: IpcRendererLike): StationApi {
  const api: Record<string, unknown> = {};
  for (const [command, channel] of Object.entries(COMMAND_CHANNELS) as [CommandName, string][]) {
    api[command] = async (args: CommandArgs[CommandName]) => {
      const reply = (await ipc.invoke(channel, args)) as IpcReply<unknown>;
      if (!reply || typeof reply !== 'object' || !('ok' in reply)) throw replyError({ code: 'IPC_FAILED', message: 'The station answered nothing.' });
      if (!reply.ok) throw replyError(reply.error);
      return reply.value;
    };
  }
  api.onEvent = (listener: (event: StationEvent) => void) => {
    const handler = (_event: unknown, payload: unknown) => listener(payload as StationEvent);
    ipc.on(EVENT_CHANNEL, handler);
    return () => {
      ipc.removeListener(EVENT_CHANNEL, handler);
    };
  };
  return Object.freeze(api) as unknown as StationApi;
}

export function exposeStationApi(bridge: ContextBridgeLike, ipc: IpcRendererLike): void {
  bridge.exposeInMainWorld('station', buildStationApi(ipc));
}
