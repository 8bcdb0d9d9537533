/**
 * The ~HS parser against the field order of Zebra's ZPL II guide (command ~HS, "Host Status
 * Return"): each documented flag is set alone and must land in its own field and fault.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ZebraHostStatusFormatError,
  describeHostStatus,
  hostStatusFaults,
  hostStatusFrames,
  parseHostStatusStrings,
  parseZebraHostStatus,
} from '../../../src/label-printer/printers/zebra-host-status';

const STX = '\x02';
const ETX_CRLF = '\x03\r\n';

/** A ready printer: 8N1 9600, 1245-dot label, thermal transfer, tear-off, 3 graphics stored. */
const S1 = ['030', '0', '0', '1245', '000', '0', '0', '0', '000', '0', '0', '0'];
const S2 = ['001', '0', '0', '0', '1', '2', '6', '0', '00000000', '1', '003'];
const S3 = ['1234', '0'];

function answer(s1 = S1, s2 = S2, s3 = S3): string {
  return [s1, s2, s3].map((f) => STX + f.join(',') + ETX_CRLF).join('');
}

function withField(fields: string[], index: number, value: string): string[] {
  const copy = [...fields];
  copy[index] = value;
  return copy;
}

describe('parseZebraHostStatus', () => {
  it('reads every field of a ready printer', () => {
    expect(parseZebraHostStatus(answer())).toEqual({
      communicationSettings: 30,
      paperOut: false,
      paused: false,
      labelLengthDots: 1245,
      formatsInBuffer: 0,
      bufferFull: false,
      diagnosticMode: false,
      partialFormat: false,
      corruptRam: false,
      underTemperature: false,
      overTemperature: false,
      functionSettings: 1,
      headUp: false,
      ribbonOut: false,
      thermalTransfer: true,
      printMode: '2',
      printWidthMode: '6',
      labelWaiting: false,
      labelsRemaining: 0,
      formatWhilePrinting: true,
      graphicsStored: 3,
      password: '1234',
      staticRamInstalled: false,
    });
    expect(hostStatusFaults(parseZebraHostStatus(answer()))).toEqual([]);
    expect(describeHostStatus(parseZebraHostStatus(answer()))).toBe('ready');
  });

  // [string, field index, what the parser calls it, the fault it raises or null]
  const flags: Array<[1 | 2 | 3, number, string, string | null]> = [
    [1, 1, 'paperOut', 'PRINTER_PAPER_OUT'],
    [1, 2, 'paused', 'PRINTER_PAUSED'],
    [1, 5, 'bufferFull', 'PRINTER_BUFFER_FULL'],
    [1, 6, 'diagnosticMode', null],
    [1, 7, 'partialFormat', null],
    [1, 9, 'corruptRam', null],
    [1, 10, 'underTemperature', 'PRINTER_TEMPERATURE'],
    [1, 11, 'overTemperature', 'PRINTER_TEMPERATURE'],
    [2, 2, 'headUp', 'PRINTER_HEAD_OPEN'],
    [2, 3, 'ribbonOut', 'PRINTER_RIBBON_OUT'],
    [2, 7, 'labelWaiting', null],
    [3, 1, 'staticRamInstalled', null],
  ];
  it.each(flags)('string %i field %i is %s', (string, index, name, fault) => {
    const s1 = string === 1 ? withField(S1, index, '1') : S1;
    const s2 = string === 2 ? withField(S2, index, '1') : S2;
    const s3 = string === 3 ? withField(S3, index, '1') : S3;
    const status = parseZebraHostStatus(answer(s1, s2, s3));
    const set = Object.entries(status).filter(([k, v]) => v === true && k !== 'thermalTransfer' && k !== 'formatWhilePrinting');
    expect(set).toEqual([[name, true]]);
    expect(hostStatusFaults(status).map((f) => f.code)).toEqual(fault ? [fault] : []);
  });

  it('reads the counters from their own fields', () => {
    const s = parseZebraHostStatus(answer(withField(withField(S1, 3, '0812'), 4, '007'), withField(withField(S2, 8, '00000042'), 10, '011')));
    expect(s.labelLengthDots).toBe(812);
    expect(s.formatsInBuffer).toBe(7);
    expect(s.labelsRemaining).toBe(42);
    expect(s.graphicsStored).toBe(11);
    expect(describeHostStatus(s)).toBe('ready (7 format(s) in the buffer)');
  });

  it('lists root causes before the pause they cause', () => {
    const s = parseZebraHostStatus(answer(withField(withField(S1, 1, '1'), 2, '1'), withField(S2, 2, '1')));
    expect(hostStatusFaults(s).map((f) => f.code)).toEqual(['PRINTER_HEAD_OPEN', 'PRINTER_PAPER_OUT', 'PRINTER_PAUSED']);
    expect(describeHostStatus(s)).toBe('not ready: the print head is open: close it; paper out: load a new roll of labels; it is paused: press PAUSE on the printer to resume');
  });

  it('tolerates bytes before the first STX, a missing CR LF, spaces and extra trailing fields', () => {
    const raw = 'junk' + STX + S1.join(', ') + ',9\x03' + STX + S2.join(',') + ETX_CRLF + STX + S3.join(',') + ETX_CRLF;
    expect(parseZebraHostStatus(raw).labelLengthDots).toBe(1245);
  });

  it('parses the SGD form (the same strings without STX/ETX)', () => {
    expect(parseHostStatusStrings(S1.join(','), withField(S2, 2, '1').join(','), S3.join(',')).headUp).toBe(true);
  });

  it.each([
    ['only two strings', [STX + S1.join(',') + ETX_CRLF, STX + S2.join(',') + ETX_CRLF].join(''), /three/],
    ['a short string 1', answer(S1.slice(0, 11)), /string 1 has 11 fields/],
    ['a short string 2', answer(S1, S2.slice(0, 10)), /string 2 has 10 fields/],
    ['a flag that is not 0 or 1', answer(withField(S1, 1, '2')), /b paper out is "2"/],
    ['a count that is not digits', answer(withField(S1, 3, '12a4')), /dddd label length/],
    ['an empty answer', '', /got 0/],
  ])('rejects %s', (_name, raw, message) => {
    expect(() => parseZebraHostStatus(raw)).toThrow(ZebraHostStatusFormatError);
    expect(() => parseZebraHostStatus(raw)).toThrow(message);
  });

  it('round-trips any combination of flags (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }), ([paperOut, paused, bufferFull, under, over, headUp, ribbonOut]) => {
        const b = (v: boolean | undefined) => (v ? '1' : '0');
        const s1 = withField(withField(withField(withField(withField(S1, 1, b(paperOut)), 2, b(paused)), 5, b(bufferFull)), 10, b(under)), 11, b(over));
        const s2 = withField(withField(S2, 2, b(headUp)), 3, b(ribbonOut));
        const s = parseZebraHostStatus(answer(s1, s2));
        expect([s.paperOut, s.paused, s.bufferFull, s.underTemperature, s.overTemperature, s.headUp, s.ribbonOut]).toEqual([
          paperOut,
          paused,
          bufferFull,
          under,
          over,
          headUp,
          ribbonOut,
        ]);
        const codes = hostStatusFaults(s).map((f) => f.code);
        expect(codes.length === 0).toBe(!(paperOut || paused || bufferFull || under || over || headUp || ribbonOut));
        if (paused) expect(codes.at(-1)).toBe('PRINTER_PAUSED');
      }),
    );
  });
});

describe('hostStatusFrames', () => {
  it('is complete only once the third ETX has arrived, however the bytes are split', () => {
    const bytes = Buffer.from(answer(), 'latin1');
    const thirdEtx = bytes.lastIndexOf(0x03);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length }), (cut) => {
        const { frames, complete } = hostStatusFrames(bytes.subarray(0, cut));
        expect(complete).toBe(cut > thirdEtx);
        expect(frames.length).toBeLessThanOrEqual(3);
      }),
    );
    expect(hostStatusFrames(bytes).frames).toEqual([S1.join(','), S2.join(','), S3.join(',')]);
  });
});
