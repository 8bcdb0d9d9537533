import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_CRC_BYTES, FRAME_HEADER_BYTES, FRAME_OVERHEAD_BYTES, encodeFrame } from '../../../src/device/framing/frame-codec';
import { FrameProgress } from '../../../src/device/transport/frame-progress';
import { frameArbitrary } from '../../helpers/frame-arbitrary';

const frameArb = frameArbitrary(1200);

/** What is missing of the frame under way after `at` bytes of back-to-back frames of these sizes. */
function trueRemaining(sizes: number[], at: number): number {
  let start = 0;
  for (const size of sizes) {
    if (at < start + size) {
      const into = at - start;
      if (into === 0) return 0;
      return into < FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES - into + FRAME_CRC_BYTES : size - into;
    }
    start += size;
  }
  return 0;
}

describe('FrameProgress', () => {
  it('says how many bytes finish the frame under way, over any chunking', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
        const encoded = frames.map((f) => encodeFrame(f));
        const stream = Buffer.concat(encoded);
        const sizes = encoded.map((b) => b.length);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const progress = new FrameProgress();
        let prev = 0;
        for (const p of [...points, stream.length]) {
          expect(progress.push(stream.subarray(prev, p))).toBe(trueRemaining(sizes, p));
          expect(progress.remaining).toBe(trueRemaining(sizes, p));
          prev = p;
        }
        expect(progress.remaining).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('byte by byte: the rest of the header and the CRC, then the rest of the frame', () => {
    const frame = encodeFrame({ version: 1, flags: 0, seq: 7, command: 3, status: 0, payload: Buffer.alloc(100, 0xa5) });
    const progress = new FrameProgress();
    const seen: number[] = [];
    for (const b of frame) seen.push(progress.push(Buffer.from([b])));
    expect(seen.slice(0, FRAME_HEADER_BYTES)).toEqual([13, 12, 11, 10, 9, 8, 7, 6, 5, 104]);
    expect(seen.at(-2)).toBe(1);
    expect(seen.at(-1)).toBe(0);
    expect(frame.length).toBe(100 + FRAME_OVERHEAD_BYTES);
  });

  it('skips bytes before the magic, a repeated first magic byte and an impossible length', () => {
    const frame = encodeFrame({ version: 1, flags: 0, seq: 1, command: 1, status: 0, payload: Buffer.alloc(20) });
    const progress = new FrameProgress(1024);
    expect(progress.push(Buffer.from([0x00, 0x11, 0x5a]))).toBe(0);
    expect(progress.push(Buffer.from([0xa5]))).toBe(13);
    // A5 A5 5A: the second A5 starts the magic
    expect(progress.push(frame.subarray(0, 2))).toBe(12);
    expect(progress.push(frame.subarray(2))).toBe(0);
    // a header announcing more than the link's frames may carry is not a header
    const bogus = Buffer.from([0xa5, 0x5a, 1, 0, 0, 1, 1, 0, 0x20, 0x00]);
    expect(progress.push(bogus)).toBe(0);
    expect(progress.push(frame.subarray(0, 12))).toBe(frame.length - 12);
    progress.reset();
    expect(progress.remaining).toBe(0);
  });
});
