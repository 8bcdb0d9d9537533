import { describe, it, expect } from 'vitest';
import * as QRCode from 'qrcode';
import { LabelError } from '../../../src/core/errors';
import { ZplLabelRenderer, zplEscape } from '../../../src/label-printer/renderers/zpl-label-renderer';
import { DPP_URI, IN2X1_203, MM50X25_300, spec } from './fixtures';
import { decodeBcData, unescapeFh } from './zpl-decode';

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

  it('has exactly one ^BQ with the DPP URI and one ^BC with the serial', async () => {
    for (const template of [MM50X25_300, IN2X1_203]) {
      for (const serial of ['DEMO-000001', 'LINE2.B:0000000042', 'x', '123456', 'A_B^C>D~E']) {
        const zpl = await render({ template, serial });
        expect(zpl.match(/\^BQ/g)).toHaveLength(1);
        expect(zpl.match(/\^BC/g)).toHaveLength(1);
        const all = fields(zpl);
        expect(all.find((f) => f.command.startsWith('^BQ'))!.data).toBe(`MA,${DPP_URI}`);
        const bc = all.find((f) => f.command.startsWith('^BC'))!;
        // Normal orientation, no interpretation line, no UCC check digit, mode N.
        expect(bc.command).toMatch(/^\^BCN,\d+,N,N,N,N$/);
        expect(decodeBcData(bc.data)).toBe(serial);
      }
    }
  });

  it('places the Code 128 under the text, right of the QR, with whole-dot modules and 10-module quiet zones', async () => {
    for (const template of [MM50X25_300, IN2X1_203]) {
      const zpl = await render({ template });
      const all = fields(zpl);
      const module = Number(/\^BY(\d+),3,10\n/.exec(zpl)![1]);
      const qr = all.find((f) => f.command.startsWith('^BQ'))!;
      const mag = Number(/^\^BQN,2,(\d+)$/.exec(qr.command)![1]);
      const bc = all.find((f) => f.command.startsWith('^BC'))!;
      const barHeight = Number(/^\^BCN,(\d+),/.exec(bc.command)![1]);
      const width = Math.round((template.widthMm * template.dpi) / 25.4);
      const height = Math.round((template.heightMm * template.dpi) / 25.4);
      const qrModules = 17 + 4 * QRCode.create([{ data: Buffer.from(DPP_URI), mode: 'byte' }], { errorCorrectionLevel: 'M' }).version;
      // DEMO-000001: start B, DEMO-, code C, 00 00 01, check = 10 symbols of 11 modules, stop 13.
      const bcModules = 10 * 11 + 13 + 11;
      expect(module).toBeGreaterThanOrEqual(1);
      expect(bc.fo[0]).toBeGreaterThanOrEqual(qr.fo[0] + qrModules * mag + 10 * module);
      expect(bc.fo[0] + (bcModules + 10) * module).toBeLessThanOrEqual(width);
      expect(bc.fo[1] + barHeight).toBeLessThanOrEqual(height);
      for (const f of all.filter((t) => t.command.startsWith('^A0N'))) {
        const h = Number(/^\^A0N,(\d+),/.exec(f.command)![1]);
        expect(f.fo[1] + h).toBeLessThanOrEqual(bc.fo[1]);
      }
    }
    expect(await render({ template: MM50X25_300 })).toMatch(/\^BY2,3,10\n/);
    // ^BY takes at most 10 dots, however much room a short serial leaves.
    expect(await render({ template: { ...MM50X25_300, widthMm: 150, heightMm: 50, dpi: 600 }, serial: 'A1' })).toMatch(/\^BY10,3,10\n/);
  });

  it('leaves the Code 128 and lines out as the template says', async () => {
    const zpl = await render({ template: { ...IN2X1_203, code128Serial: false, showModel: false, showDate: false } });
    expect(zpl).not.toContain('^BC');
    expect(fields(zpl).filter((f) => f.command.startsWith('^A0N')).map((f) => f.data)).toEqual(['DEMO-000001', 'MAC 02:11:22:33:44:aa']);
  });

  it('omits the MAC line when the product has no MAC', async () => {
    const text = fields(await render({ mac: undefined })).filter((f) => f.command.startsWith('^A0N'));
    expect(text.map((f) => f.data)).toEqual(['DEMO-000001', 'DemoSensor-1', '2025-01-31']);
  });

  it('escapes ^, ~ and _ so that data cannot inject commands', async () => {
    const serial = 'EVIL^XZ^XA~JA_5E-é';
    const zpl = await render({ serial, template: { ...MM50X25_300, code128Serial: false } });
    expect(zpl).toContain('EVIL_5EXZ_5EXA_7EJA_5F5E-_C3_A9');
    expect(zpl.match(/\^XZ/g)).toHaveLength(1);
    expect(zpl.match(/\^XA/g)).toHaveLength(1);
    expect(zpl).not.toContain('~');
    expect(fields(zpl).find((f) => f.command.startsWith('^A0N'))?.data).toBe(serial);

    // The Code 128 field too: ^ > ~ become invocation codes, _ goes through ^FH_.
    const ascii = 'EVIL^XZ^XA~JA_5E';
    const withBarcode = await render({ serial: ascii });
    expect(withBarcode.match(/\^XZ/g)).toHaveLength(1);
    expect(withBarcode).not.toContain('~');
    expect(withBarcode).toContain('^FH_^FD>:EVIL><XZ><XA>=JA_5F5E^FS');
    expect(decodeBcData(fields(withBarcode).find((f) => f.command.startsWith('^BC'))!.data)).toBe(ascii);
  });

  it('refuses a serial outside printable ASCII for the Code 128 (LABEL_INVALID_SERIAL)', async () => {
    const err: unknown = await render({ serial: 'DEMO-é' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabelError);
    expect((err as LabelError).code).toBe('LABEL_INVALID_SERIAL');
  });

  it('zplEscape leaves plain printable ASCII alone', () => {
    expect(zplEscape('DPP:C:81/1;K:ab+/=;;')).toBe('DPP:C:81/1;K:ab+/=;;');
    expect(zplEscape('a^b~c_d\n')).toBe('a_5Eb_7Ec_5Fd_0A');
  });
});
