/**
 * Golden labels: each renderer's output for fixed specs, byte for byte, against
 * fixtures/labels/golden/<name>.<png|zpl|svg>. After an intended change, look at the new output
 * and rewrite the files with
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/unit/label-printer/golden.test.ts
 *
 * The PNGs also depend on the DejaVu font files (fonts-dejavu-core), the text rasteriser in
 * @napi-rs/canvas and Node's zlib; a PNG mismatch says whether the pixels changed or only the
 * compression did.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { LabelRenderer, LabelSpec } from '../../../src/core/ports/label-renderer';
import { PngLabelRenderer } from '../../../src/label-printer/renderers/png-label-renderer';
import { SvgLabelRenderer } from '../../../src/label-printer/renderers/svg-label-renderer';
import { ZplLabelRenderer } from '../../../src/label-printer/renderers/zpl-label-renderer';
import { zbarDecode, zbarDecodeCode128 } from '../../helpers/tools';
import { DPP_URI, IN2X1_203, MM50X25_300 } from './fixtures';
import { decodeBilevelPng } from './pixels';

const REPO = resolve(__dirname, '../../..');
const GOLDEN_DIR = join(REPO, 'fixtures', 'labels', 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const HINT = 'UPDATE_GOLDEN=1 npx vitest run test/unit/label-printer/golden.test.ts';

const KEY = 'MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACmyGPGZqaIiGAXfNTDFpgIL/yIRutxpIQWDqyFF0OUv0=';

/** Fixed specs: everything, the date included, is constant. */
const GOLDEN: Record<string, LabelSpec> = {
  'mm50x25-300dpi-all': {
    serial: 'DEMO-000001',
    model: 'DemoSensor-1',
    mac: '0211223344aa',
    dppUri: DPP_URI,
    date: '2025-01-31',
    template: { ...MM50X25_300, code128Serial: true, showModel: true, showMac: true, showDate: true },
  },
  'in2x1-203dpi-nomac-nocode128': {
    serial: 'DEMO-000002',
    model: 'DemoSensor-1',
    mac: undefined,
    dppUri: `DPP:C:81/1,81/6,81/11;I:DEMO-000002;V:2;K:${KEY};;`,
    date: '2025-02-28',
    template: { ...IN2X1_203, code128Serial: false, showModel: true, showMac: true, showDate: true },
  },
};

const RENDERERS: LabelRenderer[] = [new PngLabelRenderer(), new ZplLabelRenderer(), new SvgLabelRenderer()];

function pngPixelsEqual(a: Buffer, b: Buffer): boolean {
  try {
    const pa = decodeBilevelPng(a);
    const pb = decodeBilevelPng(b);
    if (pa.width !== pb.width || pa.height !== pb.height) return false;
    for (let y = 0; y < pa.height; y++) for (let x = 0; x < pa.width; x++) if (pa.dark(x, y) !== pb.dark(x, y)) return false;
    return true;
  } catch {
    return false;
  }
}

describe('golden labels', () => {
  for (const [name, spec] of Object.entries(GOLDEN)) {
    for (const renderer of RENDERERS) {
      it(`${name}.${renderer.format} matches byte for byte`, async () => {
        const file = join(GOLDEN_DIR, `${name}.${renderer.format}`);
        const actual = await renderer.render(spec);
        if (UPDATE) {
          mkdirSync(GOLDEN_DIR, { recursive: true });
          writeFileSync(file, actual);
          return;
        }
        if (!existsSync(file)) expect.fail(`the golden file ${relative(REPO, file)} is missing; write it with ${HINT}`);
        const golden = readFileSync(file);
        if (!actual.equals(golden)) {
          const detail =
            renderer.format === 'png'
              ? pngPixelsEqual(actual, golden)
                ? ' (same pixels, different compression: zlib changed)'
                : ' (the pixels differ)'
              : '';
          expect.fail(`${relative(REPO, file)} differs from the renderer's output${detail}; if the change is intended, run ${HINT}`);
        }
      });
    }
  }

  it('golden PNGs decode with zbarimg to the DPP URI (and the serial where there is a Code 128)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'label-golden-'));
    try {
      for (const [name, spec] of Object.entries(GOLDEN)) {
        const file = join(GOLDEN_DIR, `${name}.png`);
        if (!existsSync(file)) expect.fail(`the golden file ${relative(REPO, file)} is missing; write it with ${HINT}`);
        const copy = join(dir, `${name}.png`);
        writeFileSync(copy, readFileSync(file));
        expect(zbarDecode(copy)).toBe(spec.dppUri);
        if (spec.template.code128Serial) expect(zbarDecodeCode128(copy)).toBe(spec.serial);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
