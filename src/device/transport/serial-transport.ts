/** Transport over a serial port (serialport). The only file of the station that imports serialport. */
import { SerialPort } from 'serialport';
import { DeviceError } from '../../core/errors';
import type { Transport, TransportCloseReason } from './transport';

export interface SerialTransportOptions {
  path: string;
  baudRate: number;
}

export class SerialTransport implements Transport {
  readonly path: string;
  private readonly port: SerialPort;
  private readonly dataListeners: Array<(chunk: Buffer) => void> = [];
  private readonly closeListeners: Array<(reason: TransportCloseReason, error?: Error) => void> = [];
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private closed = false;

  constructor(options: SerialTransportOptions) {
    this.path = options.path;
    this.port = new SerialPort({ path: options.path, baudRate: options.baudRate, autoOpen: false, lock: true });
    this.port.on('data', (chunk: Buffer) => {
      for (const l of this.dataListeners) l(chunk);
    });
    this.port.on('close', (err?: Error & { disconnected?: boolean }) => {
      this.emitClose(this.closing ? 'closed' : err?.disconnected ? 'disconnected' : 'error', err ?? undefined);
    });
    this.port.on('error', (err: Error) => {
      if (!this.port.isOpen) return;
      this.emitClose('error', err);
    });
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.port.open((err) => {
        if (err) {
          reject(new DeviceError('TRANSPORT_OPEN_FAILED', `Cannot open serial port ${this.path}: ${err.message}`, { stage: 'connect', details: { port: this.path } }));
        } else {
          resolve();
        }
      });
    });
  }

  write(bytes: Buffer): Promise<void> {
    if (this.closed || this.closing || !this.port.isOpen) {
      // serialport queues a write to a closed port until it opens again: it would never settle
      return Promise.reject(
        new DeviceError('TRANSPORT_WRITE_FAILED', `Writing to ${this.path} failed: the port is ${this.closed || this.closing ? 'closed' : 'not open'}.`, {
          details: { port: this.path },
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.port.write(bytes, (err) => {
        if (err) {
          reject(new DeviceError('TRANSPORT_WRITE_FAILED', `Writing to ${this.path} failed: ${err.message}`, { details: { port: this.path } }));
          return;
        }
        resolve();
      });
    });
  }

  close(): Promise<void> {
    // a second close while the first is in progress shares it (the port already reads as not
    // open then; marking it closed here would swallow the 'close' event and so onClose)
    if (this.closePromise) return this.closePromise;
    if (this.closed || !this.port.isOpen) {
      this.closed = true;
      return Promise.resolve();
    }
    this.closing = true;
    this.closePromise = new Promise((resolve) => this.port.close(() => resolve()));
    return this.closePromise;
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (reason: TransportCloseReason, error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  private emitClose(reason: TransportCloseReason, error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners) l(reason, error);
  }
}
