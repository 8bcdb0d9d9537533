import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GlobPortLister, parseWatchGlob } from '../../../../src/device/discovery/glob-port-lister';

describe('parseWatchGlob', () => {
  it('splits a glob into a folder and a pattern for its entries', () => {
    const g = parseWatchGlob('/dev/serial/by-id/*');
    expect(g.folder).toBe('/dev/serial/by-id');
    expect(g.matches('usb-FTDI_FT232R_A1-if00-port0')).toBe(true);
    expect(g.matches('.hidden')).toBe(false);
    const p = parseWatchGlob('/sim/links/port*');
    expect([p.matches('port0'), p.matches('port12'), p.matches('xport0'), p.matches('port0.device')]).toEqual([true, true, false, true]);
  });

  it('reads an entry without * as a folder, relative to cwd', () => {
    expect(parseWatchGlob('links/', '/work/sim')).toMatchObject({ folder: '/work/sim/links', pattern: '*' });
  });

  it('refuses a * outside the last part', () => {
    expect(() => parseWatchGlob('/dev/*/by-id/*')).toThrow(expect.objectContaining({ code: 'DISCOVERY_GLOB_INVALID' }));
  });
});

describe('GlobPortLister', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'glob-lister-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists links to character devices, skips far ends, dangling links, files and duplicates', async () => {
    const links = join(dir, 'links');
    mkdirSync(links);
    symlinkSync('/dev/null', join(links, 'port0'));
    symlinkSync('/dev/zero', join(links, 'port0.device'));
    symlinkSync('/dev/full', join(links, 'port1'));
    symlinkSync('/dev/null', join(links, 'port9')); // same device as port0
    symlinkSync(join(dir, 'gone'), join(links, 'port2')); // dangling
    writeFileSync(join(links, 'notes.txt'), 'not a port');
    const lister = new GlobPortLister([links, join(dir, 'missing', '*')]);
    expect(await lister.list()).toEqual([
      { kind: 'serial', path: join(links, 'port0'), realPath: '/dev/null', source: 'watch' },
      { kind: 'serial', path: join(links, 'port1'), realPath: '/dev/full', source: 'watch' },
    ]);
  });

  it('signals a change when a link appears, watches a folder made later, and closes its watches', async () => {
    const links = join(dir, 'links');
    const lister = new GlobPortLister([join(links, 'port*')]);
    let changes = 0;
    const sub = lister.watch(() => changes++);
    expect(await lister.list()).toEqual([]); // the folder does not exist yet
    mkdirSync(links);
    await lister.list(); // sets the watch now that the folder exists
    symlinkSync('/dev/null', join(links, 'port0'));
    await expect.poll(() => changes, { timeout: 2000 }).toBeGreaterThan(0);
    sub.close();
    const after = changes;
    symlinkSync('/dev/zero', join(links, 'port1'));
    await new Promise((r) => setTimeout(r, 100));
    expect(changes).toBe(after);
    expect((await lister.list()).map((c) => c.path)).toEqual([join(links, 'port0'), join(links, 'port1')]);
  });
});
