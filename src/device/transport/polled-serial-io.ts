/**
 * Moves the bytes of an open serial port with read(2)/write(2) on its non-blocking descriptor,
 * woken by a poller on that descriptor (serialport's Linux and macOS bindings give both). The
 * serial transport's fast path; SerialTransport opens the port and owns the state.
 *
 * What a wake-up of the station costs is most of the link's CPU (on the reference machine a
 * bare Node timer wake-up costs 70-100 us, a poller wake-up that reads one chunk about 170 us),
 * so this wakes as little as it can:
 * - one wake-up per chunk received where serialport's stream took three or four (a thread-pool
 *   read, its EAGAIN, the poll, another thread-pool read);
 * - writes go to the OS at once (no thread pool, no completion wake-up); only a full output
 *   buffer makes a write wait for the poller;
 * - once the header of a v1 frame has come, the rest of the frame cannot cross the line faster
 *   than 10 bits per byte at the baud rate: it sleeps that long on one timer, with the poller
 *   watching for a hang-up only, then reads the lot (FrameProgress). A link that delivers faster
 *   than its baud rate (USB CDC-ACM, a PTY) shows it on a timed wait (more bytes than the line
 *   could carry) and is then read chunk by chunk, so that it is not held to the nominal rate;
 * - on a link at the line rate, after writing a request whose reply time it has learnt
 *   (ReplyTiming), it sleeps until the reply should be in and reads it on one wake-up.
 * Data is handed on in order and whole; only the moment of delivery inside a frame changes.
 *
 * Unplug: a USB-serial adapter pulled out fails read/write with EIO/ENXIO, not always with a
 * poll event (pitfalls.md 17); a PTY whose far end closed is hung up: the poller reports a
 * hang-up or POLLERR, read(2) returns 0 and write(2) fails with EIO. Each ends as `lost`.
 */
import { readSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { FrameProgress } from './frame-progress';
import { ReplyTiming } from './reply-timing';

/** libuv poll flags, as serialport's poller takes them. */
const UV_READABLE = 0b0001;
const UV_WRITABLE = 0b0010;
const UV_DISCONNECT = 0b0100;

/** Errors of read(2)/write(2) that mean "again when the poller says so". */
const RETRY_CODES = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);
/** Errors of read(2)/write(2) that mean the device went away (unplugged adapter, hung-up tty). */
const GONE_CODES = new Set(['EIO', 'ENXIO', 'ENODEV', 'EBADF', 'EPIPE']);

/** The largest read(2) per wake-up (n_tty hands over at most 4 KiB at a time). */
const READ_BUFFER_BYTES = 64 * 1024;
/** Bits per byte on the line: 8N1 (serialport's defaults, which the transport keeps). */
const BITS_PER_BYTE = 10;
/** Slack on the time the rest of a frame takes to cross the line (the far end's timers and relays are late). */
const FRAME_WAIT_MARGIN_MS = 1;
/**
 * The longest sleep without reading the port. A hang-up is seen by the poller meanwhile; an
 * adapter that vanishes without one is seen by the next read, so this bounds how late that is.
 */
const MAX_FRAME_WAIT_MS = 1000;
/** While the link's pace is unknown, a frame wait looks after at most this long. */
const PACE_PROBE_MS = 4;
/**
 * A link is fast when a read brings more than twice what the line carries in the time since the
 * last read plus this much (a relay or a timer late), plus a USB packet.
 */
const PACE_JITTER_MS = 10;
const PACE_SLACK_BYTES = 64;

/** What this needs of serialport's poller (bindings-cpp `Poller`): events, and the native handle. */
export interface DescriptorPoller {
  on(event: 'readable' | 'writable' | 'disconnect', listener: (err: Error | null) => void): unknown;
  /** Watch for these flags (the native poller re-arms, after an event, every flag it was ever given but the ones that fired). */
  poll(flags: number): void;
  /** The native poller: its stop() stops watching without the 'Canceled' events of Poller.stop(). */
  poller: { stop(): void };
}

/** An open serial port whose descriptor can be polled: serialport's LinuxPortBinding / DarwinPortBinding. */
export interface PollablePort {
  readonly fd: number | null;
  readonly poller: DescriptorPoller;
  readonly isOpen: boolean;
  close(): Promise<void>;
}

/** How the far end's bytes arrive: at the line rate (a UART), or faster (CDC-ACM, a PTY). */
export type LinkPace = 'unknown' | 'line' | 'fast';

/** Counters for the link benchmark and tests: what woke this port, and what it read. */
export interface PolledIoStats {
  /** Poller events handled (readable, writable, hang-up). */
  pollWakeups: number;
  /** Frame-wait and reply-wait timers that fired. */
  timerWakeups: number;
  /** Replies read whole on the wake-up ReplyTiming foretold. */
  foretoldReplies: number;
  /** read(2) calls that returned bytes. */
  reads: number;
  /** The far end's pace as learnt so far. */
  pace: LinkPace;
}

export interface PolledSerialIoOptions {
  baudRate: number;
  onData(chunk: Buffer): void;
  /** The port went away ('disconnected') or failed ('error') under us; called once, after which the io is released. */
  onLost(reason: 'disconnected' | 'error', error: Error): void;
  /** The error a failed or refused write rejects with. */
  writeError(why: string, cause?: unknown): Error;
}

interface PendingWrite {
  bytes: Buffer;
  offset: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class PolledSerialIo {
  readonly kind = 'direct';
  readonly stats: PolledIoStats = { pollWakeups: 0, timerWakeups: 0, foretoldReplies: 0, reads: 0, pace: 'unknown' };
  private readonly fd: number;
  private readonly msPerByte: number;
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private readonly writes: PendingWrite[] = [];
  /** The head of `writes` waits for room in the output buffer. */
  private writeBlocked = false;
  /** What the native poller watches now, as far as this can tell. */
  private armed = 0;
  /** Every flag ever given to the native poller (it re-arms from these after an event). */
  private everArmed = 0;
  private readonly progress = new FrameProgress();
  private readonly replies = new ReplyTiming();
  /** The request last written whose reply has not been read yet. */
  private awaiting: { shape: string; writtenAt: number; foretold: boolean } | undefined;
  /** Waiting on a timer for the rest of a frame or for a reply (the poller watches for a hang-up only then). */
  private frameTimer: NodeJS.Timeout | undefined;
  /** When the port was last read empty. */
  private drainedAt = 0;
  private active = true;
  private releasing: Promise<void> | undefined;

  constructor(
    private readonly port: PollablePort,
    private readonly options: PolledSerialIoOptions,
  ) {
    if (port.fd === null) throw new Error('the port is not open');
    this.fd = port.fd;
    this.msPerByte = (BITS_PER_BYTE * 1000) / options.baudRate;
    port.poller.on('readable', (err) => this.onPollEvent(err, UV_READABLE));
    port.poller.on('writable', (err) => this.onPollEvent(err, UV_WRITABLE));
    port.poller.on('disconnect', (err) => this.onPollEvent(err, UV_DISCONNECT));
    this.rearm();
  }

  /** Queue bytes for the port; resolves once the OS has them all. */
  write(bytes: Buffer): Promise<void> {
    if (!this.active) return Promise.reject(this.options.writeError('the port is closed'));
    const shape = this.replies.shapeOf(bytes);
    return new Promise<void>((resolve, reject) => {
      this.writes.push({ bytes, offset: 0, resolve, reject });
      if (this.writes.length === 1) {
        this.flushWrites();
        // the write found the port gone (EIO/ENXIO): released, nothing to wait for
        if (!this.active) return;
        this.awaiting = shape === undefined ? undefined : { shape, writtenAt: performance.now(), foretold: false };
        if (!this.writeBlocked) this.sleepUntilReply();
        this.rearm();
      }
    });
  }

  /** Fail queued writes with `why`, stop polling and timers, close the descriptor (and so the lock); once. */
  release(why = 'the port was closed'): Promise<void> {
    if (this.releasing) return this.releasing;
    this.active = false;
    this.failWrites(why);
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
    this.releasing = this.port.isOpen ? this.port.close().catch(() => undefined) : Promise.resolve();
    return this.releasing;
  }

  /**
   * Arm the poller for what is wanted now: readable unless a frame timer runs (then a hang-up
   * only), writable while a write waits for room.
   */
  private rearm(): void {
    if (!this.active) return;
    const want = (this.frameTimer ? UV_DISCONNECT : UV_READABLE) | (this.writeBlocked ? UV_WRITABLE : 0);
    if (want === this.armed) return;
    this.port.poller.poll(want);
    this.armed = want;
    this.everArmed |= want;
  }

  private onPollEvent(err: Error | null, flag: number): void {
    if (!this.active) return; // 'Canceled' while closing, or a late event
    this.stats.pollWakeups++;
    if (err) {
      // POLLERR: a hung-up tty, a vanished device (libuv has stopped the poll)
      this.lose('disconnected', err);
      return;
    }
    // the native poller has re-armed every flag it was ever given but this one
    this.armed = this.everArmed & ~flag;
    if (flag === UV_DISCONNECT) {
      this.lose('disconnected', new Error('the port was hung up'));
      return;
    }
    if (flag === UV_READABLE) {
      if (!this.frameTimer) this.afterRead(this.readAvailable());
    } else {
      this.flushWrites();
    }
    this.rearm();
  }

  private readonly onFrameTimer = (): void => {
    this.frameTimer = undefined;
    if (!this.active) return;
    this.stats.timerWakeups++;
    const since = this.drainedAt;
    const got = this.readAvailable();
    if (this.stats.pace !== 'fast') {
      // more than the line could have carried since the port was last read empty: a fast link
      const lineBytes = (2 * (this.drainedAt - since + PACE_JITTER_MS)) / this.msPerByte + PACE_SLACK_BYTES;
      if (got > lineBytes) this.stats.pace = 'fast';
      else if (this.progress.remaining > 0) this.stats.pace = 'line';
    }
    this.afterRead(got);
    this.rearm();
  };

  /**
   * Just after a request went out whole: when the link runs at the line rate and replies to
   * requests of its shape have been learnt, sleep until the reply should be in, then read it
   * on one wake-up instead of waking for its first chunk and again for its rest.
   */
  private sleepUntilReply(): void {
    const a = this.awaiting;
    if (!a || this.frameTimer || this.stats.pace !== 'line' || this.progress.remaining > 0) return;
    const ms = this.replies.expect(a.shape);
    if (ms === undefined) return;
    a.foretold = true;
    this.frameTimer = setTimeout(this.onFrameTimer, Math.min(MAX_FRAME_WAIT_MS, Math.ceil(ms + FRAME_WAIT_MARGIN_MS)));
  }

  /** After the first read since a request: check the foretold wake-up, or learn from this one. */
  private noteReply(got: number): void {
    const a = this.awaiting;
    if (!a) return;
    if (got === 0) {
      // a foretold wake-up that found nothing: wait on the poller, and learn from that wake-up
      if (a.foretold) this.replies.forget(a.shape);
      a.foretold = false;
      return;
    }
    this.awaiting = undefined;
    const left = this.progress.remaining;
    if (a.foretold) {
      if (left > 0) this.replies.forget(a.shape);
      else this.stats.foretoldReplies++;
    } else if (left > 0 && this.stats.pace === 'line') {
      this.replies.learn(a.shape, performance.now() - a.writtenAt + left * this.msPerByte);
    }
  }

  /**
   * After a read of `got` bytes: when a frame is under way and the link is not known to be
   * fast, sleep until its rest has crossed the line (while the pace is unknown, look after
   * PACE_PROBE_MS first); otherwise wait on the poller. A wait that brought nothing goes back
   * to the poller: a stalled far end costs no more wake-ups.
   */
  private afterRead(got: number): void {
    this.noteReply(got);
    if (!this.active || got === 0 || this.stats.pace === 'fast') return;
    const left = this.progress.remaining;
    if (left === 0) return;
    let ms = left * this.msPerByte + FRAME_WAIT_MARGIN_MS;
    if (this.stats.pace === 'unknown') ms = Math.min(ms, PACE_PROBE_MS);
    this.frameTimer = setTimeout(this.onFrameTimer, Math.min(MAX_FRAME_WAIT_MS, Math.ceil(ms)));
  }

  /** Read what the port holds and hand it on; returns the number of bytes read. */
  private readAvailable(): number {
    const buffer = this.readBuffer;
    let total = 0;
    let n: number;
    do {
      try {
        n = readSync(this.fd, buffer, 0, buffer.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (RETRY_CODES.has(code)) this.drainedAt = performance.now();
        else this.lose(GONE_CODES.has(code) ? 'disconnected' : 'error', err as Error);
        return total;
      }
      if (n === 0) {
        // end of file: the tty was hung up (the far end of a PTY closed)
        this.lose('disconnected', new Error('the port was hung up'));
        return total;
      }
      this.stats.reads++;
      total += n;
      if (n < buffer.length) this.drainedAt = performance.now();
      const chunk = Buffer.allocUnsafe(n);
      buffer.copy(chunk, 0, 0, n);
      if (this.stats.pace !== 'fast') this.progress.push(chunk);
      this.options.onData(chunk);
      // a listener may have closed the port
    } while (n === buffer.length && this.active);
    return total;
  }

  /** Hand queued writes to the OS in order; on a full output buffer, wait until writable. */
  private flushWrites(): void {
    this.writeBlocked = false;
    while (this.writes.length > 0 && this.active) {
      const w = this.writes[0]!;
      try {
        while (w.offset < w.bytes.length) w.offset += writeSync(this.fd, w.bytes, w.offset, w.bytes.length - w.offset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (RETRY_CODES.has(code)) {
          this.writeBlocked = true;
          return;
        }
        this.writes.shift();
        w.reject(this.options.writeError((err as Error).message, err));
        // an unplugged adapter may show only as a failed write (pitfalls.md 17)
        this.lose(GONE_CODES.has(code) ? 'disconnected' : 'error', err as Error);
        return;
      }
      this.writes.shift();
      w.resolve();
    }
  }

  /** The port went away under us (or failed): release it and say so, once. */
  private lose(reason: 'disconnected' | 'error', error: Error): void {
    if (!this.active) return;
    void this.release(`the port ${reason === 'disconnected' ? 'went away' : 'failed'} (${error.message})`);
    this.options.onLost(reason, error);
  }

  private failWrites(why: string): void {
    this.writeBlocked = false;
    for (const w of this.writes.splice(0)) w.reject(this.options.writeError(why));
  }
}
