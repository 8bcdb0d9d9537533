/**
 * Transport over a serial port. The only file of the station that imports serialport.
 *
 * Two ways to move the bytes of the open port (docs/device-protocol.md, "Transports"):
 * - `direct` (Linux, macOS; the default): serialport's binding opens and configures the port
 *   (termios: baud rate, raw 8N1, no flow control, O_NONBLOCK; flock for an exclusive open) and
 *   PolledSerialIo reads and writes its descriptor when the binding's poller says so, waking the
 *   station about once per frame where the stream API wakes it several times per 64-byte chunk;
 * - `stream`: serialport's ordinary stream API (reads through the libuv thread pool). Used when
 *   the opened binding port has no descriptor and poller (the Windows binding), and when asked:
 *   option `io: 'stream'` or the environment variable STATION_SERIAL_IO=stream (`auto`, or
 *   unset, is the default).
 * Both keep the Transport contract: an exclusive open naming the path when it fails, onClose
 * once ('closed', 'disconnected' on unplug or hang-up, 'error'), writes that fail once the port
 * is closed, a close during the open that releases the port.
 */
import { SerialPort } from 'serialport';
import { DeviceError } from '../../core/errors';
import { PolledSerialIo, type PollablePort, type PolledIoStats } from './polled-serial-io';
import type { Transport, TransportCloseReason } from './transport';

/** How the bytes of the open port move. */
export type SerialIo = 'direct' | 'stream';
/** What is asked for: `auto` = direct where the binding allows it, else stream. */
export type SerialIoChoice = 'auto' | 'stream';

export const SERIAL_IO_ENV = 'STATION_SERIAL_IO';

export interface SerialTransportOptions {
  path: string;
  baudRate: number;
  /** Default: the environment variable STATION_SERIAL_IO, else `auto`. */
  io?: SerialIoChoice;
}

type State = 'idle' | 'opening' | 'open' | 'closing' | 'closed';

/** One open port's byte mover, as the transport drives it. */
interface PortIo {
  readonly kind: SerialIo;
  write(bytes: Buffer): Promise<void>;
  /** Fail pending writes, stop moving bytes, close the port (and so drop the lock); once. */
  release(): Promise<void>;
}

interface PortIoEvents {
  onData(chunk: Buffer): void;
  onLost(reason: 'disconnected' | 'error', error: Error): void;
  writeError(why: string, cause?: unknown): Error;
}

type OpenedPort = Awaited<ReturnType<typeof SerialPort.binding.open>>;

function isPollable(port: OpenedPort): port is OpenedPort & PollablePort {
  const p = port as Partial<PollablePort>;
  return typeof p.fd === 'number' && typeof p.poller?.poll === 'function' && typeof p.poller.poller?.stop === 'function';
}

/** The choice the environment makes, or why it is wrong. */
function ioFromEnvironment(): SerialIoChoice | Error {
  const v = process.env[SERIAL_IO_ENV];
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'stream') return 'stream';
  return new Error(`${SERIAL_IO_ENV} is "${v}"; it may be "auto" or "stream"`);
}

/** serialport's stream API over the port (the fallback path). */
class StreamPortIo implements PortIo {
  readonly kind = 'stream';
  private releasing: Promise<void> | undefined;
  /** Writes not yet settled: a close or an unplug fails them, so none is left hanging. */
  private readonly pending = new Set<(err: Error) => void>();

  private constructor(
    private readonly port: SerialPort,
    private readonly events: PortIoEvents,
  ) {
    port.on('data', (chunk: Buffer) => events.onData(chunk));
    port.on('close', (err?: Error & { disconnected?: boolean }) => {
      if (this.releasing) return;
      this.releasing = Promise.resolve();
      this.failWrites(`the port ${err?.disconnected ? 'went away' : 'closed'}`);
      events.onLost(err?.disconnected ? 'disconnected' : 'error', err ?? new Error('the port closed'));
    });
    port.on('error', (err: Error) => {
      if (this.releasing || !port.isOpen) return;
      this.lose(err);
    });
  }

  static open(path: string, baudRate: number, events: PortIoEvents): Promise<StreamPortIo> {
    const port = new SerialPort({ path, baudRate, autoOpen: false, lock: true });
    return new Promise((resolve, reject) => port.open((err) => (err ? reject(err) : resolve(new StreamPortIo(port, events)))));
  }

  write(bytes: Buffer): Promise<void> {
    if (this.releasing || !this.port.isOpen) {
      // serialport queues a write to a closed port until it opens again: it would never settle
      return Promise.reject(this.events.writeError('the port is closed'));
    }
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.pending.add(fail);
      this.port.write(bytes, (err) => {
        if (!this.pending.delete(fail)) return;
        if (err) reject(this.events.writeError(err.message, err));
        else resolve();
      });
    });
  }

  release(): Promise<void> {
    if (this.releasing) return this.releasing;
    this.failWrites('the port was closed');
    this.releasing = this.port.isOpen ? new Promise((resolve) => this.port.close(() => resolve())) : Promise.resolve();
    return this.releasing;
  }

  private failWrites(why: string): void {
    for (const fail of [...this.pending]) fail(this.events.writeError(why));
    this.pending.clear();
  }

  private lose(err: Error): void {
    void this.release();
    this.events.onLost('error', err);
  }
}

export class SerialTransport implements Transport {
  readonly path: string;
  private readonly baudRate: number;
  private readonly ioChoice: SerialIoChoice | Error;
  private readonly dataListeners: Array<(chunk: Buffer) => void> = [];
  private readonly closeListeners: Array<(reason: TransportCloseReason, error?: Error) => void> = [];
  private state: State = 'idle';
  private portIo: PortIo | undefined;
  private opening: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private closeEmitted = false;

  constructor(options: SerialTransportOptions) {
    this.path = options.path;
    this.baudRate = options.baudRate;
    this.ioChoice = options.io ?? ioFromEnvironment();
  }

  /** How the bytes move once the port is open (undefined before). */
  get io(): SerialIo | undefined {
    return this.portIo?.kind;
  }

  /** The direct path's wake-up and read counters (undefined on the stream path). */
  get ioStats(): Readonly<PolledIoStats> | undefined {
    return this.portIo instanceof PolledSerialIo ? this.portIo.stats : undefined;
  }

  open(): Promise<void> {
    if (this.state !== 'idle') {
      const why = this.state === 'opening' ? 'it is already opening' : this.state === 'open' ? 'it is already open' : 'the transport was closed';
      return Promise.reject(this.openError(why));
    }
    this.state = 'opening';
    this.opening = this.openPort();
    return this.opening;
  }

  write(bytes: Buffer): Promise<void> {
    if (this.state !== 'open' || !this.portIo) {
      // never queue a write for a port that is not open: it would never settle
      return Promise.reject(this.writeError(`the port is ${this.state === 'closing' || this.state === 'closed' ? 'closed' : 'not open'}`));
    }
    return this.portIo.write(bytes);
  }

  close(): Promise<void> {
    // a second close while the first is in progress shares it
    if (this.closePromise) return this.closePromise;
    switch (this.state) {
      case 'idle':
        this.state = 'closed';
        this.closePromise = Promise.resolve();
        break;
      case 'opening':
        // the open finishes, sees the close, releases the port and rejects
        this.state = 'closing';
        this.closePromise = (this.opening ?? Promise.resolve()).then(
          () => undefined,
          () => undefined,
        );
        break;
      case 'open':
        this.state = 'closing';
        this.closePromise = (this.portIo?.release() ?? Promise.resolve()).then(() => {
          this.state = 'closed';
          this.emitClose('closed');
        });
        break;
      case 'closing':
      case 'closed':
        // closed under us (unplug): the release is under way or done
        this.closePromise = this.portIo?.release() ?? Promise.resolve();
        break;
    }
    return this.closePromise;
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (reason: TransportCloseReason, error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  private async openPort(): Promise<void> {
    let io: PortIo;
    try {
      if (this.ioChoice instanceof Error) throw this.ioChoice;
      io = await this.openIo(this.ioChoice);
    } catch (err) {
      this.state = this.state === 'opening' ? 'idle' : 'closed';
      throw this.openError(err instanceof Error ? err.message : String(err), err);
    }
    this.portIo = io;
    if (this.state !== 'opening') {
      await io.release();
      this.state = 'closed';
      throw this.openError('the transport was closed while the port was opening');
    }
    this.state = 'open';
  }

  private async openIo(choice: SerialIoChoice): Promise<PortIo> {
    const events: PortIoEvents = {
      onData: (chunk) => {
        for (const l of this.dataListeners) l(chunk);
      },
      onLost: (reason, error) => this.lost(reason, error),
      writeError: (why, cause) => this.writeError(why, cause),
    };
    if (choice === 'stream' || process.platform === 'win32') return StreamPortIo.open(this.path, this.baudRate, events);
    const port = await SerialPort.binding.open({ path: this.path, baudRate: this.baudRate, lock: true });
    if (isPollable(port)) return new PolledSerialIo(port, { baudRate: this.baudRate, ...events });
    // a binding without a pollable descriptor: let serialport's stream move the bytes
    await port.close().catch(() => undefined);
    return StreamPortIo.open(this.path, this.baudRate, events);
  }

  /** The port went away under us (or failed): the io has released it; say so, once. */
  private lost(reason: 'disconnected' | 'error', error: Error): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    this.emitClose(reason, error);
  }

  private emitClose(reason: TransportCloseReason, error?: Error): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    for (const l of this.closeListeners) l(reason, error);
  }

  private openError(why: string, cause?: unknown): DeviceError {
    return new DeviceError('TRANSPORT_OPEN_FAILED', `Cannot open serial port ${this.path}: ${why}`, { stage: 'connect', details: { port: this.path }, cause });
  }

  private writeError(why: string, cause?: unknown): DeviceError {
    return new DeviceError('TRANSPORT_WRITE_FAILED', `Writing to ${this.path} failed: ${why}.`, { details: { port: this.path }, cause });
  }
}
