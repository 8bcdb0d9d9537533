/**
 * Device transcripts (fixtures/transcripts/*.txt): what the station writes and what the device
 * answers, frame by frame, recorded from the simulator and replayed by ScriptedTransport.
 *
 *   # a comment: above the @ lines about the file, below them about the frame that follows
 *   #           (the recorder decodes each frame into one)
 *   @title    what the transcript shows
 *   @first-seq 0x1000            seq of the station's first request (DeviceConnection firstSeq)
 *   @input NAME HEX              a value the scenario needs to make the same requests again
 *   => HEX                       a frame the station writes
 *   <= HEX                       a frame the device answers
 *   => HEX # mask RANGE[,RANGE]  REASON
 *
 * HEX is one whole frame (whitespace inside is ignored). A `# mask` comment on a `=>` line says
 * which bytes are random by nature and are not compared (the length still is), and why:
 * RANGE is `START..END` (byte offsets into the frame, END exclusive), `seq` (bytes 4..6), `crc`
 * (the last 4 bytes) or `payload`. `<=` lines are replayed as recorded, never masked. Any other
 * `# ...` after a frame is a remark.
 */
import { FLAG_ACK, FLAG_MORE, FLAG_RESPONSE, FRAME_CRC_BYTES, FRAME_HEADER_BYTES, type Frame } from '../../src/device/framing/frame-codec';
import { decodeTlv } from '../../src/device/framing/tlv';
import { Tag, commandName } from '../../src/device/protocol/commands';
import { DeviceStatus } from '../../src/device/protocol/status';

export type Direction = '=>' | '<=';

export interface MaskRange {
  start: number;
  /** Exclusive. */
  end: number;
}

export interface TranscriptLine {
  dir: Direction;
  bytes: Buffer;
  /** 1-based line number in the file (0 when built in memory). */
  lineNo: number;
  mask: MaskRange[];
  /** The reason given for the mask, or a remark. */
  note?: string;
  /** Full-line comments just above the frame. */
  comments: string[];
}

export interface Transcript {
  title: string;
  firstSeq: number;
  inputs: Map<string, Buffer>;
  lines: TranscriptLine[];
  /** Comments at the top of the file. */
  header: string[];
}

export class TranscriptFormatError extends Error {}

/** Resolve `seq`, `crc`, `payload`, `A..B` against a frame of `length` bytes. */
export function parseMaskRanges(spec: string, length: number): MaskRange[] {
  return spec.split(',').map((part) => {
    const p = part.trim();
    if (p === 'seq') return { start: 4, end: 6 };
    if (p === 'crc') return { start: length - FRAME_CRC_BYTES, end: length };
    if (p === 'payload') return { start: FRAME_HEADER_BYTES, end: length - FRAME_CRC_BYTES };
    const m = /^(\d+)\.\.(\d+)$/.exec(p);
    if (!m) throw new TranscriptFormatError(`bad mask range "${p}": expected START..END, seq, crc or payload`);
    const r = { start: Number(m[1]), end: Number(m[2]) };
    if (!(r.start < r.end && r.end <= length)) throw new TranscriptFormatError(`mask range ${p} is outside the ${length}-byte frame`);
    return r;
  });
}

export function formatMaskRanges(mask: readonly MaskRange[], length: number): string {
  return mask
    .map((r) => {
      if (r.start === 4 && r.end === 6) return 'seq';
      if (r.start === length - FRAME_CRC_BYTES && r.end === length) return 'crc';
      if (r.start === FRAME_HEADER_BYTES && r.end === length - FRAME_CRC_BYTES) return 'payload';
      return `${r.start}..${r.end}`;
    })
    .join(',');
}

export function parseTranscript(text: string, source = 'transcript'): Transcript {
  const t: Transcript = { title: '', firstSeq: 0, inputs: new Map(), lines: [], header: [] };
  let comments: string[] = [];
  let seenDirective = false;
  let seenSeq = false;
  const fail = (lineNo: number, message: string): never => {
    throw new TranscriptFormatError(`${source}:${lineNo}: ${message}`);
  };
  text.split('\n').forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      const c = line.slice(1).trim();
      // comments above the @ directives describe the file; later ones the frame below them
      if (seenDirective) comments.push(c);
      else t.header.push(c);
      return;
    }
    if (line.startsWith('@')) {
      seenDirective = true;
      const [key, ...rest] = line.slice(1).split(/\s+/);
      if (key === 'title') t.title = rest.join(' ');
      else if (key === 'first-seq') {
        const v = Number(rest[0]);
        if (!Number.isInteger(v) || v < 0 || v > 0xffff) fail(lineNo, `bad @first-seq ${rest[0]}`);
        t.firstSeq = v;
        seenSeq = true;
      } else if (key === 'input') {
        if (rest.length !== 2 || !/^([0-9a-f]{2})*$/i.test(rest[1]!)) fail(lineNo, 'expected @input NAME HEX');
        t.inputs.set(rest[0]!, Buffer.from(rest[1]!, 'hex'));
      } else fail(lineNo, `unknown directive @${key}`);
      return;
    }
    const m = /^(=>|<=)\s+([0-9a-fA-F\s]+?)\s*(?:#\s*(.*))?$/.exec(line);
    if (!m) fail(lineNo, `expected "=> HEX", "<= HEX", "# comment" or "@directive", got: ${line.slice(0, 60)}`);
    const hex = m![2]!.replace(/\s+/g, '');
    if (hex.length % 2 !== 0) fail(lineNo, 'odd number of hex digits');
    const bytes = Buffer.from(hex, 'hex');
    const dir = m![1] as Direction;
    let mask: MaskRange[] = [];
    let note: string | undefined;
    const remark = m![3]?.trim();
    if (remark) {
      const mm = /^mask\s+(\S+)\s*(.*)$/.exec(remark);
      if (mm) {
        if (dir !== '=>') fail(lineNo, 'only station frames (=>) can be masked: device frames are replayed as recorded');
        try {
          mask = parseMaskRanges(mm[1]!, bytes.length);
        } catch (err) {
          fail(lineNo, (err as Error).message);
        }
        note = mm[2]!.trim();
        if (!note) fail(lineNo, 'a mask needs its reason: "# mask RANGES why these bytes are random"');
      } else note = remark;
    }
    t.lines.push({ dir, bytes, lineNo, mask, note, comments });
    comments = [];
    seenDirective = true;
  });
  if (!seenSeq) throw new TranscriptFormatError(`${source}: no @first-seq`);
  return t;
}

export function formatTranscript(t: Transcript): string {
  const out: string[] = [];
  for (const h of t.header) out.push(`# ${h}`.trimEnd());
  out.push(`@title ${t.title}`);
  out.push(`@first-seq 0x${t.firstSeq.toString(16).padStart(4, '0')}`);
  for (const [name, value] of t.inputs) out.push(`@input ${name} ${value.toString('hex')}`);
  for (const l of t.lines) {
    out.push('');
    for (const c of l.comments) out.push(`# ${c}`.trimEnd());
    let s = `${l.dir} ${l.bytes.toString('hex')}`;
    if (l.mask.length > 0) s += ` # mask ${formatMaskRanges(l.mask, l.bytes.length)} ${l.note ?? ''}`.trimEnd();
    else if (l.note) s += ` # ${l.note}`;
    out.push(s);
  }
  return out.join('\n') + '\n';
}

/** Bytes equal outside the masked ranges (and of the same length). */
export function equalMasked(actual: Buffer, expected: Buffer, mask: readonly MaskRange[]): boolean {
  return firstDifference(actual, expected, mask) === -1;
}

/** The first offset where the two differ outside the mask; -1 when they match. */
export function firstDifference(actual: Buffer, expected: Buffer, mask: readonly MaskRange[]): number {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] === expected[i]) continue;
    if (mask.some((r) => i >= r.start && i < r.end)) continue;
    return i;
  }
  return actual.length === expected.length ? -1 : n;
}

/** Which frame field an offset falls in, for messages. */
export function fieldAt(offset: number, frameLength: number): string {
  if (offset < 2) return 'magic';
  if (offset === 2) return 'version';
  if (offset === 3) return 'flags';
  if (offset < 6) return 'seq';
  if (offset === 6) return 'command';
  if (offset === 7) return 'status';
  if (offset < FRAME_HEADER_BYTES) return 'length';
  if (offset >= frameLength - FRAME_CRC_BYTES) return 'crc';
  return `payload byte ${offset - FRAME_HEADER_BYTES}`;
}

const TAG_NAMES = new Map<number, string>(Object.entries(Tag).map(([k, v]) => [v, k]));
const STATUS_NAMES = new Map<number, string>(Object.entries(DeviceStatus).map(([k, v]) => [v, k]));

function showValue(v: Buffer): string {
  if (v.length > 0 && /^[\x20-\x7e]+$/.test(v.toString('latin1'))) return JSON.stringify(v.length > 40 ? `${v.toString('latin1', 0, 40)}...` : v.toString('latin1'));
  return v.length > 12 ? `${v.subarray(0, 12).toString('hex')}... (${v.length} bytes)` : v.toString('hex') || '(empty)';
}

/** One line saying what a frame is: `HELLO request seq=0x1000: VERSION_MIN=01 VERSION_MAX=01`. */
export function describeFrame(frame: Frame): string {
  const kind =
    frame.flags & FLAG_RESPONSE
      ? frame.flags & FLAG_ACK
        ? 'ack'
        : `reply ${STATUS_NAMES.get(frame.status) ?? `status 0x${frame.status.toString(16)}`}`
      : frame.flags & FLAG_ACK
        ? 'ack'
        : 'request';
  const more = frame.flags & FLAG_MORE ? ' (more fragments follow)' : '';
  let items: string;
  try {
    items = decodeTlv(frame.payload)
      .map((i) => `${TAG_NAMES.get(i.tag) ?? `tag 0x${i.tag.toString(16)}`}=${showValue(i.value)}`)
      .join(' ');
  } catch {
    items = `${frame.payload.length} bytes (a fragment, not TLV on its own)`;
  }
  return `${commandName(frame.command)} ${kind}${more} seq=0x${frame.seq.toString(16).padStart(4, '0')}${items ? `: ${items}` : ''}`;
}
