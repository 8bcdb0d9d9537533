import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createCanvas, GlobalFonts } from '@napi-rs/canvas';
import type { LabelTemplate } from '../../../src/core/config';
import { LabelError } from '../../../src/core/errors';
import type { LabelSpec } from '../../../src/core/ports/label-renderer';
import {
  type Box,
  type LabelLayout,
  LABEL_MARGIN_MM,
  QR_QUIET_ZONE_MODULES,
  dejavuBaseline,
  fitDejavu,
  labelText,
  layoutDrawnLabel,
  mmToDots,
} from '../../../src/label-printer/renderers/label-geometry';
import { CODE128_QUIET_ZONE_MODULES } from '../../../src/label-printer/renderers/code128';
import { DEJAVU_ASCENT, DEJAVU_DESCENT, dejavuWidthEm } from '../../../src/label-printer/renderers/dejavu-metrics';
import { DEFAULT_FONT_DIR } from '../../../src/label-printer/renderers/png-label-renderer';
import { IN2X1_203, MM50X25_300, spec } from './fixtures';

const disjoint = (a: Box, b: Box): boolean => a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
const inside = (a: Box, outer: Box): boolean => a.x >= outer.x && a.y >= outer.y && a.x + a.width <= outer.x + outer.width && a.y + a.height <= outer.y + outer.height;

/** The invariants every layout keeps; returns nothing, fails the test on a violation. */
function checkLayout(layout: LabelLayout, s: LabelSpec): void {
  const { size, qr, qrBox, barcode, lines, textBox } = layout;
  const label: Box = { x: 0, y: 0, width: size.width, height: size.height };
  const margin = mmToDots(LABEL_MARGIN_MM, s.template.dpi);
  const qrModules: Box = { x: qr.x, y: qr.y, width: qr.modules * qr.unit, height: qr.modules * qr.unit };
  expect(Number.isInteger(qr.unit) && qr.unit >= 1).toBe(true);
  expect(inside(qrBox, label)).toBe(true);
  expect(qrModules).toEqual({
    x: qrBox.x + QR_QUIET_ZONE_MODULES * qr.unit,
    y: qrBox.y + QR_QUIET_ZONE_MODULES * qr.unit,
    width: qrBox.width - 2 * QR_QUIET_ZONE_MODULES * qr.unit,
    height: qrBox.height - 2 * QR_QUIET_ZONE_MODULES * qr.unit,
  });
  expect(textBox.x + textBox.width).toBeLessThanOrEqual(size.width - margin);
  const boxes: Array<[string, Box]> = [['qr', qrBox]];
  for (const line of lines) {
    expect(Number.isInteger(line.size) && line.size >= 1).toBe(true);
    expect(inside(line.box, textBox), line.text).toBe(true);
    expect(line.size * dejavuWidthEm(line.text, line.bold)).toBeLessThanOrEqual(line.box.width);
    // Ascent (above the baseline) + descent of DejaVu fits the line box.
    const baseline = dejavuBaseline(line);
    expect(baseline - DEJAVU_ASCENT * line.size).toBeGreaterThanOrEqual(line.box.y);
    expect(baseline + DEJAVU_DESCENT * line.size).toBeLessThanOrEqual(line.box.y + line.box.height);
    boxes.push([line.text, line.box]);
  }
  expect(s.template.code128Serial).toBe(barcode !== undefined);
  if (barcode) {
    expect(Number.isInteger(barcode.module) && barcode.module >= 1).toBe(true);
    const quiet = CODE128_QUIET_ZONE_MODULES * barcode.module;
    expect(barcode.quietBox).toEqual({ x: barcode.x - quiet, y: barcode.y, width: barcode.width + 2 * quiet, height: barcode.height });
    expect(inside(barcode.quietBox, label)).toBe(true);
    expect(barcode.y + barcode.height + margin).toBeLessThanOrEqual(size.height);
    // The bars' left quiet zone may share white with the QR's quiet zone, never with its modules.
    expect(disjoint(barcode.quietBox, qrModules)).toBe(true);
    expect(barcode.x).toBeGreaterThanOrEqual(qrBox.x + qrBox.width);
    for (const line of lines) expect(line.box.y + line.box.height + margin).toBeLessThanOrEqual(barcode.y);
    boxes.push(['barcode', { ...barcode.quietBox, x: Math.max(barcode.quietBox.x, qrBox.x + qrBox.width), width: barcode.quietBox.width - Math.max(0, qrBox.x + qrBox.width - barcode.quietBox.x) }]);
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) expect(disjoint(boxes[i]![1], boxes[j]![1]), `${boxes[i]![0]} / ${boxes[j]![0]}`).toBe(true);
  }
}

describe('labelText', () => {
  it('shows model, MAC and date as the template says (the serial always)', () => {
    expect(labelText(spec())).toEqual({ serial: 'DEMO-000001', details: ['DemoSensor-1', 'MAC 02:11:22:33:44:aa', '2025-01-31'] });
    expect(labelText(spec({ mac: undefined })).details).toEqual(['DemoSensor-1', '2025-01-31']);
    const t = MM50X25_300;
    expect(labelText(spec({ template: { ...t, showModel: false } })).details).toEqual(['MAC 02:11:22:33:44:aa', '2025-01-31']);
    expect(labelText(spec({ template: { ...t, showMac: false } })).details).toEqual(['DemoSensor-1', '2025-01-31']);
    expect(labelText(spec({ template: { ...t, showDate: false } })).details).toEqual(['DemoSensor-1', 'MAC 02:11:22:33:44:aa']);
    expect(labelText(spec({ template: { ...t, showModel: false, showMac: false, showDate: false } })).details).toEqual([]);
  });
});

describe('layoutDrawnLabel', () => {
  it('fits 50x25 mm @300 dpi and 2x1 in @203 dpi with every flag on: QR left, text then bars right', () => {
    const a = layoutDrawnLabel(spec({ template: MM50X25_300 })).layout;
    expect({ unit: a.qr.unit, module: a.barcode?.module, lines: a.lines.length }).toEqual({ unit: 5, module: 2, lines: 4 });
    checkLayout(a, spec({ template: MM50X25_300 }));
    const b = layoutDrawnLabel(spec({ template: IN2X1_203 })).layout;
    expect({ unit: b.qr.unit, module: b.barcode?.module, lines: b.lines.length }).toEqual({ unit: 3, module: 1, lines: 4 });
    checkLayout(b, spec({ template: IN2X1_203 }));
  });

  it('gives up QR module size before leaving out a Code 128 that does not fit', () => {
    const s = spec({ template: IN2X1_203, serial: 'LINE-XY.PRODUCT:AB' });
    const { layout } = layoutDrawnLabel(s);
    expect(layout.qr.unit).toBe(2);
    checkLayout(layout, s);
    expect(() => layoutDrawnLabel(spec({ template: IN2X1_203, serial: 'W'.repeat(40) }))).toThrow(/turn code128Serial off/);
  });

  it('keeps its invariants for any flags, serial, model and label size (or says LABEL_TOO_SMALL)', () => {
    const template = fc.record<LabelTemplate>({
      widthMm: fc.constantFrom(40, 50, 50.8, 57, 76.2, 100),
      heightMm: fc.constantFrom(20, 25, 25.4, 32, 50.8),
      dpi: fc.constantFrom(203 as const, 300 as const, 600 as const),
      qrErrorCorrection: fc.constantFrom('L' as const, 'M' as const, 'Q' as const),
      code128Serial: fc.boolean(),
      showModel: fc.boolean(),
      showMac: fc.boolean(),
      showDate: fc.boolean(),
    });
    fc.assert(
      fc.property(
        template,
        fc.stringMatching(/^[A-Za-z0-9.:-]{1,64}$/),
        fc.string({ maxLength: 50 }),
        fc.option(fc.stringMatching(/^[0-9a-f]{12}$/), { nil: undefined }),
        (t, serial, model, mac) => {
          const s = spec({ template: t, serial, model, mac });
          let layout: LabelLayout;
          try {
            layout = layoutDrawnLabel(s).layout;
          } catch (err) {
            expect((err as LabelError).code).toBe('LABEL_TOO_SMALL');
            return;
          }
          checkLayout(layout, s);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fits text by DejaVu metrics that the canvas rasteriser does not exceed', () => {
    const family = 'Geometry Test DejaVu';
    GlobalFonts.registerFromPath(`${DEFAULT_FONT_DIR}/DejaVuSans.ttf`, family);
    GlobalFonts.registerFromPath(`${DEFAULT_FONT_DIR}/DejaVuSans-Bold.ttf`, family);
    const ctx = createCanvas(10, 10).getContext('2d');
    for (const text of ['DEMO-000001', 'MAC 02:11:22:33:44:aa', 'DemoSensor-1', '2025-01-31', 'WWWWWWWW', 'iiiiiiii', 'AVATAR Yoyo']) {
      for (const bold of [false, true]) {
        for (const width of [120, 223, 288, 500]) {
          const size = fitDejavu([text], bold, 1000, width);
          ctx.font = `${bold ? 'bold ' : ''}${size}px "${family}"`;
          expect(ctx.measureText(text).width, `${text} ${bold} ${width}`).toBeLessThanOrEqual(width);
        }
      }
    }
  });
});
