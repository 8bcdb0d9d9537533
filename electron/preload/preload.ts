/** Preload entry (sandboxed; bundled into one file by electron/build.js). */
import { contextBridge, ipcRenderer } from 'electron';
import { exposeStationApi } from './expose-station-api';

exposeStationApi(contextBridge, ipcRenderer);
