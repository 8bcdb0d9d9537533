import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SvgLabelRenderer, xmlEscape } from '../../../src/label-printer/renderers/svg-label-renderer';
import { PngLabelRenderer } from '../../../src/label-printer/renderers/png-label-renderer';
import { layoutDrawnLabel } from '../../../src/label-printer/renderers/label-geometry';
import { zbarDecode, zbarDecodeCode128 } from '../../helpers/tools';
import { DPP_URI, IN2X1_203, MM50X25_300, spec } from './fixtures';
import { darkIn, decodeBilevelPng, rasterise, strayPixels } from './pixels';

interface Element {
  name: string;
  attrs: Record<string, string>;
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescape = (s: string): string => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e]!);

/**
 * A small well-formedness check (enough for what the renderer writes): one XML declaration,
 * properly nested elements with quoted attributes, no stray < or & in text or attribute
 * values. Returns the elements in document order with their unescaped text.
 */
function parseXml(xml: string): Element[] {
  const body = xml.replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n/, '');
  expect(body).not.toContain('<?');
  const elements: Element[] = [];
  const stack: Element[] = [];
  const token = /<\/([A-Za-z][\w:-]*)\s*>|<([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = token.exec(body)) !== null) {
    pos = token.lastIndex;
    if (m[1]) {
      expect(stack.pop()?.name, `closing </${m[1]}>`).toBe(m[1]);
    } else if (m[2]) {
      const attrs: Record<string, string> = {};
      for (const a of m[3]!.matchAll(/([\w:-]+)="([^"]*)"/g)) {
        expect(a[2]).not.toMatch(/&(?!(amp|lt|gt|quot|apos);)/);
        expect(attrs[a[1]!], `duplicate attribute ${a[1]}`).toBeUndefined();
        attrs[a[1]!] = unescape(a[2]!);
      }
      const el = { name: m[2], attrs, text: '' };
      elements.push(el);
      if (m[4] !== '/') stack.push(el);
    } else {
      const text = m[5]!;
      expect(text).not.toMatch(/&(?!(amp|lt|gt|quot|apos);)/);
      if (stack.length === 0) expect(text.trim()).toBe('');
      else stack[stack.length - 1]!.text += unescape(text);
    }
  }
  expect(pos, 'unparsed XML left over').toBe(body.length);
  expect(stack, 'unclosed elements').toEqual([]);
  expect(elements[0]?.name).toBe('svg');
  return elements;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'label-svg-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('SvgLabelRenderer', () => {
  const renderer = new SvgLabelRenderer();

  it('is an svg renderer', () => {
    expect(renderer.format).toBe('svg');
    expect(renderer.mediaType).toBe('image/svg+xml');
  });

  it('has a well-formedness check that catches broken XML', () => {
    for (const bad of ['<svg><g></svg>', '<svg a="1" a="2"/>', '<svg>a & b</svg>', '<svg x=1/>', '<svg><text>x</text>']) {
      expect(() => parseXml(bad), bad).toThrow();
    }
    expect(parseXml('<svg a="&amp;"><g/></svg>').map((e) => e.name)).toEqual(['svg', 'g']);
  });

  it('is well-formed SVG sized in mm with a viewBox in dots', async () => {
    for (const [template, w, h, wMm, hMm] of [
      [MM50X25_300, 591, 295, '50.038mm', '24.977mm'],
      [IN2X1_203, 406, 203, '50.8mm', '25.4mm'],
    ] as const) {
      const els = parseXml((await renderer.render(spec({ template }))).toString('utf8'));
      expect(els[0]!.attrs).toMatchObject({ xmlns: 'http://www.w3.org/2000/svg', width: wMm, height: hMm, viewBox: `0 0 ${w} ${h}` });
      // QR and bars: one path each, rectangles only, whole dots.
      const paths = els.filter((e) => e.name === 'path');
      expect(paths).toHaveLength(2);
      for (const p of paths) expect(p.attrs.d).toMatch(/^(M\d+ \d+h\d+v\d+h-\d+z)+$/);
      const texts = els.filter((e) => e.name === 'text');
      expect(texts.map((t) => t.text)).toEqual(['DEMO-000001', 'DemoSensor-1', 'MAC 02:11:22:33:44:aa', '2025-01-31']);
      expect(texts[0]!.attrs['font-weight']).toBe('bold');
      expect(els.find((e) => e.name === 'g')?.attrs['font-family']).toBe('DejaVu Sans');
    }
  });

  it('follows the template flags', async () => {
    const els = parseXml(
      (await renderer.render(spec({ template: { ...IN2X1_203, showMac: false, showDate: false, code128Serial: false } }))).toString('utf8'),
    );
    expect(els.filter((e) => e.name === 'path')).toHaveLength(1);
    expect(els.filter((e) => e.name === 'text').map((t) => t.text)).toEqual(['DEMO-000001', 'DemoSensor-1']);
  });

  it('XML-escapes the text', async () => {
    const model = `<Sensor> & "Co" 'Ltd' ]]>`;
    const svg = (await renderer.render(spec({ model, template: { ...MM50X25_300, code128Serial: false } }))).toString('utf8');
    expect(svg).toContain('&lt;Sensor&gt; &amp; &quot;Co&quot; &apos;Ltd&apos; ]]&gt;');
    expect(parseXml(svg).filter((e) => e.name === 'text')[1]!.text).toBe(model);
    expect(xmlEscape('a\u0001b\u0000c&')).toBe('abc&amp;');
  });

  it('renders (with @napi-rs/canvas) to a label zbarimg decodes, with the PNG label layout', async () => {
    const png = new PngLabelRenderer();
    for (const [name, template] of [
      ['300dpi', MM50X25_300],
      ['203dpi', IN2X1_203],
    ] as const) {
      const s = spec({ template });
      const { layout } = layoutDrawnLabel(s);
      const { pixels, png: raster } = await rasterise(await renderer.render(s), layout.size.width, layout.size.height);
      const file = join(dir, `svg-${name}.png`);
      writeFileSync(file, raster);
      expect(zbarDecode(file)).toBe(DPP_URI);
      expect(zbarDecodeCode128(file)).toBe(s.serial);

      // Same QR and bars, dot for dot, as the PNG renderer; text only inside its line boxes.
      const fromPng = decodeBilevelPng(await png.render(s));
      for (const box of [layout.qrBox, layout.barcode!.quietBox]) {
        for (let y = box.y; y < box.y + box.height; y++) {
          for (let x = box.x; x < box.x + box.width; x++) {
            if (pixels.dark(x, y) !== fromPng.dark(x, y)) expect.fail(`${name}: SVG and PNG differ at ${x},${y}`);
          }
        }
      }
      expect(strayPixels(pixels, layout)).toBe(0);
      for (const line of layout.lines) expect(darkIn(pixels, line.box), line.text).toBeGreaterThan(0);
    }
  });
});
