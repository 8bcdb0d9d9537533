import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { loadImage, createCanvas } from '@napi-rs/canvas';
import { BilevelImage, crc32 } from '../../../src/label-printer/renderers/bilevel-png';
import { decodeBilevelPng } from './pixels';

describe('BilevelImage', () => {
  it('crc32 is the PNG/zlib CRC', () => {
    expect(crc32(Buffer.from('IEND'))).toBe(0xae426082);
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('fillRect sets exactly the pixels of the (clipped) rectangle', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.tuple(fc.integer({ min: -5, max: 45 }), fc.integer({ min: -3, max: 14 }), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 8 })), {
          maxLength: 6,
        }),
        (width, height, rects) => {
          const img = new BilevelImage(width, height);
          const expected = new Set<string>();
          for (const [x, y, w, h] of rects) {
            img.fillRect(x, y, w, h);
            for (let yy = Math.max(0, y); yy < Math.min(height, y + h); yy++) for (let xx = Math.max(0, x); xx < Math.min(width, x + w); xx++) expected.add(`${xx},${yy}`);
          }
          const png = decodeBilevelPng(img.encodePng(300));
          for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) expect(png.dark(x, y), `${x},${y}`).toBe(expected.has(`${x},${y}`));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('thresholds RGBA blocks at mid-grey', () => {
    const img = new BilevelImage(10, 2);
    const rgba = new Uint8Array(3 * 1 * 4);
    rgba.set([0, 0, 0, 255, 127, 127, 127, 255, 128, 128, 128, 255]);
    img.blitRgba(rgba, 8, 1, 3, 1); // the third pixel falls off the right edge
    const png = decodeBilevelPng(img.encodePng(203));
    expect([png.dark(8, 1), png.dark(9, 1), png.dark(8, 0)]).toEqual([true, true, false]);
    expect(png.dpi).toBe(203);
  });

  it('writes a PNG that other decoders read (Skia) with black and white where drawn', async () => {
    const img = new BilevelImage(13, 5);
    img.fillRect(2, 1, 9, 3);
    const decoded = await loadImage(img.encodePng(300));
    const canvas = createCanvas(13, 5);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(decoded, 0, 0);
    const data = ctx.getImageData(0, 0, 13, 5).data;
    expect([...data.subarray(0, 4)]).toEqual([255, 255, 255, 255]);
    const inside = (2 * 13 + 5) * 4;
    expect([...data.subarray(inside, inside + 4)]).toEqual([0, 0, 0, 255]);
  });
});
