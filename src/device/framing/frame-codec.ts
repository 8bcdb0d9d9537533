/**
 * Protocol v1 frames over a byte stream (docs/device-protocol.md). Pure: no timers, no I/O.
 *
 *   0      2        3      4      6     7       8        10          10+len
 *   | A5 5A | version | flags | seq | cmd | status | length | payload | crc32 |
 *
 * All integers big-endian. The CRC-32 (IEEE 802.3, as zlib) covers version..payload.
 * A decoder resynchronises on the magic after garbage or a bad CRC, and counts what it dropped.
 */
import { crc32 } from 'node:zlib';

export const FRAME_MAGIC = Buffer.from([0xa5, 0x5a]);
const MAGIC0 = FRAME_MAGIC[0]!;
const MAGIC1 = FRAME_MAGIC[1]!;
export const FRAME_HEADER_BYTES = 10;
export const FRAME_CRC_BYTES = 4;
export const FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + FRAME_CRC_BYTES;
/** The largest payload v1 allows in one frame; a device may advertise less. */
export const MAX_PAYLOAD_BYTES = 8192;

/** Set on every frame the device sends (responses and fragment acknowledgements). */
export const FLAG_RESPONSE = 0x01;
/** More fragments of this message follow (docs/device-protocol.md, fragmentation). */
export const FLAG_MORE = 0x02;
/** An empty frame acknowledging a fragment; the sender then sends the next one. */
export const FLAG_ACK = 0x04;

export interface Frame {
  version: number;
  flags: number;
  seq: number;
  command: number;
  status: number;
  payload: Buffer;
}

export class FrameEncodeError extends Error {}

export function encodeFrame(frame: Frame, maxPayloadBytes = MAX_PAYLOAD_BYTES): Buffer {
  if (frame.payload.length > maxPayloadBytes) {
    throw new FrameEncodeError(`payload of ${frame.payload.length} bytes exceeds the ${maxPayloadBytes}-byte frame limit`);
  }
  // every byte is written below, so no zero fill
  const out = Buffer.allocUnsafe(FRAME_OVERHEAD_BYTES + frame.payload.length);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = frame.version;
  out[3] = frame.flags;
  out.writeUInt16BE(frame.seq & 0xffff, 4);
  out[6] = frame.command;
  out[7] = frame.status;
  out.writeUInt16BE(frame.payload.length, 8);
  frame.payload.copy(out, FRAME_HEADER_BYTES);
  const crcAt = FRAME_HEADER_BYTES + frame.payload.length;
  out.writeUInt32BE(crc32(out.subarray(2, crcAt)) >>> 0, crcAt);
  return out;
}

export interface DecoderStats {
  framesDecoded: number;
  bytesDropped: number;
  crcErrors: number;
  oversized: number;
}

const EMPTY = Buffer.alloc(0);

export class FrameDecoder {
  /** Bytes not yet decoded; between pushes always this decoder's own (never the caller's chunk). */
  private buffer: Buffer = EMPTY;
  readonly stats: DecoderStats = { framesDecoded: 0, bytesDropped: 0, crcErrors: 0, oversized: 0 };

  constructor(private readonly maxPayloadBytes = MAX_PAYLOAD_BYTES) {}

  /**
   * Feed bytes; returns every complete, valid frame they finish. The chunk stays the caller's:
   * frame payloads and the bytes kept for a later push are copies. (When nothing is held, the
   * chunk is parsed where it is, without first copying it whole: most chunks on a link are
   * one or more whole frames.)
   */
  push(chunk: Uint8Array): Frame[] {
    const borrowed = this.buffer.length === 0;
    this.buffer = borrowed ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.buffer, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const start = this.findMagic();
      if (start < 0) {
        // keep a trailing 0xA5 that may begin the next magic
        const keep = this.buffer.length > 0 && this.buffer[this.buffer.length - 1] === 0xa5 ? 1 : 0;
        this.stats.bytesDropped += this.buffer.length - keep;
        this.buffer = keep === 0 ? EMPTY : Buffer.from([0xa5]);
        return frames;
      }
      if (start > 0) {
        this.stats.bytesDropped += start;
        this.buffer = this.buffer.subarray(start);
      }
      const length = this.buffer.length < FRAME_HEADER_BYTES ? -1 : this.buffer.readUInt16BE(8);
      if (length > this.maxPayloadBytes) {
        this.stats.oversized++;
        this.skipOne();
        continue;
      }
      const total = FRAME_OVERHEAD_BYTES + length;
      if (length < 0 || this.buffer.length < total) {
        // a frame still to finish: hold its bytes, as a copy when they are the caller's
        if (borrowed) this.buffer = Buffer.from(this.buffer);
        return frames;
      }
      const crcAt = FRAME_HEADER_BYTES + length;
      const expected = this.buffer.readUInt32BE(crcAt);
      if ((crc32(this.buffer.subarray(2, crcAt)) >>> 0) !== expected) {
        this.stats.crcErrors++;
        this.skipOne();
        continue;
      }
      frames.push({
        version: this.buffer[2]!,
        flags: this.buffer[3]!,
        seq: this.buffer.readUInt16BE(4),
        command: this.buffer[6]!,
        status: this.buffer[7]!,
        payload: Buffer.from(this.buffer.subarray(FRAME_HEADER_BYTES, crcAt)),
      });
      this.stats.framesDecoded++;
      this.buffer = this.buffer.subarray(total);
      if (this.buffer.length === 0) {
        this.buffer = EMPTY;
        return frames;
      }
    }
  }

  /** Drop buffered bytes (after a timeout: a truncated frame must not hold up later replies). */
  reset(): void {
    this.stats.bytesDropped += this.buffer.length;
    this.buffer = EMPTY;
  }

  /** Bytes held that do not yet form a frame. */
  get pendingBytes(): number {
    return this.buffer.length;
  }

  private findMagic(): number {
    // the usual case, a frame right at the start, without Buffer#indexOf's argument handling
    if (this.buffer.length >= 2 && this.buffer[0] === MAGIC0 && this.buffer[1] === MAGIC1) return 0;
    return this.buffer.indexOf(FRAME_MAGIC);
  }

  private skipOne(): void {
    this.stats.bytesDropped++;
    this.buffer = this.buffer.subarray(1);
  }
}
