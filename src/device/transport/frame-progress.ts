/**
 * How far the v1 frame arriving on a byte stream has got (docs/device-protocol.md): fed the
 * bytes as they arrive, it says how many more bytes finish the frame in progress. A hint for
 * the serial transport, which then waits for those bytes to cross the line instead of waking
 * for every chunk; never a decoder (no CRC, no frames out): a wrong count costs latency or a
 * wake-up, never bytes.
 */
import { FRAME_CRC_BYTES, FRAME_HEADER_BYTES, FRAME_MAGIC, MAX_PAYLOAD_BYTES } from '../framing/frame-codec';

const MAGIC0 = FRAME_MAGIC[0]!;
const MAGIC1 = FRAME_MAGIC[1]!;

export class FrameProgress {
  /** Bytes of the current frame (payload and CRC) still to come once its header was seen. */
  private bodyLeft = 0;
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  /** Header bytes collected so far (0: between frames, looking for the magic). */
  private headerHave = 0;

  constructor(private readonly maxPayloadBytes = MAX_PAYLOAD_BYTES) {}

  /**
   * Feed the bytes that arrived; returns how many more bytes at least finish the frame they
   * belong to: 0 between frames, the rest of the header and the CRC when only part of a
   * header came, the rest of the payload and the CRC once the header is known.
   */
  push(chunk: Uint8Array): number {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, n - i);
        this.bodyLeft -= take;
        i += take;
        continue;
      }
      if (this.headerHave === 0) {
        // between frames: skip to the next possible magic
        const at = chunk.indexOf(MAGIC0, i);
        if (at < 0) break;
        this.header[this.headerHave++] = MAGIC0;
        i = at + 1;
        continue;
      }
      const b = chunk[i++]!;
      if (this.headerHave === 1) {
        if (b === MAGIC1) this.header[this.headerHave++] = b;
        else this.headerHave = b === MAGIC0 ? 1 : 0;
      } else {
        this.header[this.headerHave++] = b;
        if (this.headerHave === FRAME_HEADER_BYTES) {
          this.headerHave = 0;
          const length = this.header.readUInt16BE(FRAME_HEADER_BYTES - 2);
          // an impossible length is not a header: look for the next magic
          if (length <= this.maxPayloadBytes) this.bodyLeft = length + FRAME_CRC_BYTES;
        }
      }
    }
    return this.remaining;
  }

  /** As push() returned last. */
  get remaining(): number {
    if (this.bodyLeft > 0) return this.bodyLeft;
    return this.headerHave > 0 ? FRAME_HEADER_BYTES - this.headerHave + FRAME_CRC_BYTES : 0;
  }

  /** Forget the frame in progress. */
  reset(): void {
    this.bodyLeft = 0;
    this.headerHave = 0;
  }
}
