/** The simulated device's side of the serial link (the simulator's only serialport import). */
import { SerialPort } from 'serialport';
import { FrameDecoder, encodeFrame } from '../device/framing/frame-codec';
import type { VirtualDevice } from './virtual-device';

export class DevicePort {
  private readonly port: SerialPort;
  private readonly decoder = new FrameDecoder();

  constructor(
    readonly path: string,
    private readonly device: VirtualDevice,
    baudRate = 115200,
  ) {
    this.port = new SerialPort({ path, baudRate, autoOpen: false, lock: false });
    this.port.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) {
        const reply = this.device.handle(frame);
        if (reply) this.port.write(encodeFrame(reply));
      }
    });
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
