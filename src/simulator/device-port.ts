/** The simulated device's side of the serial link. */
import { DeviceLink, type Firmware } from './device-link';
import { openDevicePortIo, type DevicePortIo } from './device-port-io';
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
  private io: DevicePortIo | undefined;
  private closed = false;
  private readonly link: DeviceLink;
  private readonly writer: PacedWriter | undefined;

  constructor(
    readonly path: string,
    firmware: Firmware,
    private readonly options: DevicePortOptions = {},
  ) {
    const write = (bytes: Buffer) => {
      if (this.io?.isOpen) this.io.write(bytes);
    };
    this.writer = options.timing ? new PacedWriter(write, options.timing) : undefined;
    this.link = new DeviceLink(firmware, (bytes) => (this.writer ? this.writer.send(bytes) : write(bytes)), {
      faults: options.faults,
      timing: options.timing,
      onDisconnect: () => void this.goAway(),
    });
  }

  /** The device went away (disconnect fault). */
  get disconnected(): boolean {
    return this.link.disconnected;
  }

  async open(): Promise<void> {
    const io = await openDevicePortIo(this.path, this.options.timing?.baud ?? DEFAULT_BAUD, (chunk) => this.link.push(chunk));
    if (this.closed) {
      await io.close();
      return;
    }
    this.io = io;
  }

  private async goAway(): Promise<void> {
    await this.close();
    this.options.onDisconnect?.();
  }

  close(): Promise<void> {
    this.closed = true;
    this.writer?.cancel();
    this.link.close();
    return this.io ? this.io.close() : Promise.resolve();
  }
}
