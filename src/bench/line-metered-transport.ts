/**
 * A Transport that passes everything through and counts, per port, the bytes of the first read
 * after each write: the part of a reply whose line time already lies inside the device wait
 * (DeviceConnection's stats.deviceWaitMs runs from the write to that first byte, and a paced
 * simulator releases a chunk only once its last byte would have crossed the line). The line
 * group subtracts the wire time of the other reply bytes only, so no byte is counted twice.
 */
import { DelegatingTransport } from '../device/transport/delegating-transport';
import type { Transport } from '../device/transport/transport';

export interface LinkMeter {
  /** Writes (each arms one "first read"). */
  writes: number;
  /** Bytes delivered by the first read after each write. */
  firstReadBytes: number;
  /** 'data' events (each a wake-up of the station's event loop). */
  reads: number;
}

export class MeteredTransport extends DelegatingTransport {
  readonly meter: LinkMeter = { writes: 0, firstReadBytes: 0, reads: 0 };
  private awaitingFirstRead = false;

  constructor(inner: Transport) {
    super(inner);
    // registered before the station's listener: the meter sees each read first
    inner.onData((chunk) => {
      this.meter.reads++;
      if (this.awaitingFirstRead) {
        this.awaitingFirstRead = false;
        this.meter.firstReadBytes += chunk.length;
      }
    });
  }

  override write(bytes: Buffer): Promise<void> {
    this.meter.writes++;
    this.awaitingFirstRead = true;
    return this.inner.write(bytes);
  }
}
