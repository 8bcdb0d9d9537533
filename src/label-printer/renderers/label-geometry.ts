/**
 * Geometry and content shared by the label renderers: unit conversion, the QR fit
 * and the human-readable lines, so that PNG and ZPL labels show the same thing.
 */
import * as QRCode from 'qrcode';
import type { LabelTemplate } from '../../core/config';
import { LabelError } from '../../core/errors';
import type { LabelSpec } from '../../core/ports/label-renderer';

/** ISO/IEC 18004 asks for a quiet zone of 4 modules on every side. */
export const QR_QUIET_ZONE_MODULES = 4;

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
  /** Model, MAC (when the product has one) and date, in this order. */
  details: string[];
}

export function labelText(spec: LabelSpec): LabelText {
  const details = [spec.model];
  if (spec.mac !== undefined) details.push(`MAC ${formatMac(spec.mac)}`);
  details.push(spec.date);
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
  /** Top of each line, serial first. */
  tops: number[];
}

/**
 * Stacks the serial line and `detailCount` detail lines, vertically centred; shrinks both
 * sizes proportionally when the stack is taller than the label minus its margins.
 * `lineFactor` is the line box height per unit of font size.
 */
export function stackText(
  serialSize: number,
  detailSize: number,
  detailCount: number,
  lineFactor: number,
  labelHeight: number,
  margin: number,
): TextStack {
  const gapFactor = 0.25;
  const heightOf = (s: number, d: number): number => s * lineFactor + detailCount * d * (lineFactor + gapFactor);
  const available = labelHeight - 2 * margin;
  const total = heightOf(serialSize, detailSize);
  if (total > available) {
    serialSize = Math.max(1, Math.floor((serialSize * available) / total));
    detailSize = Math.max(1, Math.floor((detailSize * available) / total));
  }
  const tops = [Math.max(0, Math.floor((labelHeight - heightOf(serialSize, detailSize)) / 2))];
  const gap = Math.round(detailSize * gapFactor);
  let y = tops[0] + Math.round(serialSize * lineFactor) + gap;
  for (let i = 0; i < detailCount; i++) {
    tops.push(y);
    y += Math.round(detailSize * lineFactor) + gap;
  }
  return { serialSize, detailSize, tops };
}
