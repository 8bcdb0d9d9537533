/**
 * ZPL II label: the DPP URI as a QR code on the left, serial/model/MAC/date and a native
 * Code 128 (^BC) of the serial on the right, laid out like the PNG/SVG labels (label-geometry.ts)
 * but with the printer's own QR and font 0. Every field goes through ^FH_ hex escaping, so data
 * can never inject commands.
 */
import * as QRCode from 'qrcode';
import type { LabelTemplate } from '../../core/config';
import { LabelError } from '../../core/errors';
import type { LabelRenderer, LabelSpec } from '../../core/ports/label-renderer';
import { zplCode128 } from './code128';
import { type FitText, labelSizeDots, labelText, layoutLabel } from './label-geometry';

/** ^BQ accepts magnification 1..10 on every firmware (newer ones allow up to 100). */
const MAX_MAGNIFICATION = 10;
/** ^BY module width: 1..10 dots. */
const MAX_BY_WIDTH = 10;
/**
 * Firmware shifts a ^FO-placed ^BQ down by the ^BY bar-code height, which persists across
 * formats. We pin it to its minimum (10 dots) and place the QR that much higher.
 */
const BY_HEIGHT = 10;
/** Conservative advance of font 0 (CG Triumvirate Bold Condensed) per dot of ^A0 width. */
const FONT0_ADVANCE = 0.6;

/** ^FH_ escaping: anything outside printable ASCII, and ^ ~ _, becomes _XX per UTF-8 byte. */
export function zplEscape(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const printable = byte >= 0x20 && byte <= 0x7e && byte !== 0x5e && byte !== 0x7e && byte !== 0x5f;
    out += printable ? String.fromCharCode(byte) : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The printer picks the QR version itself in automatic mode and may not segment as
 * cleverly as `qrcode`; pure byte mode is the worst case, so size for that.
 */
function zebraQrModules(text: string, template: LabelTemplate): number {
  const segments = [{ data: Buffer.from(text, 'utf8'), mode: 'byte' as const }];
  try {
    return 17 + 4 * QRCode.create(segments, { errorCorrectionLevel: template.qrErrorCorrection }).version;
  } catch (err) {
    throw new LabelError('LABEL_QR_FAILED', `The QR code could not be built: ${err instanceof Error ? err.message : String(err)}`, {
      stage: 'label',
      cause: err,
    });
  }
}

function textField(x: number, y: number, height: number, data: string): string {
  return `^FO${x},${y}^A0N,${height},${height}^FH_^FD${zplEscape(data)}^FS`;
}

/** Font 0 height (dots) at most `base` whose estimated width of the longest line fits `width`. */
const fitFont0: FitText = (lines, _bold, base, width) => {
  const chars = Math.max(1, ...lines.map((l) => [...l].length));
  return Math.max(1, Math.floor(Math.min(base, width / (chars * FONT0_ADVANCE))));
};

export class ZplLabelRenderer implements LabelRenderer {
  readonly format = 'zpl' as const;
  readonly mediaType = 'application/vnd.zebra.zpl';

  async render(spec: LabelSpec): Promise<Buffer> {
    const { template } = spec;
    const size = labelSizeDots(template);
    const code128 = template.code128Serial ? zplCode128(spec.serial) : undefined;
    const layout = layoutLabel({
      template,
      text: labelText(spec),
      qrModules: zebraQrModules(spec.dppUri, template),
      qrMaxSide: size.height - BY_HEIGHT,
      qrMaxUnit: MAX_MAGNIFICATION,
      barcodeModules: code128?.modules,
      barcodeMaxModule: MAX_BY_WIDTH,
      fit: fitFont0,
      lineHeight: (h) => h,
    });
    const { qr, barcode } = layout;

    const ecLetter = template.qrErrorCorrection;
    const zpl = [
      '^XA',
      '^CI28',
      `^PW${size.width}`,
      `^LL${size.height}`,
      '^LH0,0',
      // The module width is the Code 128's; ^BQ ignores it (it has its own magnification).
      `^BY${barcode?.module ?? 2},3,${BY_HEIGHT}`,
      // Error-correction letter + input mode "A" (automatic) must lead the data (pitfalls 21).
      `^FO${qr.x},${Math.max(0, qr.y - BY_HEIGHT)}^BQN,2,${qr.unit}^FH_^FD${ecLetter}A,${zplEscape(spec.dppUri)}^FS`,
      ...layout.lines.map((line) => textField(line.box.x, line.box.y, line.size, line.text)),
    ];
    if (barcode && code128) {
      // Mode N with explicit start/code-set invocation codes (code128.ts); no interpretation line.
      zpl.push(`^FO${barcode.x},${barcode.y}^BCN,${barcode.height},N,N,N,N^FH_^FD${zplEscape(code128.data)}^FS`);
    }
    zpl.push('^XZ', '');
    return Buffer.from(zpl.join('\n'), 'utf8');
  }
}
