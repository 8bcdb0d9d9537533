/**
 * SVG label with the PNG label's layout (label-geometry.ts): the QR as one path of module
 * rectangles from qrcode's matrix, the Code 128 as one path of bars, the text as <text> in
 * DejaVu Sans. The viewBox is in printer dots; width and height are those dots in mm at the
 * template's dpi, so every module lands on whole printer dots.
 */
import type { LabelRenderer, LabelSpec } from '../../core/ports/label-renderer';
import { dejavuBaseline, forEachBar, forEachQrRun, layoutDrawnLabel } from './label-geometry';

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for XML content and attributes; drops characters XML 1.0 cannot carry. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

/** Dots to mm, at most 3 decimals, no trailing zeros. */
function dotsToMm(dots: number, dpi: number): string {
  return String(Math.round(((dots * 25.4) / dpi) * 1000) / 1000);
}

export class SvgLabelRenderer implements LabelRenderer {
  readonly format = 'svg' as const;
  readonly mediaType = 'image/svg+xml';

  async render(spec: LabelSpec): Promise<Buffer> {
    const { layout, qr, barcode } = layoutDrawnLabel(spec);
    const { width, height } = layout.size;
    const dpi = spec.template.dpi;

    const qrPath: string[] = [];
    forEachQrRun(layout, qr, (x, y, w, h) => qrPath.push(`M${x} ${y}h${w}v${h}h-${w}z`));
    const barPath: string[] = [];
    if (layout.barcode && barcode) forEachBar(layout.barcode, barcode, (x, y, w, h) => barPath.push(`M${x} ${y}h${w}v${h}h-${w}z`));

    const out = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      `<svg xmlns="http://www.w3.org/2000/svg" width="${dotsToMm(width, dpi)}mm" height="${dotsToMm(height, dpi)}mm" viewBox="0 0 ${width} ${height}">`,
      `<rect width="${width}" height="${height}" fill="#fff"/>`,
      `<path fill="#000" shape-rendering="crispEdges" d="${qrPath.join('')}"/>`,
    ];
    if (barPath.length > 0) out.push(`<path fill="#000" shape-rendering="crispEdges" d="${barPath.join('')}"/>`);
    if (layout.lines.length > 0) {
      out.push('<g font-family="DejaVu Sans" fill="#000" xml:space="preserve">');
      for (const line of layout.lines) {
        const weight = line.bold ? ' font-weight="bold"' : '';
        out.push(`<text x="${line.box.x}" y="${dejavuBaseline(line)}" font-size="${line.size}"${weight}>${xmlEscape(line.text)}</text>`);
      }
      out.push('</g>');
    }
    out.push('</svg>', '');
    return Buffer.from(out.join('\n'), 'utf8');
  }
}
