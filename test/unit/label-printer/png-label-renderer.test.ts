import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PngLabelRenderer } from '../../../src/label-printer/renderers/png-label-renderer';
import { layoutDrawnLabel } from '../../../src/label-printer/renderers/label-geometry';
import { LabelError } from '../../../src/core/errors';
import type { LabelSpec } from '../../../src/core/ports/label-renderer';
import { requireTool, zbarDecode, zbarDecodeCode128 } from '../../helpers/tools';
import { DPP_URI, IN2X1_203, MM50X25_300, spec } from './fixtures';
import { darkIn, decodeBilevelPng, strayPixels } from './pixels';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'label-png-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, data: Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, data);
  return file;
}

function zbarFinds(file: string, symbology: string): boolean {
  requireTool('zbarimg', 'zbar-tools');
  const r = spawnSync('zbarimg', ['--raw', '-q', '-Sdisable', `-S${symbology}.enable`, file]);
  return r.status === 0;
}

describe('PngLabelRenderer', () => {
  const renderer = new PngLabelRenderer();

  it('is a png renderer', () => {
    expect(renderer.format).toBe('png');
    expect(renderer.mediaType).toBe('image/png');
  });

  it('writes a 1-bit grayscale PNG of the label size in dots, with the dpi in pHYs', async () => {
    for (const [template, width, height] of [
      [MM50X25_300, 591, 295],
      [IN2X1_203, 406, 203],
    ] as const) {
      const png = decodeBilevelPng(await renderer.render(spec({ template })));
      expect({ width: png.width, height: png.height, dpi: png.dpi }).toEqual({ width, height, dpi: template.dpi });
      expect(png.chunks).toEqual(['IHDR', 'pHYs', 'IDAT', 'IEND']);
    }
  });

  it('decodes with zbarimg: the QR to exactly the DPP URI, the Code 128 to exactly the serial', async () => {
    for (const [name, template] of [
      ['300dpi', MM50X25_300],
      ['203dpi', IN2X1_203],
    ] as const) {
      for (const serial of ['DEMO-000001', 'LINE2.B:0000000042', 'x']) {
        const file = write(`label-${name}-${serial.replace(/[^A-Za-z0-9-]/g, '_')}.png`, await renderer.render(spec({ template, serial })));
        expect(zbarDecode(file)).toBe(DPP_URI);
        expect(zbarDecodeCode128(file)).toBe(serial);
      }
    }
  });

  it('has no Code 128 when the template turns it off', async () => {
    const file = write('no-code128.png', await renderer.render(spec({ template: { ...MM50X25_300, code128Serial: false } })));
    expect(zbarDecode(file)).toBe(DPP_URI);
    expect(zbarFinds(file, 'code128')).toBe(false);
  });

  it('draws only inside the QR, the bars and the text boxes, whatever the flags and serial', async () => {
    const cases: LabelSpec[] = [
      spec(),
      spec({ template: IN2X1_203 }),
      spec({ template: { ...IN2X1_203, showMac: false, code128Serial: false } }),
      spec({ template: { ...MM50X25_300, showModel: false, showDate: false }, mac: undefined }),
      spec({ template: { ...MM50X25_300, code128Serial: false }, serial: `DEMO-${'W'.repeat(59)}`, mac: undefined }),
      spec({ template: IN2X1_203, serial: 'WWWWWWWWWWWWWW', model: 'Wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww' }),
    ];
    for (const s of cases) {
      const png = decodeBilevelPng(await renderer.render(s));
      const { layout } = layoutDrawnLabel(s);
      expect(strayPixels(png, layout), `${s.serial} ${JSON.stringify(s.template)}`).toBe(0);
      // Every line of text left some ink in its box.
      for (const line of layout.lines) expect(darkIn(png, line.box), line.text).toBeGreaterThan(0);
    }
  });

  it('still decodes with a 64-character serial when the Code 128 is off', async () => {
    const serial = `DEMO-${'W'.repeat(59)}`;
    const file = write('long-serial.png', await renderer.render(spec({ serial, mac: undefined, template: { ...MM50X25_300, code128Serial: false } })));
    expect(zbarDecode(file)).toBe(DPP_URI);
  });

  it('fails with LABEL_TOO_SMALL when the Code 128 of the serial cannot fit beside the QR', async () => {
    const err: unknown = await renderer.render(spec({ serial: `DEMO-${'W'.repeat(59)}` })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabelError);
    expect((err as LabelError).code).toBe('LABEL_TOO_SMALL');
    expect((err as LabelError).message).toContain('code128Serial');
  });

  it('fails with LABEL_FONT_MISSING naming fonts-dejavu-core when the fonts are absent', async () => {
    const empty = mkdtempSync(join(dir, 'no-fonts-'));
    const err: unknown = await new PngLabelRenderer({ fontDir: empty }).render(spec()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabelError);
    expect((err as LabelError).code).toBe('LABEL_FONT_MISSING');
    expect((err as LabelError).message).toContain('fonts-dejavu-core');
  });
});
