/**
 * Zebra host status (`~HS`): pure parsing, no I/O.
 *
 * The printer answers `~HS` with three strings, each `<STX>fields<ETX><CR><LF>`, fields
 * comma-separated. Field order, from Zebra's ZPL II Programming Guide, command `~HS`
 * ("Host Status Return"; https://docs.zebra.com/us/en/printers/software/zpl-pg/zpl-commands/~hs4.html,
 * also 45541L-004 Rev. A pp. 171-173, and the SGD `device.host_status` page which lists the same
 * three strings without STX/ETX):
 *
 *   String 1  aaa,b,c,dddd,eee,f,g,h,iii,j,k,l
 *     aaa comms settings, b paper out, c pause, dddd label length (dots), eee formats in the
 *     receive buffer, f buffer full, g comms diagnostic mode, h partial format in progress,
 *     iii unused (000), j corrupt RAM, k under temperature, l over temperature
 *   String 2  mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www
 *     mmm function settings, n unused, o head up, p ribbon out, q thermal transfer mode,
 *     r print mode, s print width mode, t label waiting (peel-off), uuuuuuuu labels remaining
 *     in batch, v format while printing (always 1), www graphic images stored
 *   String 3  xxxx,y
 *     xxxx password, y static RAM installed
 *
 * The same page notes that some firmware does not answer `~HS` at all while the media or
 * ribbon is out, the head is open or over temperature: a silent printer is reported by the
 * caller as a timeout whose message says so.
 */

const STX = 0x02;
const ETX = 0x03;

export interface ZebraHostStatus {
  // String 1
  communicationSettings: number;
  paperOut: boolean;
  paused: boolean;
  labelLengthDots: number;
  formatsInBuffer: number;
  bufferFull: boolean;
  diagnosticMode: boolean;
  partialFormat: boolean;
  corruptRam: boolean;
  underTemperature: boolean;
  overTemperature: boolean;
  // String 2
  functionSettings: number;
  headUp: boolean;
  ribbonOut: boolean;
  thermalTransfer: boolean;
  /** 0 rewind, 1 peel-off, 2 tear-off, 3 cutter, 4 applicator, 5 delayed cut, ... (kept as sent). */
  printMode: string;
  printWidthMode: string;
  labelWaiting: boolean;
  labelsRemaining: number;
  formatWhilePrinting: boolean;
  graphicsStored: number;
  // String 3
  password: string;
  staticRamInstalled: boolean;
}

/** The PrinterError codes a host status can carry, root causes first. */
export type HostStatusFaultCode =
  | 'PRINTER_HEAD_OPEN'
  | 'PRINTER_PAPER_OUT'
  | 'PRINTER_RIBBON_OUT'
  | 'PRINTER_TEMPERATURE'
  | 'PRINTER_BUFFER_FULL'
  | 'PRINTER_PAUSED';

export interface HostStatusFault {
  code: HostStatusFaultCode;
  /** What the printer says, then what the operator does about it. */
  text: string;
}

/** Thrown by the parser; the printer adapter turns it into a PrinterError. */
export class ZebraHostStatusFormatError extends Error {
  override readonly name = 'ZebraHostStatusFormatError';
}

/**
 * The complete `STX ... ETX` strings found in `buffer` so far (CR LF after ETX optional), and
 * whether the three of a host status have arrived. Bytes before the first STX are ignored.
 */
export function hostStatusFrames(buffer: Buffer): { frames: string[]; complete: boolean } {
  const frames: string[] = [];
  let i = 0;
  while (frames.length < 3) {
    const start = buffer.indexOf(STX, i);
    if (start < 0) break;
    const end = buffer.indexOf(ETX, start + 1);
    if (end < 0) break;
    frames.push(buffer.subarray(start + 1, end).toString('latin1'));
    i = end + 1;
  }
  return { frames, complete: frames.length === 3 };
}

/** Parse a whole `~HS` answer (the three framed strings). Throws ZebraHostStatusFormatError. */
export function parseZebraHostStatus(answer: Buffer | string): ZebraHostStatus {
  const buffer = typeof answer === 'string' ? Buffer.from(answer, 'latin1') : answer;
  const { frames, complete } = hostStatusFrames(buffer);
  if (!complete) {
    throw new ZebraHostStatusFormatError(`expected three <STX>...<ETX> strings, got ${frames.length} in ${JSON.stringify(preview(buffer))}`);
  }
  return parseHostStatusStrings(frames[0]!, frames[1]!, frames[2]!);
}

/** Parse the three strings without their STX/ETX/CR/LF (as SGD `device.host_status` returns them). */
export function parseHostStatusStrings(s1: string, s2: string, s3: string): ZebraHostStatus {
  const f1 = fields(s1, 1, 12);
  const f2 = fields(s2, 2, 11);
  const f3 = fields(s3, 3, 2);
  return {
    communicationSettings: num(f1, 0, 1, 'aaa communication settings'),
    paperOut: flag(f1, 1, 1, 'b paper out'),
    paused: flag(f1, 2, 1, 'c pause'),
    labelLengthDots: num(f1, 3, 1, 'dddd label length'),
    formatsInBuffer: num(f1, 4, 1, 'eee formats in buffer'),
    bufferFull: flag(f1, 5, 1, 'f buffer full'),
    diagnosticMode: flag(f1, 6, 1, 'g diagnostic mode'),
    partialFormat: flag(f1, 7, 1, 'h partial format'),
    corruptRam: flag(f1, 9, 1, 'j corrupt RAM'),
    underTemperature: flag(f1, 10, 1, 'k under temperature'),
    overTemperature: flag(f1, 11, 1, 'l over temperature'),
    functionSettings: num(f2, 0, 2, 'mmm function settings'),
    headUp: flag(f2, 2, 2, 'o head up'),
    ribbonOut: flag(f2, 3, 2, 'p ribbon out'),
    thermalTransfer: flag(f2, 4, 2, 'q thermal transfer mode'),
    printMode: f2[5]!,
    printWidthMode: f2[6]!,
    labelWaiting: flag(f2, 7, 2, 't label waiting'),
    labelsRemaining: num(f2, 8, 2, 'uuuuuuuu labels remaining'),
    formatWhilePrinting: flag(f2, 9, 2, 'v format while printing'),
    graphicsStored: num(f2, 10, 2, 'www graphics stored'),
    password: f3[0]!,
    staticRamInstalled: flag(f3, 1, 3, 'y static RAM'),
  };
}

const FAULTS: ReadonlyArray<{ code: HostStatusFaultCode; test: (s: ZebraHostStatus) => boolean; text: (s: ZebraHostStatus) => string }> = [
  { code: 'PRINTER_HEAD_OPEN', test: (s) => s.headUp, text: () => 'the print head is open: close it' },
  { code: 'PRINTER_PAPER_OUT', test: (s) => s.paperOut, text: () => 'paper out: load a new roll of labels' },
  // Taken as the printer reports it, whatever q (thermal transfer mode) says.
  { code: 'PRINTER_RIBBON_OUT', test: (s) => s.ribbonOut, text: () => 'ribbon out: load a new ribbon' },
  {
    code: 'PRINTER_TEMPERATURE',
    test: (s) => s.underTemperature || s.overTemperature,
    text: (s) => (s.overTemperature ? 'the print head is over temperature: let it cool down' : 'the print head is under temperature: let it warm up'),
  },
  { code: 'PRINTER_BUFFER_FULL', test: (s) => s.bufferFull, text: () => 'its receive buffer is full: wait until it has printed the queued labels' },
  // Last: a printer pauses itself after most of the faults above; the cause is more useful.
  { code: 'PRINTER_PAUSED', test: (s) => s.paused, text: () => 'it is paused: press PAUSE on the printer to resume' },
];

/** Faults that stop printing, root causes first (head open, paper out, ribbon, temperature, buffer, pause). */
export function hostStatusFaults(status: ZebraHostStatus): HostStatusFault[] {
  return FAULTS.filter((f) => f.test(status)).map((f) => ({ code: f.code, text: f.text(status) }));
}

/** One line for the operator: the faults, or "ready" with the counters worth knowing. */
export function describeHostStatus(status: ZebraHostStatus): string {
  const faults = hostStatusFaults(status);
  const notes: string[] = [];
  if (status.corruptRam) notes.push('configuration data lost (corrupt RAM flag)');
  if (status.partialFormat) notes.push('a partial format is in progress');
  if (status.labelWaiting) notes.push('a label is waiting to be taken (peel-off)');
  if (status.formatsInBuffer > 0) notes.push(`${status.formatsInBuffer} format(s) in the buffer`);
  const head = faults.length ? `not ready: ${faults.map((f) => f.text).join('; ')}` : 'ready';
  return notes.length ? `${head} (${notes.join(', ')})` : head;
}

function fields(s: string, index: number, count: number): string[] {
  const parts = s.trim().split(',').map((p) => p.trim());
  // Newer firmware may append fields; fewer than documented is not a host status.
  if (parts.length < count) {
    throw new ZebraHostStatusFormatError(`string ${index} has ${parts.length} fields, expected ${count}: ${JSON.stringify(s)}`);
  }
  return parts;
}

function flag(f: string[], i: number, string: number, name: string): boolean {
  const v = f[i];
  if (v === '0') return false;
  if (v === '1') return true;
  throw new ZebraHostStatusFormatError(`string ${string} field ${name} is ${JSON.stringify(v)}, expected 0 or 1`);
}

function num(f: string[], i: number, string: number, name: string): number {
  const v = f[i]!;
  if (!/^\d{1,10}$/.test(v)) throw new ZebraHostStatusFormatError(`string ${string} field ${name} is ${JSON.stringify(v)}, expected digits`);
  return Number.parseInt(v, 10);
}

function preview(buffer: Buffer): string {
  return buffer.subarray(0, 80).toString('latin1');
}
