/**
 * PNG label at the printer's resolution: the DPP URI as a QR code on the left,
 * serial/model/MAC/date on the right, drawn with DejaVu Sans so output does not
 * depend on whatever fonts the station happens to have.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GlobalFonts, createCanvas } from '@napi-rs/canvas';
import type { SKRSContext2D } from '@napi-rs/canvas';
import type { BitMatrix } from 'qrcode';
import { LabelError } from '../../core/errors';
import type { LabelRenderer, LabelSpec } from '../../core/ports/label-renderer';
import {
  QR_QUIET_ZONE_MODULES,
  createQr,
  labelSizeDots,
  labelText,
  mmToDots,
  qrMaxSide,
  qrModuleSize,
  stackText,
} from './label-geometry';

export const DEFAULT_FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'];
const SERIAL_SIZE = 0.17;
const DETAIL_SIZE = 0.11;
/** DejaVu Sans ascent + descent is about 1.17 em. */
const LINE_FACTOR = 1.2;

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

/** Largest integer size <= `base` at which every line in `lines` is at most `width` wide. */
function fitFontSize(ctx: SKRSContext2D, font: (size: number) => string, lines: string[], base: number, width: number): number {
  const widest = (size: number): number => {
    ctx.font = font(size);
    return Math.max(...lines.map((l) => ctx.measureText(l).width));
  };
  let size = Math.max(1, Math.floor(Math.min(base, (base * width) / Math.max(widest(base), 1))));
  while (size > 1 && widest(size) > width) size--;
  return size;
}

function drawQr(ctx: SKRSContext2D, modules: BitMatrix, x: number, y: number, unit: number): void {
  ctx.fillStyle = '#000000';
  for (let row = 0; row < modules.size; row++) {
    // One rectangle per horizontal run of dark modules: far fewer draw calls.
    let col = 0;
    while (col < modules.size) {
      if (!modules.data[row * modules.size + col]) {
        col++;
        continue;
      }
      const start = col;
      while (col < modules.size && modules.data[row * modules.size + col]) col++;
      ctx.fillRect(x + start * unit, y + row * unit, (col - start) * unit, unit);
    }
  }
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
    const { template } = spec;
    const size = labelSizeDots(template);
    const qr = createQr(spec.dppUri, template).modules;
    const unit = qrModuleSize(qr.size, qrMaxSide(size), template);
    const box = (qr.size + 2 * QR_QUIET_ZONE_MODULES) * unit;
    const quiet = QR_QUIET_ZONE_MODULES * unit;

    const canvas = createCanvas(size.width, size.height);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, size.width, size.height);
    drawQr(ctx, qr, quiet, Math.floor((size.height - box) / 2) + quiet, unit);

    // Text starts where the QR's right quiet zone ends and is clipped to its own box.
    const margin = mmToDots(1.5, template.dpi);
    const textX = box;
    const textWidth = size.width - margin - textX;
    if (textWidth > 0) {
      const text = labelText(spec);
      const bold = (s: number): string => `bold ${s}px "${family}"`;
      const regular = (s: number): string => `${s}px "${family}"`;
      const stack = stackText(
        fitFontSize(ctx, bold, [text.serial], size.height * SERIAL_SIZE, textWidth),
        fitFontSize(ctx, regular, text.details, size.height * DETAIL_SIZE, textWidth),
        text.details.length,
        LINE_FACTOR,
        size.height,
        margin,
      );
      ctx.save();
      ctx.beginPath();
      ctx.rect(textX, 0, size.width - textX, size.height);
      ctx.clip();
      ctx.fillStyle = '#000000';
      ctx.textBaseline = 'top';
      ctx.font = bold(stack.serialSize);
      ctx.fillText(text.serial, textX, stack.tops[0]);
      ctx.font = regular(stack.detailSize);
      text.details.forEach((line, i) => ctx.fillText(line, textX, stack.tops[i + 1]));
      ctx.restore();
    }

    return canvas.encode('png', { resolution: template.dpi });
  }
}
