/**
 * A Transport that passes everything through and counts, per port, the bytes of the first read
 * after each write: the part of a reply whose line time already lies inside the device wait
 * (DeviceConnection's stats.deviceWaitMs runs from the write to that first byte, and a paced
 * simulator releases a chunk only once its last byte would have crossed the line). The line
 * group subtracts the wire time of the other reply bytes only, so no byte is counted twice.
 */
import type { Transport, TransportCloseReason } from '../device/transport/transport';

export interface LinkMeter {
  /** Writes (each arms one "first read"). */
  writes: number;
  /** Bytes delivered by the first read after each write. */
  firstReadBytes: number;
  /** 'data' events (each a wake-up of the station's event loop). */
  reads: number;
}

export class MeteredTransport implements Transport {
  readonly meter: LinkMeter = { writes: 0, firstReadBytes: 0, reads: 0 };
  private awaitingFirstRead = false;
  private readonly listeners: Array<(chunk: Buffer) => void> = [];

  constructor(private readonly inner: Transport) {
    inner.onData((chunk) => {
      this.meter.reads++;
      if (this.awaitingFirstRead) {
        this.awaitingFirstRead = false;
        this.meter.firstReadBytes += chunk.length;
      }
      for (const l of this.listeners) l(chunk);
    });
  }

  get path(): string {
    return this.inner.path;
  }

  get maxPayloadBytes(): number | undefined {
    return this.inner.maxPayloadBytes;
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  write(bytes: Buffer): Promise<void> {
    this.meter.writes++;
    this.awaitingFirstRead = true;
    return this.inner.write(bytes);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.listeners.push(listener);
  }

  onClose(listener: (reason: TransportCloseReason, error?: Error) => void): void {
    this.inner.onClose(listener);
  }
}
