/**
 * The small part of Electron's API the shell uses. Electron's package cannot be installed here
 * (its postinstall downloads the binary, and that host is unreachable: pitfalls.md 18), so the
 * surface is declared locally and checked against Electron's documentation (docs/gui.md).
 * `npm run package` installs the real electron package, whose types match these.
 */
declare module 'electron' {
  export interface WebPreferences {
    preload?: string;
    contextIsolation?: boolean;
    sandbox?: boolean;
    nodeIntegration?: boolean;
    nodeIntegrationInSubFrames?: boolean;
    webSecurity?: boolean;
    allowRunningInsecureContent?: boolean;
    experimentalFeatures?: boolean;
    webviewTag?: boolean;
    navigateOnDragDrop?: boolean;
    spellcheck?: boolean;
  }
  export interface BrowserWindowConstructorOptions {
    width?: number;
    height?: number;
    show?: boolean;
    title?: string;
    autoHideMenuBar?: boolean;
    kiosk?: boolean;
    webPreferences?: WebPreferences;
  }
  export interface WebFrameMain {
    url: string;
    parent: WebFrameMain | null;
  }
  export interface WebContents {
    id: number;
    send(channel: string, ...args: unknown[]): void;
    isDestroyed(): boolean;
    on(event: 'will-navigate', listener: (event: { preventDefault(): void }, url: string) => void): this;
    on(event: 'destroyed', listener: () => void): this;
    setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' } | { action: 'allow' }): void;
    session: Session;
  }
  export interface Session {
    setPermissionRequestHandler(handler: ((webContents: WebContents, permission: string, callback: (granted: boolean) => void) => void) | null): void;
    webRequest: {
      onHeadersReceived(listener: (details: { responseHeaders?: Record<string, string[]> }, callback: (response: { responseHeaders?: Record<string, string[]> }) => void) => void): void;
    };
  }
  export class BrowserWindow {
    constructor(options?: BrowserWindowConstructorOptions);
    webContents: WebContents;
    loadFile(filePath: string): Promise<void>;
    once(event: 'ready-to-show', listener: () => void): this;
    show(): void;
  }
  export interface IpcMainInvokeEvent {
    sender: WebContents;
    senderFrame: WebFrameMain | null;
  }
  export interface IpcMain {
    handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => Promise<unknown> | unknown): void;
  }
  export const ipcMain: IpcMain;
  export interface App {
    whenReady(): Promise<void>;
    on(event: 'window-all-closed' | 'before-quit', listener: () => void): this;
    quit(): void;
    getPath(name: 'userData'): string;
    commandLine: { getSwitchValue(name: string): string; hasSwitch(name: string): boolean };
  }
  export const app: App;
  export interface IpcRendererEvent {
    sender: unknown;
  }
  export interface IpcRenderer {
    invoke(channel: string, ...args: unknown[]): Promise<unknown>;
    on(channel: string, listener: (event: IpcRendererEvent, ...args: unknown[]) => void): this;
    removeListener(channel: string, listener: (event: IpcRendererEvent, ...args: unknown[]) => void): this;
  }
  export const ipcRenderer: IpcRenderer;
  export interface ContextBridge {
    exposeInMainWorld(apiKey: string, api: unknown): void;
  }
  export const contextBridge: ContextBridge;
}
