/**
 * How the simulated device moves bytes on its end of the PTY pair.
 *
 * On Linux and macOS the simulator reads and writes the port's non-blocking descriptor itself,
 * woken by serialport's poller: one wake-up and one read(2) per chunk the station sends, and a
 * paced chunk goes to the OS on the timer that releases it. serialport's stream API takes a
 * thread-pool read, its completion, an EAGAIN and a poll per chunk, and a thread-pool write and
 * its completion per paced chunk. On this project's 2-core benchmark machine each of those
 * wake-ups costs 100-200 us of CPU, and the simulator's CPU is taken from the station it is
 * measuring (docs/benchmarks.md). serialport's stream is the fallback where the binding has no
 * pollable descriptor (Windows).
 *
 * The station's own transport has the same fast path (src/device/transport/polled-serial-io.ts)
 * with the station's frame and reply timing on top; the layering keeps the simulator out of
 * device/transport, and a device needs none of that timing, so this is the plain loop.
 */
import { readSync, writeSync } from 'node:fs';
import { SerialPort } from 'serialport';

export interface DevicePortIo {
  readonly isOpen: boolean;
  /** Hand bytes to the port in order (queued behind earlier ones while its output buffer is full). */
  write(bytes: Buffer): void;
  close(): Promise<void>;
}

/** libuv poll flags, as serialport's poller takes them. */
const UV_READABLE = 0b0001;
const UV_WRITABLE = 0b0010;
const RETRY_CODES = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);
const READ_BUFFER_BYTES = 64 * 1024;

interface PollableBinding {
  readonly fd: number | null;
  readonly isOpen: boolean;
  readonly poller: { on(event: 'readable' | 'writable' | 'disconnect', listener: (err: Error | null) => void): unknown; poll(flags: number): void };
  close(): Promise<void>;
}

type OpenedBinding = Awaited<ReturnType<typeof SerialPort.binding.open>>;

function isPollable(port: OpenedBinding): port is OpenedBinding & PollableBinding {
  const p = port as Partial<PollableBinding>;
  return typeof p.fd === 'number' && typeof p.poller?.poll === 'function';
}

/** Open `path` for the simulated device; `onData` gets each chunk read, in order. */
export async function openDevicePortIo(path: string, baudRate: number, onData: (chunk: Buffer) => void): Promise<DevicePortIo> {
  if (process.platform !== 'win32') {
    const port = await SerialPort.binding.open({ path, baudRate, lock: false });
    if (isPollable(port)) return new DescriptorPortIo(port, onData);
    await port.close().catch(() => undefined);
  }
  return StreamPortIo.open(path, baudRate, onData);
}

/** read(2)/write(2) on the descriptor, woken by the binding's poller. */
class DescriptorPortIo implements DevicePortIo {
  private readonly fd: number;
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private readonly pending: Buffer[] = [];
  private active = true;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly port: PollableBinding,
    private readonly onData: (chunk: Buffer) => void,
  ) {
    this.fd = port.fd!;
    port.poller.on('readable', (err) => this.onEvent(err, UV_READABLE));
    port.poller.on('writable', (err) => this.onEvent(err, UV_WRITABLE));
    port.poller.on('disconnect', () => this.stop());
    this.rearm();
  }

  get isOpen(): boolean {
    return this.active;
  }

  write(bytes: Buffer): void {
    if (!this.active) return;
    this.pending.push(bytes);
    if (this.pending.length === 1) {
      this.flush();
      if (this.pending.length > 0) this.rearm();
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop();
      if (this.port.isOpen) await this.port.close().catch(() => undefined);
    })();
    return this.closing;
  }

  /** The station's end went away or the port failed: the device hears nothing more. */
  private stop(): void {
    this.active = false;
    this.pending.length = 0;
  }

  private rearm(): void {
    // the native poller drops the flag that fired: ask again for what is wanted now
    if (this.active) this.port.poller.poll(UV_READABLE | (this.pending.length > 0 ? UV_WRITABLE : 0));
  }

  private onEvent(err: Error | null, flag: number): void {
    if (!this.active) return;
    if (err) return this.stop();
    if (flag === UV_READABLE) this.readAvailable();
    else this.flush();
    this.rearm();
  }

  private readAvailable(): void {
    let n: number;
    do {
      try {
        n = readSync(this.fd, this.readBuffer, 0, READ_BUFFER_BYTES, null);
      } catch (err) {
        if (!RETRY_CODES.has((err as NodeJS.ErrnoException).code ?? '')) this.stop();
        return;
      }
      if (n === 0) return this.stop(); // hung up
      this.onData(Buffer.from(this.readBuffer.subarray(0, n)));
    } while (n === READ_BUFFER_BYTES && this.active);
  }

  private flush(): void {
    while (this.pending.length > 0 && this.active) {
      const head = this.pending[0]!;
      let written: number;
      try {
        written = writeSync(this.fd, head, 0, head.length);
      } catch (err) {
        if (!RETRY_CODES.has((err as NodeJS.ErrnoException).code ?? '')) this.stop();
        return; // full: the poller says when there is room
      }
      if (written < head.length) this.pending[0] = head.subarray(written);
      else this.pending.shift();
    }
  }
}

/** serialport's stream API (no pollable descriptor). */
class StreamPortIo implements DevicePortIo {
  private constructor(private readonly port: SerialPort) {}

  static async open(path: string, baudRate: number, onData: (chunk: Buffer) => void): Promise<StreamPortIo> {
    const port = new SerialPort({ path, baudRate, autoOpen: false, lock: false });
    port.on('data', onData);
    port.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new StreamPortIo(port);
  }

  get isOpen(): boolean {
    return this.port.isOpen;
  }

  write(bytes: Buffer): void {
    if (this.port.isOpen) this.port.write(bytes);
  }

  close(): Promise<void> {
    if (!this.port.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.port.close(() => resolve()));
  }
}
