import { describe, it, expect } from 'vitest';
import * as QRCode from 'qrcode';
import { ZplLabelRenderer, zplEscape } from '../../../src/label-printer/renderers/zpl-label-renderer';
import { DPP_URI, IN2X1_203, MM50X25_300, spec } from './fixtures';

/** Undo ^FH_ escaping: `_XX` is one byte, the bytes are UTF-8 (^CI28). */
function unescapeFh(data: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === '_') {
      bytes.push(parseInt(data.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(data.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

interface Field {
  fo: [number, number];
  command: string;
  data: string;
}

/** Every field as `^FOx,y<command>^FH_^FD<data>^FS`; fails if any ^FD lacks ^FH_. */
function fields(zpl: string): Field[] {
  const all = [...zpl.matchAll(/\^FO(\d+),(\d+)(\^[A-Z0-9]{2}[^^]*)\^FH_\^FD([^^]*)\^FS/g)];
  expect(all.length).toBe((zpl.match(/\^FD/g) ?? []).length);
  return all.map((m) => ({ fo: [Number(m[1]), Number(m[2])], command: m[3], data: unescapeFh(m[4]) }));
}

async function render(overrides: Parameters<typeof spec>[0] = {}): Promise<string> {
  return (await new ZplLabelRenderer().render(spec(overrides))).toString('utf8');
}

describe('ZplLabelRenderer', () => {
  it('is a zpl renderer', () => {
    const r = new ZplLabelRenderer();
    expect(r.format).toBe('zpl');
    expect(r.mediaType).toMatch(/zpl/);
  });

  it('frames the label with ^XA/^XZ, UTF-8 and the template size in dots', async () => {
    const zpl = await render();
    expect(zpl.startsWith('^XA')).toBe(true);
    expect(zpl.trimEnd().endsWith('^XZ')).toBe(true);
    expect(zpl).toContain('^CI28');
    expect(zpl).toMatch(/\^PW591\b/);
    expect(zpl).toMatch(/\^LL295\b/);

    const zpl203 = await render({ template: IN2X1_203 });
    expect(zpl203).toMatch(/\^PW406\b/);
    expect(zpl203).toMatch(/\^LL203\b/);
  });

  it('encodes exactly the DPP URI in the QR field, behind the error-correction/input-mode prefix', async () => {
    for (const [template, letter] of [
      [MM50X25_300, 'M'],
      [{ ...IN2X1_203, qrErrorCorrection: 'Q' as const }, 'Q'],
    ] as const) {
      const qr = fields(await render({ template })).filter((f) => f.command.startsWith('^BQN,2,'));
      expect(qr).toHaveLength(1);
      expect(qr[0].data).toBe(`${letter}A,${DPP_URI}`);
    }
  });

  it('sizes the QR (with quiet zone) to the label height and keeps text to its right', async () => {
    for (const template of [MM50X25_300, IN2X1_203]) {
      const all = fields(await render({ template }));
      const qr = all.find((f) => f.command.startsWith('^BQ'));
      expect(qr).toBeDefined();
      const mag = Number(/^\^BQN,2,(\d+)$/.exec(qr!.command)![1]);
      const version = QRCode.create([{ data: Buffer.from(DPP_URI), mode: 'byte' }], {
        errorCorrectionLevel: template.qrErrorCorrection,
      }).version;
      const side = (17 + 4 * version) * mag;
      const height = Math.round((template.heightMm * template.dpi) / 25.4);
      expect(mag).toBeGreaterThanOrEqual(2);
      expect((17 + 4 * version + 8) * mag).toBeLessThanOrEqual(height);
      // Allow for the ^BY-height shift (pinned to 10 dots) printers apply to ^BQ.
      expect(qr!.fo[1] + 10 + side + 4 * mag).toBeLessThanOrEqual(height);
      expect(qr!.fo[0]).toBeGreaterThanOrEqual(4 * mag);
      const text = all.filter((f) => f.command.startsWith('^A0N'));
      expect(text.map((f) => f.data)).toEqual(['DEMO-000001', 'DemoSensor-1', 'MAC 02:11:22:33:44:aa', '2025-01-31']);
      for (const f of text) expect(f.fo[0]).toBeGreaterThanOrEqual(qr!.fo[0] + side + 4 * mag);
    }
  });

  it('omits the MAC line when the product has no MAC', async () => {
    const text = fields(await render({ mac: undefined })).filter((f) => f.command.startsWith('^A0N'));
    expect(text.map((f) => f.data)).toEqual(['DEMO-000001', 'DemoSensor-1', '2025-01-31']);
  });

  it('escapes ^, ~ and _ so that data cannot inject commands', async () => {
    const serial = 'EVIL^XZ^XA~JA_5E-é';
    const zpl = await render({ serial });
    expect(zpl).toContain('EVIL_5EXZ_5EXA_7EJA_5F5E-_C3_A9');
    expect(zpl.match(/\^XZ/g)).toHaveLength(1);
    expect(zpl.match(/\^XA/g)).toHaveLength(1);
    expect(zpl).not.toContain('~');
    expect(fields(zpl).find((f) => f.command.startsWith('^A0N'))?.data).toBe(serial);
  });

  it('zplEscape leaves plain printable ASCII alone', () => {
    expect(zplEscape('DPP:C:81/1;K:ab+/=;;')).toBe('DPP:C:81/1;K:ab+/=;;');
    expect(zplEscape('a^b~c_d\n')).toBe('a_5Eb_7Ec_5Fd_0A');
  });
});
