/**
 * Port discovery: merges what its listers see (udev serial ports, watched path globs, HID
 * devices), removes duplicates (a /dev/serial/by-id link and the tty udev lists are one port),
 * applies the configured USB filters, and turns changes into `port-added` / `port-removed`
 * events (docs/discovery.md).
 *
 * Hot-plug: `watch` lists every `pollIntervalMs` (default 500 ms) and, sooner, `debounceMs`
 * (default 50 ms) after a lister reports a change (fs.watch on watched folders). Listings never
 * overlap; a trigger during one runs one more afterwards. A lister that fails keeps its last good
 * listing (a transient udevadm failure does not unplug every port) and its error is reported once.
 */
import type { UsbFilter } from '../../core/config';
import { systemClock, type Clock } from '../../core/clock';
import { asStationError, type StationError } from '../../core/errors';
import { candidateKey, matchesUsbFilters, type PortCandidate, type PortLister } from './port-candidate';

/** Timers, injectable so tests can drive time. */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface PortDiscoveryOptions {
  listers: readonly PortLister[];
  usbFilters?: readonly UsbFilter[];
  pollIntervalMs?: number;
  debounceMs?: number;
  scheduler?: Scheduler;
  clock?: Clock;
}

export interface ListerError {
  lister: string;
  error: StationError;
}

export interface DiscoveryScan {
  candidates: PortCandidate[];
  /** Listers that failed this time (their last good listing, if any, was used). */
  errors: ListerError[];
}

export type PortEvent =
  | { type: 'port-added'; port: PortCandidate; at: Date; /** present when watching started */ initial: boolean }
  | { type: 'port-removed'; port: PortCandidate; at: Date; initial: false };

export interface WatchOptions {
  /** Called when a lister starts failing (once per distinct error) and with null when it recovers. */
  onError?: (lister: string, error: StationError | null) => void;
  /** Emit `port-added` for the ports present at the start (default true). */
  emitInitial?: boolean;
}

export interface PortWatch {
  /** Resolves after the first listing (and its events). */
  readonly ready: Promise<void>;
  /** Stops timers and folder watches and waits for a listing in progress; no event after it resolves. */
  stop(): Promise<void>;
}

/**
 * One candidate per port. Serial candidates with the same device node are merged: the path of a
 * watched link wins (the stable name), USB ids come from udev. HID candidates are keyed by path.
 * The result is filtered and sorted (serial first, then by path).
 */
export function mergeCandidates(lists: readonly (readonly PortCandidate[])[], usbFilters: readonly UsbFilter[] = []): PortCandidate[] {
  const byKey = new Map<string, PortCandidate>();
  for (const list of lists) {
    for (const c of list) {
      const key = c.kind === 'serial' ? `serial\u0000${c.realPath ?? c.path}` : `hid\u0000${c.path}`;
      const seen = byKey.get(key);
      if (!seen) {
        byKey.set(key, { ...c });
        continue;
      }
      if (c.kind === 'hid') continue;
      const watched = seen.source === 'watch' ? seen : c.source === 'watch' ? c : undefined;
      const udev = seen.source === 'udev' ? seen : c.source === 'udev' ? c : undefined;
      byKey.set(key, {
        kind: 'serial',
        path: (watched ?? seen).path,
        realPath: seen.realPath ?? c.realPath,
        vendorId: udev?.vendorId ?? seen.vendorId ?? c.vendorId,
        productId: udev?.productId ?? seen.productId ?? c.productId,
        serialNumber: udev?.serialNumber ?? seen.serialNumber ?? c.serialNumber,
        manufacturer: udev?.manufacturer ?? seen.manufacturer ?? c.manufacturer,
        source: udev ? 'udev' : seen.source,
      });
    }
  }
  return [...byKey.values()]
    .map(dropUndefined)
    .filter((c) => matchesUsbFilters(c, usbFilters))
    .sort((a, b) => (a.kind === b.kind ? (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) : a.kind === 'serial' ? -1 : 1));
}

function dropUndefined(c: PortCandidate): PortCandidate {
  const out = { ...c } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as unknown as PortCandidate;
}

export class PortDiscovery {
  private readonly listers: readonly PortLister[];
  private readonly usbFilters: readonly UsbFilter[];
  private readonly lastGood = new Map<PortLister, PortCandidate[]>();
  private readonly watches = new Set<PortWatch>();
  readonly pollIntervalMs: number;
  readonly debounceMs: number;
  private readonly scheduler: Scheduler;
  private readonly clock: Clock;

  constructor(options: PortDiscoveryOptions) {
    this.listers = options.listers;
    this.usbFilters = options.usbFilters ?? [];
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.debounceMs = options.debounceMs ?? 50;
    this.scheduler = options.scheduler ?? systemScheduler;
    this.clock = options.clock ?? systemClock;
  }

  /** Every lister once; a failing lister contributes its last good listing and an error. */
  async scan(): Promise<DiscoveryScan> {
    const errors: ListerError[] = [];
    const lists = await Promise.all(
      this.listers.map(async (lister) => {
        try {
          const list = await lister.list();
          this.lastGood.set(lister, list);
          return list;
        } catch (err) {
          errors.push({ lister: lister.name, error: asStationError(err, 'PORT_LIST_FAILED') });
          return this.lastGood.get(lister) ?? [];
        }
      }),
    );
    return { candidates: mergeCandidates(lists, this.usbFilters), errors };
  }

  async list(): Promise<PortCandidate[]> {
    return (await this.scan()).candidates;
  }

  watch(onEvent: (event: PortEvent) => void, options: WatchOptions = {}): PortWatch {
    const w = new DiscoveryWatch(this, onEvent, options, this.scheduler, this.clock, this.listers);
    const handle: PortWatch = {
      ready: w.ready,
      stop: async () => {
        this.watches.delete(handle);
        await w.stop();
      },
    };
    this.watches.add(handle);
    return handle;
  }

  /** Stops every watch. */
  async stop(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.stop()));
  }
}

class DiscoveryWatch {
  readonly ready: Promise<void>;
  private readonly known = new Map<string, PortCandidate>();
  private readonly listerWatches: { close(): void }[] = [];
  private readonly reportedErrors = new Map<string, string>();
  private pollTimer: unknown;
  private debounceTimer: unknown;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private first = true;

  constructor(
    private readonly discovery: PortDiscovery,
    private readonly onEvent: (event: PortEvent) => void,
    private readonly options: WatchOptions,
    private readonly scheduler: Scheduler,
    private readonly clock: Clock,
    listers: readonly PortLister[],
  ) {
    for (const l of listers) if (l.watch) this.listerWatches.push(l.watch(() => this.trigger()));
    this.ready = this.refresh();
  }

  /** A lister saw a change: list again after the debounce delay (several triggers, one listing). */
  private trigger(): void {
    if (this.stopped || this.debounceTimer !== undefined) return;
    this.debounceTimer = this.scheduler.setTimeout(() => {
      this.debounceTimer = undefined;
      void this.refresh();
    }, this.discovery.debounceMs);
  }

  private refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.pollTimer !== undefined) {
      this.scheduler.clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.listOnce();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
      if (!this.stopped) this.pollTimer = this.scheduler.setTimeout(() => {
        this.pollTimer = undefined;
        void this.refresh();
      }, this.discovery.pollIntervalMs);
    });
    return this.running;
  }

  private async listOnce(): Promise<void> {
    let scan: DiscoveryScan;
    try {
      scan = await this.discovery.scan();
    } catch (err) {
      scan = { candidates: [...this.known.values()], errors: [{ lister: 'discovery', error: asStationError(err, 'PORT_LIST_FAILED') }] };
    }
    if (this.stopped) return;
    this.reportErrors(scan);
    const at = this.clock.now();
    const initial = this.first;
    this.first = false;
    const now = new Map(scan.candidates.map((c) => [candidateKey(c), c]));
    const events: PortEvent[] = [];
    for (const [key, port] of this.known) {
      if (!now.has(key)) events.push({ type: 'port-removed', port, at, initial: false });
    }
    for (const [key, port] of now) {
      if (!this.known.has(key) && (!initial || this.options.emitInitial !== false)) events.push({ type: 'port-added', port, at, initial });
    }
    this.known.clear();
    for (const [key, port] of now) this.known.set(key, port);
    for (const e of events) {
      if (this.stopped) return;
      try {
        this.onEvent(e);
      } catch {
        // a listener's fault must not stop discovery
      }
    }
  }

  private reportErrors(scan: DiscoveryScan): void {
    const failing = new Set<string>();
    for (const { lister, error } of scan.errors) {
      failing.add(lister);
      const text = `${error.code}: ${error.message}`;
      if (this.reportedErrors.get(lister) === text) continue;
      this.reportedErrors.set(lister, text);
      this.options.onError?.(lister, error);
    }
    for (const lister of [...this.reportedErrors.keys()]) {
      if (failing.has(lister)) continue;
      this.reportedErrors.delete(lister);
      this.options.onError?.(lister, null);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const h of [this.pollTimer, this.debounceTimer]) if (h !== undefined) this.scheduler.clearTimeout(h);
    this.pollTimer = this.debounceTimer = undefined;
    for (const w of this.listerWatches.splice(0)) w.close();
    await this.running?.catch(() => undefined);
  }
}
