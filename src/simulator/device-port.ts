/** The simulated device's side of the serial link (the simulator's only serialport import). */
import { SerialPort } from 'serialport';
import { DeviceLink, type Firmware } from './device-link';
import type { LinkFault } from './faults';
import { DEFAULT_BAUD, PacedWriter, type SimTiming } from './link-timing';

export interface DevicePortOptions {
  /** Pace the output at timing.baud and apply the device latency floors; undefined = PTY speed. */
  timing?: SimTiming;
  /** Link faults to play on this port. */
  faults?: readonly LinkFault[];
  /**
   * The device went away (a `disconnect` fault). Its port is closed by then; closing our end of
   * a PTY is not seen by the station, so the owner must end the PTY pair (socat) too.
   */
  onDisconnect?: () => void;
}

export class DevicePort {
  private readonly port: SerialPort;
  private readonly link: DeviceLink;
  private readonly writer: PacedWriter | undefined;

  constructor(
    readonly path: string,
    firmware: Firmware,
    private readonly options: DevicePortOptions = {},
  ) {
    this.port = new SerialPort({ path, baudRate: options.timing?.baud ?? DEFAULT_BAUD, autoOpen: false, lock: false });
    const write = (bytes: Buffer) => {
      if (this.port.isOpen) this.port.write(bytes);
    };
    this.writer = options.timing ? new PacedWriter(write, options.timing) : undefined;
    this.link = new DeviceLink(firmware, (bytes) => (this.writer ? this.writer.send(bytes) : write(bytes)), {
      faults: options.faults,
      timing: options.timing,
      onDisconnect: () => void this.goAway(),
    });
    this.port.on('data', (chunk: Buffer) => this.link.push(chunk));
    this.port.on('error', () => undefined);
  }

  /** The device went away (disconnect fault). */
  get disconnected(): boolean {
    return this.link.disconnected;
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => this.port.open((err) => (err ? reject(err) : resolve())));
  }

  private async goAway(): Promise<void> {
    await this.close();
    this.options.onDisconnect?.();
  }

  close(): Promise<void> {
    this.writer?.cancel();
    this.link.close();
    if (!this.port.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.port.close(() => resolve()));
  }
}
