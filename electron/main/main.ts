/**
 * The Electron shell's entry: the GUI composition root. Creates the station
 * (createStation + StationApiService, as `station gui` does), one hardened window showing the
 * built renderer, and the IPC handlers. Switches: --config FILE, --data-dir DIR, --out DIR,
 * --simulate N, --kiosk. Never launched in tests (Electron's binary is not on the reference
 * machine); main's parts are unit-tested against an electron fake.
 */
import 'reflect-metadata';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BrowserWindow, app, ipcMain } from 'electron';
import { StationApiService } from '../../src/station/api/station-api-service';
import { OutboxSyncStatus } from '../../src/station/sync/outbox-sync-status';
import { discoveryHotPlug } from '../../src/station/api/discovery-hot-plug';
import { loadConfig } from '../../src/station/cli/load-config';
import { createFileLogger } from '../../src/station/pino-logger';
import { createStation } from '../../src/station/station';
import { hardenContents, hardenSession, mainWindowOptions } from './secure-window';
import { registerStationIpc, type TrustedRenderer } from './station-ipc';

const RENDERER_HTML = resolve(__dirname, '../renderer/index.html');
const PRELOAD = resolve(__dirname, 'preload.js');

async function start(): Promise<void> {
  await app.whenReady();
  const sw = (name: string) => (app.commandLine.hasSwitch(name) ? app.commandLine.getSwitchValue(name) : undefined);
  const config = loadConfig(sw('config'));
  const outDir = resolve(sw('out') ?? join(app.getPath('userData'), 'out'));
  const dataDir = resolve(sw('data-dir') ?? join(outDir, 'data'));
  const log = createFileLogger(join(outDir, 'station.log'), { station: config.stationId });
  const station = createStation(config, { dataDir, log });
  const simulate = sw('simulate') ? Number(sw('simulate')) : undefined;
  if (simulate !== undefined) await station.pkiInit();
  const sync = new OutboxSyncStatus({ config, databasePath: join(dataDir, 'station.db') });
  const service = await StationApiService.start({ station, log, outDir, sync, discovery: discoveryHotPlug(config.discovery), ...(simulate !== undefined ? { simulate: { ports: simulate } } : {}) });

  let trusted: TrustedRenderer | undefined;
  registerStationIpc(ipcMain, service, {
    trusted: () => trusted,
    onDropped: (channel, why) => log.warn({ channel, why }, 'IPC from an unknown sender dropped'),
  });
  const win = new BrowserWindow(mainWindowOptions(PRELOAD, app.commandLine.hasSwitch('kiosk')));
  hardenSession(win.webContents.session);
  const url = pathToFileURL(RENDERER_HTML).href;
  hardenContents(win.webContents, url);
  trusted = { webContentsId: win.webContents.id, url };
  win.once('ready-to-show', () => win.show());
  await win.loadFile(RENDERER_HTML);
  app.on('window-all-closed', () => {
    void service.stop().then(() => app.quit());
  });
}

start().catch((err: Error) => {
  process.stderr.write(`station GUI: ${err.message}\n`);
  app.quit();
});
