import { inflateSync } from 'node:zlib';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import type { Box, LabelLayout } from '../../../src/label-printer/renderers/label-geometry';

/** A black-and-white raster: dark(x, y). */
export interface Pixels {
  width: number;
  height: number;
  dark(x: number, y: number): boolean;
}

export interface BilevelPng extends Pixels {
  bitDepth: number;
  colorType: number;
  /** From pHYs (pixels per metre), or undefined without one. */
  dpi: number | undefined;
  chunks: string[];
}

/**
 * Decodes the renderer's PNGs independently of its encoder: 1-bit grayscale, not interlaced,
 * every row with filter type 0 (anything else fails).
 */
export function decodeBilevelPng(png: Buffer): BilevelPng {
  if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG');
  const chunks: string[] = [];
  const idat: Buffer[] = [];
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colorType = -1;
  let interlace = -1;
  let dpi: number | undefined;
  for (let off = 8; off < png.length; ) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    chunks.push(type);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      bitDepth = data[8]!;
      colorType = data[9]!;
      interlace = data[12]!;
    } else if (type === 'pHYs' && data[8] === 1) {
      dpi = Math.round(data.readUInt32BE(0) * 0.0254);
    } else if (type === 'IDAT') {
      idat.push(data);
    }
    off += 12 + len;
  }
  if (bitDepth !== 1 || colorType !== 0 || interlace !== 0) throw new Error(`not a 1-bit grayscale PNG (depth ${bitDepth}, colour type ${colorType})`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = ((width + 7) >> 3) + 1;
  if (raw.length !== stride * height) throw new Error(`IDAT holds ${raw.length} bytes, expected ${stride * height}`);
  for (let y = 0; y < height; y++) if (raw[y * stride] !== 0) throw new Error(`row ${y} has filter type ${raw[y * stride]}`);
  return {
    width,
    height,
    bitDepth,
    colorType,
    dpi,
    chunks,
    dark: (x, y) => ((raw[y * stride + 1 + (x >> 3)]! >> (7 - (x & 7))) & 1) === 0,
  };
}

/** Rasterises an image file (PNG or SVG) with @napi-rs/canvas at `width` x `height`. */
export async function rasterise(file: Buffer, width: number, height: number): Promise<{ pixels: Pixels; png: Buffer }> {
  const img = await loadImage(file);
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(img, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  return {
    pixels: { width, height, dark: (x, y) => data[(y * width + x) * 4]! < 128 },
    png: await canvas.encode('png'),
  };
}

/** Dark pixels inside `box` (clipped to the image). */
export function darkIn(p: Pixels, box: Box): number {
  let n = 0;
  for (let y = Math.max(0, box.y); y < Math.min(p.height, box.y + box.height); y++) {
    for (let x = Math.max(0, box.x); x < Math.min(p.width, box.x + box.width); x++) if (p.dark(x, y)) n++;
  }
  return n;
}

/**
 * Dark pixels outside the QR's modules, the bars and the text line boxes: anything here is an
 * overlap or a spill into a quiet zone or margin.
 */
export function strayPixels(p: Pixels, layout: LabelLayout): number {
  const { qr, barcode, lines } = layout;
  const qrEnd = { x: qr.x + qr.modules * qr.unit, y: qr.y + qr.modules * qr.unit };
  let stray = 0;
  for (let y = 0; y < p.height; y++) {
    for (let x = 0; x < p.width; x++) {
      if (!p.dark(x, y)) continue;
      if (x >= qr.x && x < qrEnd.x && y >= qr.y && y < qrEnd.y) continue;
      if (barcode && x >= barcode.x && x < barcode.x + barcode.width && y >= barcode.y && y < barcode.y + barcode.height) continue;
      if (lines.some((l) => x >= l.box.x && x < l.box.x + l.box.width && y >= l.box.y && y < l.box.y + l.box.height)) continue;
      stray++;
    }
  }
  return stray;
}
