/**
 * ZPL II label: the DPP URI as a QR code on the left, serial/model/MAC/date on the right.
 * Every field goes through ^FH_ hex escaping, so data can never inject commands.
 */
import * as QRCode from 'qrcode';
import type { LabelTemplate } from '../../core/config';
import { LabelError } from '../../core/errors';
import type { LabelRenderer, LabelSpec } from '../../core/ports/label-renderer';
import {
  QR_QUIET_ZONE_MODULES,
  labelSizeDots,
  labelText,
  mmToDots,
  qrMaxSide,
  qrModuleSize,
  stackText,
} from './label-geometry';

/** ^BQ accepts magnification 1..10 on every firmware (newer ones allow up to 100). */
const MAX_MAGNIFICATION = 10;
/**
 * Firmware shifts a ^FO-placed ^BQ down by the ^BY bar-code height, which persists across
 * formats. We pin it to its minimum (10 dots) and place the QR that much higher.
 */
const BY_HEIGHT = 10;
/** Conservative advance of font 0 (CG Triumvirate Bold Condensed) per dot of ^A0 width. */
const FONT0_ADVANCE = 0.6;
const SERIAL_HEIGHT = 0.17;
const DETAIL_HEIGHT = 0.11;

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

/** Font height (dots) at most `base` whose estimated width of `chars` characters fits `width`. */
function fitHeight(base: number, chars: number, width: number): number {
  return Math.max(1, Math.floor(Math.min(base, width / (Math.max(chars, 1) * FONT0_ADVANCE))));
}

export class ZplLabelRenderer implements LabelRenderer {
  readonly format = 'zpl' as const;
  readonly mediaType = 'application/vnd.zebra.zpl';

  async render(spec: LabelSpec): Promise<Buffer> {
    const { template } = spec;
    const size = labelSizeDots(template);
    const modules = zebraQrModules(spec.dppUri, template);
    const mag = Math.min(
      MAX_MAGNIFICATION,
      qrModuleSize(modules, Math.min(qrMaxSide(size), size.height - BY_HEIGHT), template),
    );
    const box = (modules + 2 * QR_QUIET_ZONE_MODULES) * mag;
    const quiet = QR_QUIET_ZONE_MODULES * mag;
    const qrTop = Math.floor((size.height - box) / 2) + quiet;

    const margin = mmToDots(1.5, template.dpi);
    const textX = box;
    const textWidth = size.width - margin - textX;
    const text = labelText(spec);
    const longestDetail = Math.max(...text.details.map((l) => l.length));
    const stack = stackText(
      fitHeight(size.height * SERIAL_HEIGHT, text.serial.length, textWidth),
      fitHeight(size.height * DETAIL_HEIGHT, longestDetail, textWidth),
      text.details.length,
      1,
      size.height,
      margin,
    );
    const fields = [
      textField(textX, stack.tops[0], stack.serialSize, text.serial),
      ...text.details.map((line, i) => textField(textX, stack.tops[i + 1], stack.detailSize, line)),
    ];

    const ecLetter = template.qrErrorCorrection;
    const zpl = [
      '^XA',
      '^CI28',
      `^PW${size.width}`,
      `^LL${size.height}`,
      '^LH0,0',
      `^BY2,3,${BY_HEIGHT}`,
      // Error-correction letter + input mode "A" (automatic) must lead the data (pitfalls 21).
      `^FO${quiet},${Math.max(0, qrTop - BY_HEIGHT)}^BQN,2,${mag}^FH_^FD${ecLetter}A,${zplEscape(spec.dppUri)}^FS`,
      ...fields,
      '^XZ',
      '',
    ].join('\n');
    return Buffer.from(zpl, 'utf8');
  }
}
