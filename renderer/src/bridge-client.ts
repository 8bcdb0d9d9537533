/**
 * StationApi over the bridge's WebSocket (the kiosk browser and the tests). Electron gives the
 * same API as window.station through its preload; the app does not know which one it has.
 * The page's cookie (set when the kiosk URL's token was accepted) authenticates the socket.
 */
import type { CommandArgs, CommandName } from '../../src/station/contract/commands';
import type { OutboundMessage } from '../../src/station/contract/messages';
import type { ApiErrorInfo, CommandResults, StationApi, StationEvent } from '../../src/station/contract/station-api';

export class ApiCallError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export function connectBridge(onClosed: () => void): Promise<StationApi> {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(e: StationEvent) => void>();
  let nextId = 1;
  ws.addEventListener('message', (m) => {
    const msg = JSON.parse(String(m.data)) as OutboundMessage;
    if (msg.type === 'event') {
      for (const l of listeners) l(msg.event);
      return;
    }
    const p = msg.id === null ? undefined : pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id!);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new ApiCallError(msg.error.code, msg.error.message));
  });
  ws.addEventListener('close', () => {
    for (const p of pending.values()) p.reject(new ApiCallError('DISCONNECTED', 'The connection to the station was lost.'));
    pending.clear();
    onClosed();
  });
  const call = <K extends CommandName>(command: K, args: CommandArgs[K]): Promise<CommandResults[K]> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ type: 'call', id, command, args }));
    });
  const api = new Proxy({} as StationApi, {
    get: (_target, name: string) => {
      if (name === 'onEvent') {
        return (l: (e: StationEvent) => void) => {
          listeners.add(l);
          return () => listeners.delete(l);
        };
      }
      // not a thenable (the promise that resolves to this proxy looks for "then")
      if (name === 'then' || typeof name !== 'string') return undefined;
      return (args: CommandArgs[CommandName]) => call(name as CommandName, args);
    },
  });
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(api), { once: true });
    ws.addEventListener('error', () => reject(new ApiCallError('DISCONNECTED', 'Cannot reach the station. Open the URL that "station gui" printed.')), { once: true });
  });
}

/** Errors from either host as { code, message }. */
export function errorInfo(err: unknown): ApiErrorInfo {
  if (err instanceof ApiCallError) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; message?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : 'ERROR', message: typeof e?.message === 'string' ? e.message : String(err) };
}
