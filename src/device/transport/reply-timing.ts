/**
 * When the reply to a v1 request has wholly arrived, learnt per request shape: a hint for the
 * serial transport, which then sleeps until then instead of waking for the reply's first chunk
 * and again for its rest. Requests of one shape (same version, flags, command, status and
 * length, and the same payload when it is short, e.g. READ_ITEM of one item) get replies of one
 * size after about the same device latency on a line of identical devices. Only replies that
 * took more than one read are learnt (a one-chunk reply costs one wake-up either way). A wrong
 * hint costs a wake-up or latency, never bytes: the transport reads whatever is there when it
 * wakes and falls back to its poller. The hint is the earliest end seen, after two sightings
 * (a reply the far end sent late must not make every later one wait); every RELEARN_EVERY-th
 * request of a shape is watched again, and a hint that woke too early is forgotten.
 */
import { FRAME_HEADER_BYTES, FRAME_MAGIC } from '../framing/frame-codec';

/** Payloads up to this size are part of the shape (item ids, key locations). */
const SHAPE_PAYLOAD_BYTES = 8;
/** Shapes remembered at most (a station sends a dozen). */
const MAX_SHAPES = 64;
/** Sightings of a shape's reply before it is foretold. */
const SIGHTINGS = 2;
/** One request of a shape in this many is watched rather than foretold. */
const RELEARN_EVERY = 8;

interface Learnt {
  /** The earliest end seen, ms after the request was written. */
  endMs: number;
  sightings: number;
  uses: number;
}

export class ReplyTiming {
  private readonly shapes = new Map<string, Learnt>();

  /** The shape of `bytes` when it is one whole v1 frame, else undefined. */
  shapeOf(bytes: Buffer): string | undefined {
    if (bytes.length < FRAME_HEADER_BYTES || bytes[0] !== FRAME_MAGIC[0] || bytes[1] !== FRAME_MAGIC[1]) return undefined;
    const length = bytes.readUInt16BE(FRAME_HEADER_BYTES - 2);
    if (bytes.length !== FRAME_HEADER_BYTES + length + 4) return undefined;
    // version, flags | command, status, length (the seq, bytes 4-5, differs every time)
    const head = bytes.toString('hex', 2, 4) + bytes.toString('hex', 6, FRAME_HEADER_BYTES);
    return length <= SHAPE_PAYLOAD_BYTES ? head + bytes.toString('hex', FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length) : head;
  }

  /** When the reply to a request of this shape should have wholly arrived (ms after it was written). */
  expect(shape: string): number | undefined {
    const l = this.shapes.get(shape);
    if (!l || l.sightings < SIGHTINGS) return undefined;
    l.uses++;
    return l.uses % RELEARN_EVERY === 0 ? undefined : l.endMs;
  }

  /** A reply to this shape took more than one read and ended `ms` after the request was written. */
  learn(shape: string, ms: number): void {
    const l = this.shapes.get(shape);
    if (l) {
      l.endMs = Math.min(l.endMs, ms);
      l.sightings++;
      return;
    }
    if (this.shapes.size >= MAX_SHAPES) this.shapes.clear();
    this.shapes.set(shape, { endMs: ms, sightings: 1, uses: 0 });
  }

  /** The hint for this shape woke too early: learn it again. */
  forget(shape: string): void {
    this.shapes.delete(shape);
  }
}
