import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_OVERHEAD_BYTES, FrameDecoder, encodeFrame, type Frame } from '../../../src/device/framing/frame-codec';
import { frameArbitrary } from '../../helpers/frame-arbitrary';

const frameArb = frameArbitrary(600);

/** Split bytes at arbitrary boundaries, as a serial port delivers them. */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe('FrameCodec', () => {
  it('round-trips any frames over any chunking, with no leftover bytes', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
        const decoder = new FrameDecoder();
        const got: Frame[] = [];
        for (const c of chunk(stream, cuts)) got.push(...decoder.push(c));
        expect(got).toEqual(frames);
        expect(decoder.pendingBytes).toBe(0);
        expect(decoder.stats.bytesDropped).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps nothing of the caller\'s chunk: a caller may reuse its buffer after each push', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
        const decoder = new FrameDecoder();
        const scratch = Buffer.alloc(stream.length);
        const got: Frame[] = [];
        for (const c of chunk(stream, cuts)) {
          c.copy(scratch);
          got.push(...decoder.push(scratch.subarray(0, c.length)));
          scratch.fill(0xa5); // as a transport's read buffer, overwritten by its next read
        }
        expect(got).toEqual(frames);
        expect(decoder.pendingBytes).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('resynchronises after garbage and after a corrupted frame', () => {
    const a = encodeFrame({ version: 1, flags: 0, seq: 1, command: 2, status: 0, payload: Buffer.from('hello') });
    const b = encodeFrame({ version: 1, flags: 0, seq: 2, command: 2, status: 0, payload: Buffer.from('world') });
    const bad = Buffer.from(a);
    bad[12] ^= 0xff; // a payload byte: the CRC no longer matches
    const decoder = new FrameDecoder();
    const frames = decoder.push(Buffer.concat([Buffer.from([1, 2, 0xa5, 3]), bad, Buffer.from([0xa5]), b]));
    expect(frames.map((f) => f.payload.toString())).toEqual(['world']);
    expect(decoder.stats.crcErrors).toBe(1);
    expect(decoder.stats.bytesDropped).toBeGreaterThan(0);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('has a fixed 14-byte overhead and a known encoding', () => {
    const f = encodeFrame({ version: 1, flags: 0, seq: 0x1234, command: 0x02, status: 0, payload: Buffer.alloc(0) });
    expect(f.length).toBe(FRAME_OVERHEAD_BYTES);
    expect(f.subarray(0, 10).toString('hex')).toBe('a55a0100123402000000');
  });

  it('refuses payloads over the frame limit and skips oversized headers', () => {
    expect(() => encodeFrame({ version: 1, flags: 0, seq: 1, command: 1, status: 0, payload: Buffer.alloc(100) }, 50)).toThrow(/exceeds/);
    const decoder = new FrameDecoder(16);
    const big = encodeFrame({ version: 1, flags: 0, seq: 1, command: 1, status: 0, payload: Buffer.alloc(32) });
    expect(decoder.push(big)).toEqual([]);
    expect(decoder.stats.oversized).toBeGreaterThan(0);
  });

  it('reset drops a truncated frame so that later frames are not held up', () => {
    const a = encodeFrame({ version: 1, flags: 0, seq: 1, command: 2, status: 0, payload: Buffer.from('complete') });
    const decoder = new FrameDecoder();
    expect(decoder.push(a.subarray(0, 12))).toEqual([]);
    decoder.reset();
    expect(decoder.pendingBytes).toBe(0);
    expect(decoder.push(a).map((f) => f.payload.toString())).toEqual(['complete']);
  });
});
