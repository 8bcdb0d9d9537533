/**
 * The GUI's line follows port discovery (issue 8: "port appeared" in the event stream): a
 * StationApiService over a real station with no fixed ports announces a socat PTY link that
 * appears in a watched folder as `port.appeared` with its tile, and `port.gone` when it goes away.
 * Only the link folder is watched (no by-id glob, HID off), so no real port of the machine is used.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../src/core/config';
import { discoveryHotPlug } from '../../src/station/api/discovery-hot-plug';
import { StationApiService } from '../../src/station/api/station-api-service';
import type { StationEvent } from '../../src/station/contract/station-api';
import { createFileLogger } from '../../src/station/pino-logger';
import { createStation, databasePath } from '../../src/station/station';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteUserStore } from '../../src/manufacturer-db/user-store';
import { openPtyPair, type PtyPair } from '../../src/simulator/pty-pair';
import { testDir } from '../helpers/station-cli';
import { requireTool } from '../helpers/tools';

describe('GUI hot-plug', () => {
  let service: StationApiService | undefined;
  let pair: PtyPair | undefined;
  afterAll(async () => {
    await pair?.close();
    await service?.stop();
  });

  it('announces a port that appears in a watched folder, and its going away', async () => {
    requireTool('socat', 'socat');
    const dir = testDir('gui-hot-plug');
    const links = join(dir, 'links');
    mkdirSync(links);
    const dataDir = join(dir, 'data');
    process.env.SOFTHSM2_CONF = join(dataDir, 'softhsm2.conf');
    const config = parseStationConfig({ ...defaultStationConfig(), discovery: { watch: [], usbFilters: [] } }, 'test');
    const log = createFileLogger(join(dir, 'station.log'), {});
    const station = createStation(config, { dataDir, log });
    await station.pkiInit();
    service = await StationApiService.start({
      station,
      log,
      outDir: dir,
      discovery: discoveryHotPlug(config.discovery, { extraWatch: [links], hid: false, pollIntervalMs: 100 }),
    });
    const db = openDatabase(databasePath(dataDir));
    await new SqliteUserStore(db, config.stationId, { hashParams: { N: 1024, r: 8, p: 1, keyLen: 32 } }).addUser({ username: 'olive', role: 'operator', pin: '2468', by: 'test' });
    db.close();
    const events: StationEvent[] = [];
    const conn = service.connect({ label: 'test', send: (e) => events.push(e) });
    expect(await conn.call('signIn', { username: 'olive', pin: '2468' })).toMatchObject({ ok: true });
    const ours = () => events.filter((e) => (e.type === 'port.appeared' || e.type === 'port.gone') && e.port.startsWith(links)).map((e) => `${e.type} ${(e as { port: string }).port}`);
    expect(ours()).toEqual([]);

    const port = join(links, 'port0');
    pair = await openPtyPair(port, join(links, 'port0.device'));
    await expect.poll(ours, { timeout: 5000 }).toEqual([`port.appeared ${port}`]);
    expect(service.ports).toContain(port);
    const appeared = events.find((e) => e.type === 'port.appeared' && e.port === port) as Extract<StationEvent, { type: 'port.appeared' }>;
    expect(appeared.tile.port).toBe(port);

    await pair.close();
    pair = undefined;
    if (existsSync(port)) rmSync(port, { force: true });
    await expect.poll(ours, { timeout: 5000 }).toEqual([`port.appeared ${port}`, `port.gone ${port}`]);
    expect(service.ports).not.toContain(port);
  }, 60_000);
});
