/**
 * PNG label at the printer's resolution: the DPP URI as a QR code on the left,
 * serial/model/MAC/date and the serial's Code 128 on the right (layout in label-geometry.ts),
 * drawn with DejaVu Sans so output does not depend on whatever fonts the station happens to
 * have, and written as a 1-bit PNG (bilevel-png.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GlobalFonts, createCanvas } from '@napi-rs/canvas';
import { LabelError } from '../../core/errors';
import type { LabelRenderer, LabelSpec } from '../../core/ports/label-renderer';
import { BilevelImage } from './bilevel-png';
import { dejavuBaseline, forEachBar, forEachQrRun, layoutDrawnLabel } from './label-geometry';

export const DEFAULT_FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'];

/** Font family alias per registered directory (registration is process-global). */
const registered = new Map<string, string>();

function ensureFonts(dir: string): string {
  const known = registered.get(dir);
  if (known) return known;
  const missing = FONT_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new LabelError(
      'LABEL_FONT_MISSING',
      `The label font files ${missing.join(', ')} are missing from ${dir}; install the Debian package fonts-dejavu-core.`,
      { stage: 'label', details: { fontDir: dir } },
    );
  }
  const family = `Station Label Sans ${registered.size}`;
  for (const file of FONT_FILES) {
    if (!GlobalFonts.registerFromPath(join(dir, file), family)) {
      throw new LabelError('LABEL_FONT_MISSING', `The label font ${join(dir, file)} could not be loaded; reinstall fonts-dejavu-core.`, {
        stage: 'label',
        details: { fontDir: dir },
      });
    }
  }
  registered.set(dir, family);
  return family;
}

export interface PngLabelRendererOptions {
  /** Directory holding DejaVuSans.ttf and DejaVuSans-Bold.ttf. */
  fontDir?: string;
}

export class PngLabelRenderer implements LabelRenderer {
  readonly format = 'png' as const;
  readonly mediaType = 'image/png';
  private readonly fontDir: string;

  constructor(options: PngLabelRendererOptions = {}) {
    this.fontDir = options.fontDir ?? DEFAULT_FONT_DIR;
  }

  async render(spec: LabelSpec): Promise<Buffer> {
    const family = ensureFonts(this.fontDir);
    const { layout, qr, barcode } = layoutDrawnLabel(spec);
    const image = new BilevelImage(layout.size.width, layout.size.height);
    const rect = (x: number, y: number, w: number, h: number): void => image.fillRect(x, y, w, h);
    forEachQrRun(layout, qr, rect);
    if (layout.barcode && barcode) forEachBar(layout.barcode, barcode, rect);

    // Text is the only thing that needs a rasteriser: draw it on a canvas the size of the text
    // lines' box, read it back once and threshold it into the image.
    if (layout.lines.length > 0) {
      const x0 = layout.textBox.x;
      const y0 = Math.min(...layout.lines.map((l) => l.box.y));
      const w = layout.textBox.width;
      const h = Math.max(...layout.lines.map((l) => l.box.y + l.box.height)) - y0;
      const canvas = createCanvas(w, h);
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = '#000000';
      ctx.textBaseline = 'alphabetic';
      for (const line of layout.lines) {
        ctx.font = `${line.bold ? 'bold ' : ''}${line.size}px "${family}"`;
        // The layout fitted the text with DejaVu's advance widths; maxWidth makes the box a hard limit.
        ctx.fillText(line.text, line.box.x - x0, dejavuBaseline(line) - y0, line.box.width);
      }
      image.blitRgba(ctx.getImageData(0, 0, w, h).data, x0, y0, w, h);
    }
    return image.encodePng(spec.template.dpi);
  }
}
