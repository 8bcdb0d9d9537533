/** An electron fake for the shell's unit tests: instance-scoped, working in-memory behaviour. */
import type { ContextBridgeLike, IpcRendererLike } from '../../electron/preload/expose-station-api';
import type { IpcEventLike, IpcMainLike, SenderLike } from '../../electron/main/station-ipc';

export class FakeContextBridge implements ContextBridgeLike {
  readonly exposed = new Map<string, unknown>();
  exposeInMainWorld(apiKey: string, api: unknown): void {
    if (this.exposed.has(apiKey)) throw new Error(`${apiKey} exposed twice`);
    this.exposed.set(apiKey, api);
  }
}

type Listener = (event: unknown, ...args: unknown[]) => void;

/** ipcRenderer whose invoke is answered by `answer` (the main process side). */
export class FakeIpcRenderer implements IpcRendererLike {
  readonly invoked: { channel: string; args: unknown[] }[] = [];
  private readonly listeners = new Map<string, Set<Listener>>();
  constructor(private readonly answer: (channel: string, args: unknown[]) => unknown) {}
  invoke(channel: string, ...args: unknown[]): Promise<unknown> {
    this.invoked.push({ channel, args });
    return Promise.resolve(this.answer(channel, args));
  }
  on(channel: string, listener: Listener): this {
    if (!this.listeners.has(channel)) this.listeners.set(channel, new Set());
    this.listeners.get(channel)!.add(listener);
    return this;
  }
  removeListener(channel: string, listener: Listener): this {
    this.listeners.get(channel)?.delete(listener);
    return this;
  }
  emit(channel: string, payload: unknown): void {
    for (const l of this.listeners.get(channel) ?? []) l({ sender: null }, payload);
  }
  listenerCount(channel: string): number {
    return this.listeners.get(channel)?.size ?? 0;
  }
}

export class FakeIpcMain implements IpcMainLike {
  readonly handlers = new Map<string, (event: IpcEventLike, ...args: unknown[]) => Promise<unknown> | unknown>();
  handle(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => Promise<unknown> | unknown): void {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
    this.handlers.set(channel, listener);
  }
  invoke(channel: string, event: IpcEventLike, ...args: unknown[]): Promise<unknown> {
    const h = this.handlers.get(channel);
    if (!h) throw new Error(`no handler for ${channel}`);
    return Promise.resolve(h(event, ...args));
  }
}

export class FakeWebContents implements SenderLike {
  readonly sent: { channel: string; args: unknown[] }[] = [];
  constructor(readonly id: number) {}
  send(channel: string, ...args: unknown[]): void {
    this.sent.push({ channel, args });
  }
  isDestroyed(): boolean {
    return false;
  }
}
