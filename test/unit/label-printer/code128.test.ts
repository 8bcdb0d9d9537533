import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { LabelError } from '../../../src/core/errors';
import { assertCode128Text, code128Elements, sumModules, zplCode128 } from '../../../src/label-printer/renderers/code128';
import { decodeBcData } from './zpl-decode';

const serial = fc.stringMatching(/^[A-Za-z0-9.:-]{0,20}[0-9]{0,14}$/).filter((s) => s.length > 0);

describe('code128', () => {
  it('gives bwip-js element widths: 11 modules per symbol character, 13 for the stop', () => {
    const e = code128Elements('DEMO-000001');
    expect(e.length % 2).toBe(1);
    // Start B, D E M O -, code C, 00 00 01, check, stop: 10 symbols of 11 modules + 13.
    expect(sumModules(e)).toBe(10 * 11 + 13 + 11);
    expect(e.slice(0, 6)).toEqual([2, 1, 1, 2, 1, 4]); // start B
    expect(e.slice(-7)).toEqual([2, 3, 3, 1, 1, 1, 2]); // stop
  });

  it('plans the ZPL ^BC data as B with C for digit runs', () => {
    expect(zplCode128('DEMO-000001')).toEqual({ data: '>:DEMO->5000001', modules: 134 });
    expect(zplCode128('DEMO-00001').data).toBe('>:DEMO-0>50001');
    expect(zplCode128('12').data).toBe('>;12');
    expect(zplCode128('123').data).toBe('>:123');
    expect(zplCode128('12345').data).toBe('>;1234>65');
    expect(zplCode128('AB12345CD').data).toBe('>:AB12345CD');
    expect(zplCode128('AB123456CD').data).toBe('>:AB>5123456>6CD');
    expect(zplCode128('a^b>c~d').data).toBe('>:a><b>0c>=d');
  });

  it('ZPL data decodes to the serial and is exactly as wide as the bwip-js symbol', () => {
    fc.assert(
      fc.property(serial, (s) => {
        const z = zplCode128(s);
        expect(decodeBcData(z.data)).toBe(s);
        expect(z.modules).toBe(sumModules(code128Elements(s)));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an empty serial or one outside printable ASCII', () => {
    for (const bad of ['', 'DEMO-é', 'A\nB', 'A\u007f']) {
      expect(() => assertCode128Text(bad)).toThrow(LabelError);
      expect(() => zplCode128(bad)).toThrow(/printable ASCII/);
      expect(() => code128Elements(bad)).toThrow(/printable ASCII/);
    }
  });
});
