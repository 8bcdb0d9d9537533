/** Test doubles for discovery: a lister with scripted ports and a scheduler driven by hand. */
import { DeviceError } from '../../src/core/errors';
import type { PortCandidate, PortLister } from '../../src/device/discovery/port-candidate';
import type { Scheduler } from '../../src/device/discovery/port-discovery';

/** A PortLister whose ports the test sets; it can fail, and can signal a change like fs.watch. */
export class FakePortLister implements PortLister {
  ports: PortCandidate[];
  failWith: string | undefined;
  listCalls = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    ports: PortCandidate[] = [],
  ) {
    this.ports = ports;
  }

  async list(): Promise<PortCandidate[]> {
    this.listCalls++;
    await Promise.resolve();
    if (this.failWith) throw new DeviceError('PORT_LIST_FAILED', this.failWith);
    return this.ports.map((p) => ({ ...p }));
  }

  watch(onChange: () => void): { close(): void } {
    this.listeners.add(onChange);
    return { close: () => this.listeners.delete(onChange) };
  }

  get watching(): number {
    return this.listeners.size;
  }

  /** What fs.watch would do: tell discovery something changed. */
  changed(): void {
    for (const l of this.listeners) l();
  }
}

/** Timers that fire only when the test advances time; `pending` shows what is left. */
export class FakeScheduler implements Scheduler {
  private nowMs = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.nowMs + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Advance time, firing due timers in order and letting the promises they start settle. */
  async advance(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    for (;;) {
      await flush();
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.nowMs = due[1].at;
      due[1].fn();
    }
    this.nowMs = end;
    await flush();
  }
}

/** Let pending promise callbacks run (a few macrotask turns). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

export const serial = (path: string, extra: Partial<PortCandidate> = {}): PortCandidate => ({ kind: 'serial', path, realPath: path, source: 'udev', ...extra });
