/**
 * The GUI's label events now that labels print from the run's label queue (after the device's
 * PASS): a StationApiService over a real station with a simulated line of two ports runs four
 * devices; each passed device gets exactly one `label.printed` (kind first) after its
 * `device.passed`, the tile of each port ends showing its last device's label printed, and the
 * label stage's late events never turn a PASS tile back to running.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../src/core/config';
import { StationApiService } from '../../src/station/api/station-api-service';
import type { PortTile, StationEvent } from '../../src/station/contract/station-api';
import { createFileLogger } from '../../src/station/pino-logger';
import { createStation, databasePath } from '../../src/station/station';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteUserStore } from '../../src/manufacturer-db/user-store';
import { testDir } from '../helpers/station-cli';

describe('StationApiService: labels from the run\'s label queue', () => {
  let service: StationApiService | undefined;
  afterAll(() => service?.stop());

  it('sends each passed device\'s label outcome once, after its PASS, and shows it on the tile', async () => {
    const dir = testDir('api-labels');
    const dataDir = join(dir, 'data');
    process.env.SOFTHSM2_CONF = join(dataDir, 'softhsm2.conf');
    const config = parseStationConfig(defaultStationConfig(), 'test');
    const log = createFileLogger(join(dir, 'station.log'), {});
    const station = createStation(config, { dataDir, log });
    await station.pkiInit();
    service = await StationApiService.start({ station, log, outDir: dir, simulate: { ports: 2 } });
    const db = openDatabase(databasePath(dataDir));
    await new SqliteUserStore(db, config.stationId, { hashParams: { N: 1024, r: 8, p: 1, keyLen: 32 } }).addUser({ username: 'olive', role: 'operator', pin: '2468', by: 'test' });
    db.close();
    const events: StationEvent[] = [];
    const conn = service.connect({ label: 'test', send: (e) => events.push(e) });
    expect(await conn.call('signIn', { username: 'olive', pin: '2468' })).toMatchObject({ ok: true });
    expect(await conn.call('selectWorkOrder', { workOrderId: config.workOrders[0]!.id })).toMatchObject({ ok: true });
    expect(await conn.call('startRun', { count: 4 })).toMatchObject({ ok: true });
    await expect.poll(() => events.some((e) => e.type === 'run.finished'), { timeout: 60_000 }).toBe(true);

    const finished = events.find((e) => e.type === 'run.finished') as Extract<StationEvent, { type: 'run.finished' }>;
    expect(finished.counts).toEqual({ total: 4, passed: 4, failed: 0, labelPending: 0 });
    const passed = events.filter((e): e is Extract<StationEvent, { type: 'device.passed' }> => e.type === 'device.passed');
    expect(passed).toHaveLength(4);
    for (const p of passed) {
      const labels = events.filter((e): e is Extract<StationEvent, { type: 'label.printed' }> => e.type === 'label.printed' && e.serial === p.serial);
      expect(labels.map((l) => [l.state, l.kind, l.reason])).toEqual([['printed', 'first', null]]);
      expect(events.indexOf(labels[0]!)).toBeGreaterThan(events.indexOf(p));
    }
    // the last tile each port showed: its last device, passed, label printed
    const lastTile = new Map<string, PortTile>();
    for (const e of events) if ('tile' in e && e.type !== 'port.appeared') lastTile.set(e.tile.port, e.tile);
    expect([...lastTile.values()].map((t) => [t.state, t.label])).toEqual([
      ['passed', 'printed'],
      ['passed', 'printed'],
    ]);
    // no label stage event reached the tiles: a PASS tile never went back to "running" at label
    expect(events.some((e) => (e.type === 'stage.started' || e.type === 'stage.finished') && e.stage === 'label')).toBe(false);
  }, 120_000);
});
