/**
 * RecordingTransport: wraps a real Transport (a SerialTransport to the simulator) and records
 * every frame both ways, in the order they crossed, for a transcript (test/helpers/transcript.ts).
 */
import { FrameDecoder, encodeFrame, type Frame } from '../../src/device/framing/frame-codec';
import type { Transport, TransportCloseReason } from '../../src/device/transport/transport';
import type { Direction } from './transcript';

export interface RecordedFrame {
  dir: Direction;
  frame: Frame;
  bytes: Buffer;
}

export class RecordingTransport implements Transport {
  readonly frames: RecordedFrame[] = [];
  private readonly written = new FrameDecoder();
  private readonly received = new FrameDecoder();

  constructor(private readonly inner: Transport) {
    // registered before the station's listener: a frame is recorded before the station reacts
    inner.onData((chunk) => {
      for (const frame of this.received.push(chunk)) this.frames.push({ dir: '<=', frame, bytes: encodeFrame(frame) });
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

  async write(bytes: Buffer): Promise<void> {
    for (const frame of this.written.push(bytes)) this.frames.push({ dir: '=>', frame, bytes: encodeFrame(frame) });
    await this.inner.write(bytes);
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

  /** Anything received or written that never formed a frame (must be 0 for a clean recording). */
  get strayBytes(): number {
    return this.written.stats.bytesDropped + this.received.stats.bytesDropped + this.written.pendingBytes + this.received.pendingBytes;
  }
}
