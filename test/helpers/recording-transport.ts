/**
 * RecordingTransport: wraps a real Transport (a SerialTransport to the simulator) and records
 * every frame both ways, in the order they crossed, for a transcript (test/helpers/transcript.ts).
 */
import { FrameDecoder, encodeFrame, type Frame } from '../../src/device/framing/frame-codec';
import { DelegatingTransport } from '../../src/device/transport/delegating-transport';
import type { Transport } from '../../src/device/transport/transport';
import type { Direction } from './transcript';

export interface RecordedFrame {
  dir: Direction;
  frame: Frame;
  bytes: Buffer;
}

export class RecordingTransport extends DelegatingTransport {
  readonly frames: RecordedFrame[] = [];
  private readonly written = new FrameDecoder();
  private readonly received = new FrameDecoder();

  constructor(inner: Transport) {
    super(inner);
    // registered before the station's listener: a frame is recorded before the station reacts
    inner.onData((chunk) => {
      for (const frame of this.received.push(chunk)) this.frames.push({ dir: '<=', frame, bytes: encodeFrame(frame) });
    });
  }

  override async write(bytes: Buffer): Promise<void> {
    for (const frame of this.written.push(bytes)) this.frames.push({ dir: '=>', frame, bytes: encodeFrame(frame) });
    await this.inner.write(bytes);
  }

  /** Anything received or written that never formed a frame (must be 0 for a clean recording). */
  get strayBytes(): number {
    return this.written.stats.bytesDropped + this.received.stats.bytesDropped + this.written.pendingBytes + this.received.pendingBytes;
  }
}
