/**
 * Code 128 for the serial under the label text.
 *
 * PNG and SVG draw the bars themselves from the element widths bwip-js computes (it picks the
 * code sets and the check character); ZPL uses the printer's own ^BC, for which we write the
 * code-set changes as ZPL invocation codes, so the printed symbol's width is known in advance.
 */
// The default import on purpose: bwip-js's ES module build (what vitest loads) exports a
// *named* `raw` that is BWIPP's "raw" symbology, not the element-widths function.
import bwipjs from 'bwip-js';
import { LabelError } from '../../core/errors';

/** Code 128 asks for a quiet zone of at least 10 modules left and right of the bars. */
export const CODE128_QUIET_ZONE_MODULES = 10;

/** Only printable ASCII goes on the barcode: it is code set B (and C for digit pairs). */
export function assertCode128Text(text: string): void {
  if (text === '' || !/^[\x20-\x7e]+$/.test(text)) {
    throw new LabelError('LABEL_INVALID_SERIAL', `The serial "${text}" cannot be a Code 128 barcode: it must be printable ASCII.`, {
      stage: 'label',
    });
  }
}

/**
 * Element widths in modules, bar first, alternating bar/space: start, data, check and stop
 * characters (without quiet zones).
 */
export function code128Elements(text: string): number[] {
  assertCode128Text(text);
  let out: ReadonlyArray<object>;
  try {
    out = bwipjs.raw('code128', text, {});
  } catch (err) {
    throw new LabelError('LABEL_BARCODE_FAILED', `The Code 128 barcode could not be built: ${err instanceof Error ? err.message : String(err)}`, {
      stage: 'label',
      cause: err,
    });
  }
  const first = out[0];
  if (!first || !('sbs' in first) || !Array.isArray(first.sbs) || first.sbs.length % 2 !== 1) {
    throw new LabelError('LABEL_BARCODE_FAILED', 'bwip-js returned no linear Code 128 symbol.', { stage: 'label' });
  }
  return first.sbs as number[];
}

export function sumModules(elements: readonly number[]): number {
  let n = 0;
  for (const e of elements) n += e;
  return n;
}

/** ZPL ^FD data for a ^BC in mode N, and the symbol's width in modules. */
export interface ZplCode128 {
  data: string;
  modules: number;
}

/**
 * In code set B, ZPL reserves ^ > ~; they are written as invocation codes (Code 128 values 62,
 * 30 and 94 in the ZPL II guide's ^BC table). The serial schema never produces them.
 */
const ZPL_SET_B_SPECIAL: Record<string, string> = { '^': '><', '>': '>0', '~': '>=' };

/**
 * Code-set plan in the usual way (ISO/IEC 15417 annex E, without set A since the data is
 * printable ASCII): start in C for 4+ leading digits (or exactly 2 digits), switch to C for
 * 6+ digits inside the data or 4+ at its end (an odd digit stays in B), else B. Written with
 * explicit start and shift codes (>: start B, >; start C, >5 to C, >6 to B) so that the
 * printer does not have to guess, and counted: every symbol character is 11 modules, the stop
 * character 13.
 */
export function zplCode128(text: string): ZplCode128 {
  assertCode128Text(text);
  const runs = text.match(/\d+|\D+/g) as string[];
  let data = '';
  let symbols = 2; // start + check
  let set: 'B' | 'C' | undefined;
  const toC = (): void => {
    data += set === undefined ? '>;' : '>5';
    if (set !== undefined) symbols++;
    set = 'C';
  };
  const toB = (): void => {
    data += set === undefined ? '>:' : '>6';
    if (set !== undefined) symbols++;
    set = 'B';
  };
  const inB = (chars: string): void => {
    if (set !== 'B') toB();
    for (const ch of chars) data += ZPL_SET_B_SPECIAL[ch] ?? ch;
    symbols += chars.length;
  };
  runs.forEach((run, i) => {
    const digits = /^\d/.test(run);
    const first = i === 0;
    const last = i === runs.length - 1;
    const useC = digits && (first ? run.length >= 4 || (last && run.length === 2) : last ? run.length >= 4 : run.length >= 6);
    if (!useC) {
      inB(run);
      return;
    }
    let pairs = run;
    if (run.length % 2 === 1) {
      if (first) {
        // Leading odd run: pairs in C first, the last digit in B with what follows.
        pairs = run.slice(0, -1);
      } else {
        inB(run[0]!);
        pairs = run.slice(1);
      }
    }
    if (set !== 'C') toC();
    data += pairs;
    symbols += pairs.length / 2;
    if (pairs.length < run.length && first) inB(run.slice(-1));
  });
  return { data, modules: symbols * 11 + 13 };
}
