import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GlobPortLister } from '../../../../src/device/discovery/glob-port-lister';
import { candidateKey, matchesUsbFilters, normalizeUsbId, type PortCandidate } from '../../../../src/device/discovery/port-candidate';
import { PortDiscovery, mergeCandidates, type PortEvent } from '../../../../src/device/discovery/port-discovery';
import { FakePortLister, FakeScheduler, flush, serial } from '../../../helpers/fake-port-lister';

const byId = '/dev/serial/by-id/usb-Acme_Sensor_ABC123-if00';
const udevTty = serial('/dev/ttyACM0', { vendorId: '1209', productId: 'a0a0', serialNumber: 'ABC123', manufacturer: 'Acme' });
const watchedLink = (path: string, realPath: string): PortCandidate => ({ kind: 'serial', path, realPath, source: 'watch' });
const hid = (path: string, vendorId = '1209', productId = 'b0b0'): PortCandidate => ({ kind: 'hid', path, vendorId, productId, source: 'hid' });

describe('mergeCandidates', () => {
  it('makes one port of a by-id link and the tty udev lists: the link path, udev ids, source udev', () => {
    const merged = mergeCandidates([[udevTty], [watchedLink(byId, '/dev/ttyACM0')]]);
    expect(merged).toEqual([
      { kind: 'serial', path: byId, realPath: '/dev/ttyACM0', vendorId: '1209', productId: 'a0a0', serialNumber: 'ABC123', manufacturer: 'Acme', source: 'udev' },
    ]);
    // the order of the listers does not matter
    expect(mergeCandidates([[watchedLink(byId, '/dev/ttyACM0')], [udevTty]])).toEqual(merged);
  });

  it('keeps the first watched link when two links name the same device, and ports that only one source sees', () => {
    const merged = mergeCandidates([
      [watchedLink('/sim/links/port0', '/dev/pts/3'), watchedLink('/other/port0', '/dev/pts/3'), watchedLink('/sim/links/port1', '/dev/pts/5')],
      [serial('/dev/ttyS0')],
    ]);
    expect(merged.map((c) => [c.path, c.source])).toEqual([
      ['/dev/ttyS0', 'udev'],
      ['/sim/links/port0', 'watch'],
      ['/sim/links/port1', 'watch'],
    ]);
  });

  it('lists HID devices by path, after the serial ports, and never merges them with a serial port', () => {
    const merged = mergeCandidates([[hid('/dev/hidraw1'), hid('/dev/hidraw0'), hid('/dev/hidraw0')], [serial('/dev/hidraw0')]]);
    expect(merged.map((c) => `${c.kind} ${c.path}`)).toEqual(['serial /dev/hidraw0', 'hid /dev/hidraw0', 'hid /dev/hidraw1']);
  });

  it('leaves out fields nobody knows (no undefined keys in JSON)', () => {
    const [c] = mergeCandidates([[watchedLink('/l/p0', '/dev/pts/1')]]);
    expect(Object.keys(c!).sort()).toEqual(['kind', 'path', 'realPath', 'source']);
  });

  it('applies USB filters: vendor, vendor + product, case-insensitive; watched links without ids stay', () => {
    const ports = [
      udevTty,
      serial('/dev/ttyUSB0', { vendorId: '0403', productId: '6001' }),
      serial('/dev/ttyS0'),
      watchedLink('/sim/links/port0', '/dev/pts/3'),
      hid('/dev/hidraw0', '1209', 'b0b0'),
      hid('/dev/hidraw1', '046d', 'c52b'),
    ];
    const paths = (filters: { vendorId: string; productId?: string }[]) => mergeCandidates([ports], filters).map((c) => c.path);
    expect(paths([])).toHaveLength(6);
    expect(paths([{ vendorId: '1209' }])).toEqual(['/dev/ttyACM0', '/sim/links/port0', '/dev/hidraw0']);
    expect(paths([{ vendorId: '1209', productId: 'A0A0' }])).toEqual(['/dev/ttyACM0', '/sim/links/port0']);
    expect(paths([{ vendorId: '0403', productId: '6001' }, { vendorId: '046D' }])).toEqual(['/dev/ttyUSB0', '/sim/links/port0', '/dev/hidraw1']);
    expect(matchesUsbFilters(serial('/dev/ttyS0'), [{ vendorId: '1209' }])).toBe(false);
  });

  it('normalises USB ids to 4 lowercase hex digits', () => {
    expect(normalizeUsbId('1A86')).toBe('1a86');
    expect(normalizeUsbId('0x403')).toBe('0403');
    expect(normalizeUsbId(0x46d)).toBe('046d');
    expect(normalizeUsbId('')).toBeUndefined();
    expect(normalizeUsbId('12345')).toBeUndefined();
    expect(normalizeUsbId(70000)).toBeUndefined();
  });
});

describe('PortDiscovery.scan', () => {
  it('merges every lister, reports a failing one and uses its last good listing', async () => {
    const udev = new FakePortLister('udev', [udevTty]);
    const watched = new FakePortLister('watched', [watchedLink(byId, '/dev/ttyACM0'), watchedLink('/sim/links/port0', '/dev/pts/3')]);
    const d = new PortDiscovery({ listers: [udev, watched] });
    expect((await d.list()).map((c) => c.path)).toEqual([byId, '/sim/links/port0']);
    udev.failWith = 'udevadm: not found';
    const scan = await d.scan();
    expect(scan.errors).toEqual([{ lister: 'udev', error: expect.objectContaining({ code: 'PORT_LIST_FAILED', message: 'udevadm: not found' }) }]);
    expect(scan.candidates.find((c) => c.path === byId)?.vendorId).toBe('1209');
  });
});

describe('PortDiscovery.watch', () => {
  function setup() {
    const scheduler = new FakeScheduler();
    const lister = new FakePortLister('fake', [serial('/dev/ttyACM0')]);
    const discovery = new PortDiscovery({ listers: [lister], scheduler, pollIntervalMs: 500, debounceMs: 50 });
    const events: string[] = [];
    const onEvent = (e: PortEvent) => events.push(`${e.type} ${e.port.path}${e.initial ? ' (initial)' : ''}`);
    return { scheduler, lister, discovery, events, onEvent };
  }

  it('emits the ports present at the start, then added and removed ports found by polling', async () => {
    const { scheduler, lister, discovery, events, onEvent } = setup();
    const w = discovery.watch(onEvent);
    await w.ready;
    expect(events).toEqual(['port-added /dev/ttyACM0 (initial)']);
    lister.ports = [serial('/dev/ttyACM0'), serial('/dev/ttyACM1')];
    await scheduler.advance(499);
    expect(events).toHaveLength(1); // not yet: the next poll is at 500 ms
    await scheduler.advance(1);
    expect(events).toEqual(['port-added /dev/ttyACM0 (initial)', 'port-added /dev/ttyACM1']);
    lister.ports = [serial('/dev/ttyACM1')];
    await scheduler.advance(500);
    expect(events.slice(2)).toEqual(['port-removed /dev/ttyACM0']);
    await w.stop();
  });

  it('never repeats an event: a port that stays is reported once however often it is listed', async () => {
    const { scheduler, lister, discovery, events, onEvent } = setup();
    const w = discovery.watch(onEvent, { emitInitial: false });
    await w.ready;
    expect(events).toEqual([]);
    lister.ports.push(serial('/dev/ttyUSB0'));
    for (let i = 0; i < 10; i++) {
      lister.changed();
      await scheduler.advance(100);
    }
    expect(events).toEqual(['port-added /dev/ttyUSB0']);
    await w.stop();
  });

  it('lists again debounceMs after a change signal; a burst of signals makes one listing', async () => {
    const { scheduler, lister, discovery, events, onEvent } = setup();
    const w = discovery.watch(onEvent);
    await w.ready;
    const callsBefore = lister.listCalls;
    lister.ports = [];
    for (let i = 0; i < 5; i++) lister.changed();
    await scheduler.advance(49);
    expect(lister.listCalls).toBe(callsBefore);
    await scheduler.advance(1);
    expect(lister.listCalls).toBe(callsBefore + 1);
    expect(events.at(-1)).toBe('port-removed /dev/ttyACM0');
    await w.stop();
  });

  it('does not unplug ports when a lister fails for a while; reports the failure once and the recovery', async () => {
    const { scheduler, lister, discovery, events, onEvent } = setup();
    const errors: string[] = [];
    const w = discovery.watch(onEvent, { onError: (l, e) => errors.push(`${l}: ${e ? e.code : 'ok'}`) });
    await w.ready;
    lister.failWith = 'udevadm timed out';
    await scheduler.advance(2000);
    expect(events).toEqual(['port-added /dev/ttyACM0 (initial)']);
    expect(errors).toEqual(['fake: PORT_LIST_FAILED']);
    lister.failWith = undefined;
    await scheduler.advance(500);
    expect(errors).toEqual(['fake: PORT_LIST_FAILED', 'fake: ok']);
    await w.stop();
  });

  it('stop leaves nothing behind: no timer, no lister watch, no event afterwards', async () => {
    const { scheduler, lister, discovery, events, onEvent } = setup();
    const w = discovery.watch(onEvent);
    await w.ready;
    expect(lister.watching).toBe(1);
    lister.changed();
    expect(scheduler.pending).toBe(2); // the poll and the debounce
    await discovery.stop();
    expect(scheduler.pending).toBe(0);
    expect(lister.watching).toBe(0);
    lister.ports = [];
    lister.changed();
    await scheduler.advance(5000);
    expect(events).toEqual(['port-added /dev/ttyACM0 (initial)']);
    expect(scheduler.pending).toBe(0);
  });

  it('stop during a listing waits for it and emits nothing from it', async () => {
    const { scheduler, lister, discovery, events, onEvent } = setup();
    const w = discovery.watch(onEvent); // the first listing is in flight
    await w.stop();
    await flush();
    expect(events).toEqual([]);
    expect(scheduler.pending).toBe(0);
    expect(lister.watching).toBe(0);
  });

  it('a port whose path or device node changes is removed and added again (its key changes)', () => {
    expect(candidateKey(serial('/dev/ttyACM0'))).not.toBe(candidateKey(serial('/dev/ttyACM0', { realPath: '/dev/ttyACM1' })));
    expect(candidateKey(serial('/dev/ttyACM0', { serialNumber: 'A' }))).toBe(candidateKey(serial('/dev/ttyACM0', { serialNumber: 'B' })));
  });

  it('with real timers and fs.watch, stop releases every handle so the process can exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'discovery-handles-'));
    try {
      const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'FSEventWrap').length;
      const before = handles();
      const discovery = new PortDiscovery({ listers: [new GlobPortLister([join(dir, '*')])], pollIntervalMs: 20, debounceMs: 5 });
      const events: PortEvent[] = [];
      const w = discovery.watch((e) => events.push(e));
      await w.ready;
      expect(handles()).toBeGreaterThan(before); // a poll timer and a folder watch
      symlinkSync('/dev/null', join(dir, 'port0'));
      await expect.poll(() => events.map((e) => `${e.type} ${e.port.path}`), { timeout: 5000 }).toEqual([`port-added ${join(dir, 'port0')}`]);
      await w.stop();
      await flush();
      // polled: a timer of the test runner's own (expect.poll's) may still be winding down
      await expect.poll(() => handles(), { timeout: 2000 }).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
