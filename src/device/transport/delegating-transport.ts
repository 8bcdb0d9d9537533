/**
 * A Transport that hands everything to another one. The wrappers that add one thing to a
 * transport (a check before open, metering, recording frames) extend it and override only that.
 */
import type { Transport, TransportCloseReason } from './transport';

export class DelegatingTransport implements Transport {
  constructor(protected readonly inner: Transport) {}

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
    return this.inner.write(bytes);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.inner.onData(listener);
  }

  onClose(listener: (reason: TransportCloseReason, error?: Error) => void): void {
    this.inner.onClose(listener);
  }
}
