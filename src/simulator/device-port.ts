/** The simulated device's side of the serial link (the simulator's only serialport import). */
import { SerialPort } from 'serialport';
import { DeviceLink, type Firmware } from './device-link';

export class DevicePort {
  private readonly port: SerialPort;
  private readonly link: DeviceLink;

  constructor(
    readonly path: string,
    firmware: Firmware,
    baudRate = 115200,
  ) {
    this.port = new SerialPort({ path, baudRate, autoOpen: false, lock: false });
    this.link = new DeviceLink(firmware, (bytes) => this.port.write(bytes));
    this.port.on('data', (chunk: Buffer) => this.link.push(chunk));
    this.port.on('error', () => undefined);
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => this.port.open((err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    if (!this.port.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.port.close(() => resolve()));
  }
}
