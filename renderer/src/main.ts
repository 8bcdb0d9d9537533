/** Entry: Electron's preload gives window.station; in a browser, the bridge's WebSocket does. */
import type { StationApi } from '../../src/station/contract/station-api';
import { App } from './app';
import { connectBridge } from './bridge-client';

declare global {
  interface Window {
    station?: StationApi;
  }
}

async function boot(): Promise<void> {
  const root = document.getElementById('app')!;
  const lost = () => {
    const banner = document.createElement('p');
    banner.className = 'lost';
    banner.setAttribute('role', 'alert');
    banner.textContent = 'The connection to the station was lost. Restart "station gui" and open its new URL.';
    document.body.prepend(banner);
  };
  try {
    const api = window.station ?? (await connectBridge(lost));
    await new App(root, api).start();
  } catch (err) {
    root.textContent = (err as Error).message;
  }
}

void boot();
