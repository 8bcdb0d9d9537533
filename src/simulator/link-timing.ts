/**
 * Timing as on real parts (contracts.md §4). A PTY moves bytes at memory speed whatever baud
 * rate is set, so when pacing is on the simulator writes its output in chunks of at most 64
 * bytes, each released when its last byte would have crossed the serial line (10 bits per
 * byte: start, 8 data, stop), and the device takes at least as long as a real part for the
 * slow operations: SE key generation, flash writes, boot.
 */
import { Command } from '../device/protocol/commands';

export interface SimTiming {
  /** Line speed the device's output is paced at, bits per second. */
  baud: number;
  /** Largest chunk written at once. */
  chunkBytes: number;
  /** GENERATE_KEY takes at least this long. */
  seKeygenMs: number;
  /** INSTALL_CHAIN and WRITE_ITEM take at least this long per KiB of the request. */
  flashMsPerKb: number;
  /** The first HELLO after a device is presented takes at least this long. */
  bootMs: number;
}

export const DEFAULT_BAUD = 115200;

/** The values contracts.md §4 prescribes, at `baud`. */
export function pacedTiming(baud = DEFAULT_BAUD): SimTiming {
  return { baud, chunkBytes: 64, seKeygenMs: 100, flashMsPerKb: 2, bootMs: 50 };
}

/** Time `bytes` take on a serial line at `baud` (10 bits per byte), in ms. */
export function wireMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}

export function describeTiming(t: SimTiming | undefined): string {
  if (!t) return 'pacing off (bytes move at PTY speed, no device latency)';
  return `${t.baud} baud, chunks of at most ${t.chunkBytes} bytes spaced by bytes x 10 / baud; SE key generation ${t.seKeygenMs} ms, flash writes ${t.flashMsPerKb} ms per KiB, boot ${t.bootMs} ms`;
}

/**
 * The least time the device takes to handle one whole request (before its reply leaves):
 * `requestBytes` is the reassembled message, `boot` whether this HELLO presents a new device.
 */
export function latencyFloorMs(timing: SimTiming, command: number, requestBytes: number, boot: boolean): number {
  switch (command) {
    case Command.HELLO:
      return boot ? timing.bootMs : 0;
    case Command.GENERATE_KEY:
      return timing.seKeygenMs;
    case Command.INSTALL_CHAIN:
    case Command.WRITE_ITEM:
      return (timing.flashMsPerKb * requestBytes) / 1024;
    default:
      return 0;
  }
}

/**
 * Writes bytes as a UART at `baud` would deliver them: in chunks of at most `chunkBytes`, each
 * when its last byte has crossed the line. Order is kept; consecutive sends queue behind each
 * other. Timers may fire late; every chunk that is due is then written at once, so the mean
 * rate stays the line's.
 */
export class PacedWriter {
  private readonly queue: Array<{ at: number; bytes: Buffer }> = [];
  private lineFreeAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (bytes: Buffer) => void,
    private readonly timing: Pick<SimTiming, 'baud' | 'chunkBytes'>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  send(bytes: Buffer): void {
    const size = Math.max(1, this.timing.chunkBytes);
    for (let off = 0; off < bytes.length; off += size) {
      const chunk = bytes.subarray(off, Math.min(off + size, bytes.length));
      const start = Math.max(this.now(), this.lineFreeAt);
      this.lineFreeAt = start + wireMs(chunk.length, this.timing.baud);
      this.queue.push({ at: this.lineFreeAt, bytes: chunk });
    }
    this.arm();
  }

  /** Bytes accepted but not yet written. */
  get queuedBytes(): number {
    return this.queue.reduce((n, c) => n + c.bytes.length, 0);
  }

  /** Drop everything not yet written (the device went away). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private arm(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, Math.ceil(this.queue[0]!.at - this.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    // libuv's clock has whole milliseconds: a timer may fire a fraction of a ms early
    const now = this.now() + 0.25;
    while (this.queue.length > 0 && this.queue[0]!.at <= now) this.write(this.queue.shift()!.bytes);
    this.arm();
  }
}
