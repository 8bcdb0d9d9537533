/// <reference path="../electron-surface.d.ts" />
/**
 * The window's security settings (style.md; Electron's security checklist): context isolation,
 * the sandbox, no Node in the page, web security on; a strict CSP on every response; no
 * navigation away from the renderer, no new windows, no permission grants.
 */
import type { BrowserWindowConstructorOptions, Session, WebContents, WebPreferences } from 'electron';

export const SECURE_WEB_PREFERENCES: Readonly<Required<Omit<WebPreferences, 'preload'>>> = Object.freeze({
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  experimentalFeatures: false,
  webviewTag: false,
  navigateOnDragDrop: false,
  spellcheck: false,
});

/** The renderer's CSP in the Electron shell: its own files only, no inline code, no network. */
export const RENDERER_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function mainWindowOptions(preloadPath: string, kiosk: boolean): BrowserWindowConstructorOptions {
  return {
    width: 1400,
    height: 1000,
    show: false,
    title: 'Provisioning station',
    autoHideMenuBar: true,
    kiosk,
    webPreferences: { ...SECURE_WEB_PREFERENCES, preload: preloadPath },
  };
}

/** CSP header on every response of the session; permissions (camera, notifications...) refused. */
export function hardenSession(session: Session): void {
  session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...(details.responseHeaders ?? {}), 'Content-Security-Policy': [RENDERER_CSP] } });
  });
  session.setPermissionRequestHandler((_webContents, _permission, callback) => callback(false));
}

/** The page never leaves the renderer and never opens windows. */
export function hardenContents(contents: WebContents, rendererUrl: string): void {
  contents.on('will-navigate', (event, url) => {
    if (url !== rendererUrl) event.preventDefault();
  });
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}
