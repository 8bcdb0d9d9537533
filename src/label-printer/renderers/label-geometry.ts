/**
 * Geometry and content shared by the label renderers: unit conversion, the QR fit, the
 * human-readable lines and the Code 128 placement, so that PNG, SVG and ZPL labels show the
 * same thing in the same places.
 *
 * Layout (all in printer dots): the QR with its 4-module quiet zone on the left, vertically
 * centred; to its right a column with the serial (bold) and the detail lines, and under them,
 * when the template asks for it, a Code 128 of the serial. Text shrinks to fit its box; the
 * boxes never overlap (the barcode's left quiet zone may share white space with the QR's).
 */
import * as QRCode from 'qrcode';
import type { LabelTemplate } from '../../core/config';
import { LabelError } from '../../core/errors';
import type { LabelSpec } from '../../core/ports/label-renderer';
import { CODE128_QUIET_ZONE_MODULES, code128Elements, sumModules } from './code128';
import { DEJAVU_ASCENT, DEJAVU_DESCENT, dejavuWidthEm } from './dejavu-metrics';

/** ISO/IEC 18004 asks for a quiet zone of 4 modules on every side. */
export const QR_QUIET_ZONE_MODULES = 4;
/** White margin kept along the label edges for text (the QR's quiet zone is its own margin). */
export const LABEL_MARGIN_MM = 1.5;
/** Bar height of the Code 128 as a fraction of the label height (6.25 mm on a 25 mm label). */
export const BARCODE_HEIGHT_FRACTION = 0.25;
/** Base text sizes as fractions of the label height, before shrinking to fit. */
export const SERIAL_SIZE_FRACTION = 0.17;
export const DETAIL_SIZE_FRACTION = 0.11;
/** Space between text lines, per unit of the detail size. */
const LINE_GAP_FACTOR = 0.25;

export function mmToDots(mm: number, dpi: number): number {
  return Math.round((mm * dpi) / 25.4);
}

export interface LabelSizeDots {
  width: number;
  height: number;
}

export function labelSizeDots(template: LabelTemplate): LabelSizeDots {
  return { width: mmToDots(template.widthMm, template.dpi), height: mmToDots(template.heightMm, template.dpi) };
}

/** `0211223344aa` -> `02:11:22:33:44:aa`. */
export function formatMac(mac: string): string {
  if (!/^[0-9a-fA-F]{12}$/.test(mac)) {
    throw new LabelError('LABEL_INVALID_MAC', `The MAC address "${mac}" is not 12 hex digits.`, { stage: 'label' });
  }
  return (mac.toLowerCase().match(/../g) as string[]).join(':');
}

export interface LabelText {
  /** Printed larger and bold. */
  serial: string;
  /** Model, MAC (when the product has one) and date, in this order, each when the template shows it. */
  details: string[];
}

export function labelText(spec: LabelSpec): LabelText {
  const { template } = spec;
  const details: string[] = [];
  if (template.showModel) details.push(spec.model);
  if (template.showMac && spec.mac !== undefined) details.push(`MAC ${formatMac(spec.mac)}`);
  if (template.showDate) details.push(spec.date);
  return { serial: spec.serial, details };
}

/**
 * The largest integer module size (dots) at which the QR plus its quiet zone fits in
 * `maxSideDots`. Throws when not even one dot per module fits.
 */
export function qrModuleSize(modules: number, maxSideDots: number, template: LabelTemplate): number {
  const size = Math.floor(maxSideDots / (modules + 2 * QR_QUIET_ZONE_MODULES));
  if (size < 1) {
    throw new LabelError(
      'LABEL_TOO_SMALL',
      `A ${modules}x${modules} QR code does not fit a ${template.widthMm}x${template.heightMm} mm label at ${template.dpi} dpi.`,
      { stage: 'label' },
    );
  }
  return size;
}

/** The QR may use the full label height but at most half its width, so text keeps room. */
export function qrMaxSide(size: LabelSizeDots): number {
  return Math.min(size.height, Math.floor(size.width / 2));
}

export function createQr(text: string, template: LabelTemplate): QRCode.QRCode {
  try {
    return QRCode.create(text, { errorCorrectionLevel: template.qrErrorCorrection });
  } catch (err) {
    throw new LabelError('LABEL_QR_FAILED', `The QR code could not be built: ${err instanceof Error ? err.message : String(err)}`, {
      stage: 'label',
      cause: err,
    });
  }
}

export interface TextStack {
  serialSize: number;
  detailSize: number;
  /** Top of each line box, serial first. */
  tops: number[];
  /** Height of the serial line box and of each detail line box. */
  serialLine: number;
  detailLine: number;
}

/** Line box height (dots) for a font size (dots). */
export type LineHeight = (size: number) => number;

/**
 * Stacks the serial line and `detailCount` detail lines, vertically centred in
 * [`areaTop`, `areaBottom`); shrinks both sizes proportionally (then a dot at a time) when the
 * stack is taller than the area. Every line box lies inside the area unless even 1-dot text
 * cannot fit.
 */
export function stackText(
  serialSize: number,
  detailSize: number,
  detailCount: number,
  lineHeight: LineHeight,
  areaTop: number,
  areaBottom: number,
): TextStack {
  const available = Math.max(0, areaBottom - areaTop);
  const measure = (s: number, d: number) => {
    const serialLine = lineHeight(s);
    const detailLine = lineHeight(d);
    const gap = Math.round(d * LINE_GAP_FACTOR);
    return { serialLine, detailLine, gap, total: serialLine + detailCount * (gap + detailLine) };
  };
  let s = Math.max(1, Math.floor(serialSize));
  let d = Math.max(1, Math.floor(detailSize));
  let m = measure(s, d);
  if (m.total > available) {
    s = Math.max(1, Math.floor((s * available) / m.total));
    d = Math.max(1, Math.floor((d * available) / m.total));
    m = measure(s, d);
    while (m.total > available && (s > 1 || d > 1)) {
      if (s > 1) s--;
      if (d > 1 && (detailCount > 0 || s === 1)) d--;
      m = measure(s, d);
    }
  }
  const tops = [areaTop + Math.max(0, Math.floor((available - m.total) / 2))];
  let y = tops[0]! + m.serialLine;
  for (let i = 0; i < detailCount; i++) {
    y += m.gap;
    tops.push(y);
    y += m.detailLine;
  }
  return { serialSize: s, detailSize: d, tops, serialLine: m.serialLine, detailLine: m.detailLine };
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LaidOutLine {
  text: string;
  bold: boolean;
  /** Font size in dots (em size for DejaVu; character height for ZPL font 0). */
  size: number;
  /** The line box: text must stay inside it. */
  box: Box;
}

export interface BarcodePlacement {
  /** Left edge of the first bar and top of the bars. */
  x: number;
  y: number;
  /** Module (narrowest bar) width, whole dots. */
  module: number;
  height: number;
  /** Width of the bars alone, without quiet zones. */
  width: number;
  /** The bars plus 10 modules of quiet zone left and right. */
  quietBox: Box;
}

export interface LabelLayout {
  size: LabelSizeDots;
  /** Top-left of the first QR module and the module size in dots. */
  qr: { x: number; y: number; unit: number; modules: number };
  /** The QR with its quiet zone. */
  qrBox: Box;
  /** Where text may go. */
  textBox: Box;
  lines: LaidOutLine[];
  barcode: BarcodePlacement | undefined;
}

/** How a renderer's font is measured: the largest size <= `base` at which all `lines` fit `width`. */
export type FitText = (lines: readonly string[], bold: boolean, base: number, width: number) => number;

export interface LayoutInput {
  template: LabelTemplate;
  text: LabelText;
  /** QR side in modules (without quiet zone). */
  qrModules: number;
  /** Extra limit on the QR side with its quiet zone (ZPL keeps room for the ^BY shift). */
  qrMaxSide?: number;
  /** Largest QR module size in dots (ZPL's ^BQ magnification stops at 10). */
  qrMaxUnit?: number;
  /** Width of the Code 128 symbol in modules (no quiet zones), or undefined for none. */
  barcodeModules: number | undefined;
  /** Largest Code 128 module in dots (ZPL's ^BY takes 1..10). */
  barcodeMaxModule?: number;
  fit: FitText;
  lineHeight: LineHeight;
}

function barcodeFit(size: LabelSizeDots, box: number, qrRight: number, modules: number, maxModule: number): { module: number; x: number } | undefined {
  for (let module = Math.min(maxModule, Math.floor(size.width / modules)); module >= 1; module--) {
    const quiet = CODE128_QUIET_ZONE_MODULES * module;
    const x = Math.max(box, qrRight + quiet);
    if (x + modules * module + quiet <= size.width) return { module, x };
  }
  return undefined;
}

export function layoutLabel(input: LayoutInput): LabelLayout {
  const { template, text, qrModules } = input;
  const size = labelSizeDots(template);
  const margin = mmToDots(LABEL_MARGIN_MM, template.dpi);
  const maxSide = Math.min(qrMaxSide(size), input.qrMaxSide ?? Infinity);
  let unit = Math.min(qrModuleSize(qrModules, maxSide, template), input.qrMaxUnit ?? Infinity);

  // The QR keeps its largest module size unless the barcode does not fit even at one dot per
  // module; then the QR gives up a dot per module at a time.
  let bar: { module: number; x: number } | undefined;
  if (input.barcodeModules !== undefined) {
    for (; unit >= 1; unit--) {
      const box = (qrModules + 2 * QR_QUIET_ZONE_MODULES) * unit;
      bar = barcodeFit(size, box, box - QR_QUIET_ZONE_MODULES * unit, input.barcodeModules, input.barcodeMaxModule ?? Infinity);
      if (bar) break;
    }
    if (!bar) {
      throw new LabelError(
        'LABEL_TOO_SMALL',
        `A Code 128 of the serial "${text.serial}" (${input.barcodeModules} modules plus quiet zones) does not fit beside the QR code on a ` +
          `${template.widthMm}x${template.heightMm} mm label at ${template.dpi} dpi; turn code128Serial off or use a wider label.`,
        { stage: 'label' },
      );
    }
  }

  const quiet = QR_QUIET_ZONE_MODULES * unit;
  const side = (qrModules + 2 * QR_QUIET_ZONE_MODULES) * unit;
  const qrBox: Box = { x: 0, y: Math.floor((size.height - side) / 2), width: side, height: side };
  const textBox: Box = { x: side, y: margin, width: Math.max(0, size.width - margin - side), height: size.height - 2 * margin };

  let barcode: BarcodePlacement | undefined;
  if (bar && input.barcodeModules !== undefined) {
    // Code 128's quiet zones are left and right (ISO/IEC 15417); above and below, the bars keep
    // the label margin, from the edge and from the text.
    const barQuiet = CODE128_QUIET_ZONE_MODULES * bar.module;
    const bottom = size.height - margin;
    const height = Math.round(size.height * BARCODE_HEIGHT_FRACTION);
    const width = input.barcodeModules * bar.module;
    barcode = {
      x: bar.x,
      y: bottom - height,
      module: bar.module,
      height,
      width,
      quietBox: { x: bar.x - barQuiet, y: bottom - height, width: width + 2 * barQuiet, height },
    };
    textBox.height = Math.max(0, barcode.y - margin - textBox.y);
  }

  const lines: LaidOutLine[] = [];
  if (textBox.width > 0 && textBox.height > 0) {
    const stack = stackText(
      input.fit([text.serial], true, size.height * SERIAL_SIZE_FRACTION, textBox.width),
      text.details.length > 0 ? input.fit(text.details, false, size.height * DETAIL_SIZE_FRACTION, textBox.width) : 1,
      text.details.length,
      input.lineHeight,
      textBox.y,
      textBox.y + textBox.height,
    );
    lines.push({ text: text.serial, bold: true, size: stack.serialSize, box: { x: textBox.x, y: stack.tops[0]!, width: textBox.width, height: stack.serialLine } });
    text.details.forEach((line, i) => {
      lines.push({ text: line, bold: false, size: stack.detailSize, box: { x: textBox.x, y: stack.tops[i + 1]!, width: textBox.width, height: stack.detailLine } });
    });
  }

  return {
    size,
    qr: { x: quiet, y: qrBox.y + quiet, unit, modules: qrModules },
    qrBox,
    textBox,
    lines,
    barcode,
  };
}

/**
 * A DejaVu line box: 1.2 em, and never less than the whole-dot ascent (to the baseline) plus
 * the descent, so that no glyph leaves its box.
 */
export const dejavuLineHeight: LineHeight = (size) =>
  Math.max(Math.ceil(1.2 * size), Math.ceil(DEJAVU_ASCENT * size) + Math.ceil(DEJAVU_DESCENT * size));
/**
 * Room for kerning and hinting: rasterisers measure DejaVu strings up to ~0.5% wider than the
 * unkerned advance sum. The PNG renderer also passes the box width to fillText as a hard limit.
 */
const DEJAVU_WIDTH_SLACK = 1.02;

export const fitDejavu: FitText = (lines, bold, base, width) => {
  const widest = Math.max(...lines.map((l) => dejavuWidthEm(l, bold))) * DEJAVU_WIDTH_SLACK;
  return Math.max(1, Math.floor(Math.min(base, width / Math.max(widest, 1e-6))));
};

/** Alphabetic baseline of a DejaVu line (whole dots below its box's top). */
export function dejavuBaseline(line: LaidOutLine): number {
  return line.box.y + Math.ceil(DEJAVU_ASCENT * line.size);
}

export interface DrawnLabel {
  layout: LabelLayout;
  qr: QRCode.BitMatrix;
  /** Code 128 element widths in modules (bar first), when the template asks for the barcode. */
  barcode: number[] | undefined;
}

/** The layout the PNG and SVG renderers share: qrcode's own matrix, DejaVu metrics, bwip-js bars. */
export function layoutDrawnLabel(spec: LabelSpec): DrawnLabel {
  const { template } = spec;
  const qr = createQr(spec.dppUri, template).modules;
  const barcode = template.code128Serial ? code128Elements(spec.serial) : undefined;
  const layout = layoutLabel({
    template,
    text: labelText(spec),
    qrModules: qr.size,
    barcodeModules: barcode ? sumModules(barcode) : undefined,
    fit: fitDejavu,
    lineHeight: dejavuLineHeight,
  });
  return { layout, qr, barcode };
}

/** Calls `rect(x, y, w, h)` for each horizontal run of dark QR modules (far fewer shapes). */
export function forEachQrRun(layout: LabelLayout, qr: QRCode.BitMatrix, rect: (x: number, y: number, w: number, h: number) => void): void {
  const { x, y, unit } = layout.qr;
  const n = qr.size;
  for (let row = 0; row < n; row++) {
    let col = 0;
    while (col < n) {
      if (!qr.data[row * n + col]) {
        col++;
        continue;
      }
      const start = col;
      while (col < n && qr.data[row * n + col]) col++;
      rect(x + start * unit, y + row * unit, (col - start) * unit, unit);
    }
  }
}

/** Calls `rect(x, y, w, h)` for each bar of the Code 128. */
export function forEachBar(placement: BarcodePlacement, elements: readonly number[], rect: (x: number, y: number, w: number, h: number) => void): void {
  let x = placement.x;
  elements.forEach((modules, i) => {
    const w = modules * placement.module;
    if (i % 2 === 0) rect(x, placement.y, w, placement.height);
    x += w;
  });
}
