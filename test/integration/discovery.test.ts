/**
 * Port discovery with real PTYs: socat pairs whose `link=` lands in a watched folder (PTYs are
 * not udev devices), the real listers (udev through serialport, node-hid) and the built
 * `station ports` against a running `station-sim` line. No USB serial or HID hardware is used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPortDiscovery } from '../../src/device/discovery/create-port-discovery';
import type { PortEvent } from '../../src/device/discovery/port-discovery';
import { openPtyPair, type PtyPair } from '../../src/simulator/pty-pair';
import { REPO, STATION_BIN, cleanEnv, runStation, testDir } from '../helpers/station-cli';
import { requireTool } from '../helpers/tools';

/** Fails with the reason when the CLI was not built from the current sources. */
function requireBuilt(): void {
  for (const [src, built] of [
    ['src/station/cli/ports-command.ts', 'dist/station/cli/ports-command.js'],
    ['src/device/discovery/port-discovery.ts', 'dist/device/discovery/port-discovery.js'],
    ['src/simulator/cli.ts', 'dist/simulator/cli.js'],
  ] as const) {
    const b = join(REPO, built);
    if (!existsSync(b)) throw new Error(`${b} is missing: build first with "npx tsc -p tsconfig.json"`);
    if (statSync(join(REPO, src)).mtimeMs > statSync(b).mtimeMs) throw new Error(`${b} is older than ${src}: rebuild with "npx tsc -p tsconfig.json"`);
  }
}

/**
 * A configuration that keeps the test away from any real serial port or HID device of the
 * machine (nothing is opened but the PTYs): no by-id glob, and a USB filter no device matches.
 * Ports without USB ids found in a watched folder (the PTY links) pass every filter.
 */
function hermeticConfig(dir: string): string {
  const path = join(dir, 'station.json');
  writeFileSync(path, JSON.stringify({ discovery: { watch: [], usbFilters: [{ vendorId: 'ffff', productId: 'fffe' }] } }));
  return path;
}

interface Line {
  event: string;
  path?: string;
  realPath?: string;
  source?: string;
  probe?: { status: string; identity?: { model: string; hardwareId: string; macs: string[] }; error?: { code: string } };
}

describe('port discovery on PTYs', () => {
  beforeAll(() => {
    requireTool('socat', 'socat');
    requireBuilt();
  });

  it('reports a socat PTY link as added, once, and as removed when socat exits', async () => {
    const links = join(testDir('discovery-hotplug'), 'links');
    mkdirSync(links);
    // The real listers (udev, node-hid) plus the link folder; only events in that folder count.
    const discovery = createPortDiscovery({ watch: [], usbFilters: [] }, { extraWatch: [links] });
    const events: PortEvent[] = [];
    const seen = () => events.filter((e) => e.port.path.startsWith(links)).map((e) => `${e.type} ${e.port.path}`);
    const w = discovery.watch((e) => events.push(e));
    let pair: PtyPair | undefined;
    try {
      await w.ready;
      expect(seen()).toEqual([]);
      pair = await openPtyPair(join(links, 'port0'), join(links, 'port0.device'));
      await expect.poll(seen, { timeout: 5000 }).toEqual([`port-added ${join(links, 'port0')}`]);
      const added = events.find((e) => e.port.path === join(links, 'port0'))!;
      expect(added.port).toMatchObject({ kind: 'serial', source: 'watch', realPath: expect.stringMatching(/^\/dev\/pts\/\d+$/) });
      expect(added.initial).toBe(false);

      await pair.close(); // SIGTERM: socat removes its links on exit
      if (existsSync(join(links, 'port0'))) rmSync(join(links, 'port0'), { force: true });
      await expect.poll(seen, { timeout: 5000 }).toEqual([`port-added ${join(links, 'port0')}`, `port-removed ${join(links, 'port0')}`]);
      // several more polls: still exactly one event each way, and never the far end
      await new Promise((r) => setTimeout(r, 3 * discovery.pollIntervalMs));
      expect(seen()).toEqual([`port-added ${join(links, 'port0')}`, `port-removed ${join(links, 'port0')}`]);
    } finally {
      await w.stop();
      await pair?.close();
    }
  });

  it('station ports --watch --json prints added and removed ports and exits 0 on SIGINT', async () => {
    const dir = testDir('discovery-cli-watch');
    const links = join(dir, 'links');
    mkdirSync(links);
    const child = spawn(process.execPath, [STATION_BIN, '--config', hermeticConfig(dir), 'ports', '--watch', '--json', '--link-dir', links], {
      cwd: REPO,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Line[] = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Line));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let pair: PtyPair | undefined;
    try {
      await expect.poll(() => lines.map((l) => l.event), { timeout: 10_000 }).toEqual(['ready']);
      pair = await openPtyPair(join(links, 'port7'), join(links, 'port7.device'));
      await expect.poll(() => lines.map((l) => `${l.event} ${l.path ?? ''}`.trim()), { timeout: 5000 }).toEqual(['ready', `port-added ${join(links, 'port7')}`]);
      await pair.close();
      await expect.poll(() => lines.map((l) => l.event), { timeout: 5000 }).toEqual(['ready', 'port-added', 'port-removed']);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stderr).toContain('watching for ports');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await pair?.close();
    }
  });

  describe('station ports --probe against station-sim', () => {
    let sim: ChildProcess;
    let simDir: string;
    let simPorts: string[];

    beforeAll(async () => {
      requireTool('socat', 'socat');
      requireBuilt();
      simDir = testDir('discovery-sim');
      // stdin stays open as a pipe: the simulator stops when it closes, so no process outlives the test
      sim = spawn(process.execPath, [join(REPO, 'bin/station-sim.js'), 'start', '--ports', '2', '--dir', simDir], { cwd: REPO, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
      let simErr = '';
      sim.stderr!.on('data', (d: Buffer) => (simErr += d.toString()));
      simPorts = await new Promise<string[]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`station-sim was not ready within 60 s: ${simErr}`)), 60_000);
        sim.once('exit', (code) => reject(new Error(`station-sim exited with ${code}: ${simErr}`)));
        createInterface({ input: sim.stdout! }).once('line', (line) => {
          clearTimeout(timer);
          const msg = JSON.parse(line) as { event?: string; ports?: string[] };
          if (msg.event === 'ready' && Array.isArray(msg.ports)) resolve(msg.ports);
          else reject(new Error(`unexpected first line from station-sim: ${line}`));
        });
      });
      sim.removeAllListeners('exit');
    });

    afterAll(async () => {
      if (!sim || sim.exitCode !== null || sim.signalCode !== null) return;
      const exited = new Promise((r) => sim.once('exit', r));
      sim.kill('SIGTERM');
      await exited;
    });

    it('shows both ports with model DemoSensor-1 and distinct hardware ids, never the far ends', async () => {
      expect(simPorts).toEqual([join(simDir, 'links/port0'), join(simDir, 'links/port1')]);
      const r = await runStation(['--config', hermeticConfig(simDir), 'ports', '--probe', '--link-dir', join(simDir, 'links'), '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
      expect(lines.map((l) => [l.event, l.path, l.source])).toEqual([
        ['port', simPorts[0], 'watch'],
        ['port', simPorts[1], 'watch'],
      ]);
      for (const l of lines) {
        expect(l.realPath).toMatch(/^\/dev\/pts\/\d+$/);
        expect(l.probe).toMatchObject({ status: 'identified', identity: { model: 'DemoSensor-1', hardwareId: expect.stringMatching(/^[0-9a-f]{16}$/) } });
      }
      expect(lines[0]!.realPath).not.toBe(lines[1]!.realPath);
      expect(lines[0]!.probe!.identity!.hardwareId).not.toBe(lines[1]!.probe!.identity!.hardwareId);
    });

    it('the table shows the same, with the identity column', async () => {
      const r = await runStation(['--config', hermeticConfig(simDir), 'ports', '--probe', '--link-dir', join(simDir, 'links')]);
      expect(r.code).toBe(0);
      const [header, ...rows] = r.stdout.trim().split('\n');
      expect(header).toMatch(/^KIND\s+PATH\s+REAL PATH\s+VID:PID\s+SERIAL NUMBER\s+SOURCE\s+DEVICE$/);
      expect(rows).toHaveLength(2);
      for (const [i, row] of rows.entries()) expect(row).toMatch(new RegExp(`^serial\\s+${simPorts[i]}\\s+/dev/pts/\\d+\\s+-\\s+-\\s+watch\\s+DemoSensor-1 hw=[0-9a-f]{16} fw=1\\.0\\.0 mac=[0-9a-f]{12}`));
    });
  });
});
