import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as QRCode from 'qrcode';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { PngLabelRenderer } from '../../../src/label-printer/renderers/png-label-renderer';
import { LabelError } from '../../../src/core/errors';
import { DPP_URI, IN2X1_203, MM50X25_300, spec } from './fixtures';

function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(png.toString('latin1', 12, 16)).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** Decodes with zbarimg (Debian zbar-tools); a missing zbarimg fails the test, never skips it. */
function zbarDecode(file: string): string {
  const res = spawnSync('zbarimg', ['--raw', '-q', file], { encoding: 'utf8' });
  if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('zbarimg is not installed: install the Debian package zbar-tools to run the PNG decode test');
  }
  if (res.error) throw res.error;
  expect(res.status, `zbarimg found no QR code in ${file}: ${res.stderr}`).toBe(0);
  return res.stdout.replace(/\n$/, '');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'label-png-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('PngLabelRenderer', () => {
  const renderer = new PngLabelRenderer();

  it('is a png renderer', () => {
    expect(renderer.format).toBe('png');
    expect(renderer.mediaType).toBe('image/png');
  });

  it('has the label size in pixels: 50x25 mm @300 dpi and 2x1 in @203 dpi', async () => {
    expect(pngSize(await renderer.render(spec({ template: MM50X25_300 })))).toEqual({ width: 591, height: 295 });
    expect(pngSize(await renderer.render(spec({ template: IN2X1_203 })))).toEqual({ width: 406, height: 203 });
  });

  it('decodes with zbarimg to exactly the DPP URI', async () => {
    for (const [name, template] of [
      ['300dpi', MM50X25_300],
      ['203dpi', IN2X1_203],
    ] as const) {
      const file = join(dir, `label-${name}.png`);
      writeFileSync(file, await renderer.render(spec({ template })));
      expect(zbarDecode(file)).toBe(DPP_URI);
    }
  });

  it('keeps the QR quiet zone white even with a very long serial and no MAC', async () => {
    const png = await renderer.render(spec({ serial: `DEMO-${'W'.repeat(59)}`, mac: undefined }));
    const { width, height } = pngSize(png);
    const modules = QRCode.create(DPP_URI, { errorCorrectionLevel: 'M' }).modules.size;
    const unit = Math.floor(Math.min(height, Math.floor(width / 2)) / (modules + 8));
    const box = (modules + 8) * unit;

    const canvas = createCanvas(width, height);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(await loadImage(png), 0, 0);
    const quiet = ctx.getImageData(box - 4 * unit, 0, 4 * unit, height).data;
    for (let i = 0; i < quiet.length; i += 4) {
      expect([quiet[i], quiet[i + 1], quiet[i + 2]]).toEqual([255, 255, 255]);
    }
    const text = ctx.getImageData(box, 0, width - box, height).data;
    expect(text.some((v, i) => i % 4 === 0 && v < 128)).toBe(true);

    const file = join(dir, 'long-serial.png');
    writeFileSync(file, png);
    expect(zbarDecode(file)).toBe(DPP_URI);
  });

  it('fails with LABEL_FONT_MISSING naming fonts-dejavu-core when the fonts are absent', async () => {
    const empty = mkdtempSync(join(dir, 'no-fonts-'));
    const err: unknown = await new PngLabelRenderer({ fontDir: empty }).render(spec()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabelError);
    expect((err as LabelError).code).toBe('LABEL_FONT_MISSING');
    expect((err as LabelError).message).toContain('fonts-dejavu-core');
  });
});
