/**
 * Protocol v1 over USB HID: the byte stream cut into 64-byte reports (docs/device-protocol-hid.md).
 * Pure: no timers, no I/O. The v1 frames (frame-codec.ts) are the message layer, shared with
 * serial; this file only carries one message (one frame) across 64-byte reports and back.
 *
 * The layout follows CTAPHID (FIDO CTAP, "USB message and packet structure"); Ledger's HID
 * framing does the same job with a 2-byte channel and a 2-byte sequence number.
 *
 *   init report          | channel u32 | cmd (bit 7 set) | length u16 | data (57 bytes)     |
 *                          0             4                 5            7                    64
 *   continuation report  | channel u32 | seq 0..0x7f     | data (59 bytes)                   |
 *                          0             4                 5                                   64
 *
 * All integers big-endian; the last report is zero padded to 64 bytes. Bit 7 of byte 4 tells
 * the two kinds apart. A message of `length` bytes takes one init report and then continuation
 * reports with seq 0, 1, 2, ... With seq limited to 0..0x7f, one message is at most
 * 57 + 128 * 59 = 7609 bytes (HID_MAX_MESSAGE_BYTES): less than the largest v1 frame (8206
 * bytes), so over HID a v1 payload is at most 7609 - 14 = 7595 bytes.
 *
 * A report-id byte (the 0x00 that hidapi wants in front of every output report of a device
 * without numbered reports) is not part of a report here: the transport adds and strips it.
 */

/** Bytes in one report, without any report-id byte (a full-speed USB HID interrupt report). */
export const HID_REPORT_BYTES = 64;
export const HID_CHANNEL_BYTES = 4;
/** channel + command + length */
export const HID_INIT_HEADER_BYTES = 7;
/** channel + sequence number */
export const HID_CONT_HEADER_BYTES = 5;
export const HID_INIT_DATA_BYTES = HID_REPORT_BYTES - HID_INIT_HEADER_BYTES; // 57
export const HID_CONT_DATA_BYTES = HID_REPORT_BYTES - HID_CONT_HEADER_BYTES; // 59
/** Continuation sequence numbers run 0..0x7f: bit 7 marks an init report. */
export const HID_MAX_SEQUENCE = 0x7f;
/** The largest message one init report and 128 continuation reports carry: 7609 bytes. */
export const HID_MAX_MESSAGE_BYTES = HID_INIT_DATA_BYTES + (HID_MAX_SEQUENCE + 1) * HID_CONT_DATA_BYTES;
/** The one command of this framing: "the data is a protocol v1 message" (bit 7 set: init). */
export const HID_CMD_MESSAGE = 0x81;
export const HID_INIT_FLAG = 0x80;

export type HidReportErrorCode =
  /** not exactly 64 bytes */
  | 'HID_BAD_REPORT_SIZE'
  /** a report on another channel (or, when encoding, a channel that is not a u32) */
  | 'HID_BAD_CHANNEL'
  /** an init report whose command is not HID_CMD_MESSAGE */
  | 'HID_BAD_COMMAND'
  /** a continuation report whose seq is not the next one expected */
  | 'HID_BAD_SEQUENCE'
  /** a continuation report with no message in progress */
  | 'HID_UNEXPECTED_CONTINUATION'
  /** a declared (or, when encoding, an actual) length above HID_MAX_MESSAGE_BYTES */
  | 'HID_LENGTH_OVERFLOW';

export class HidReportError extends Error {
  constructor(
    readonly code: HidReportErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HidReportError';
  }
}

export type HidReport =
  | { kind: 'init'; channel: number; command: number; length: number; data: Buffer }
  | { kind: 'continuation'; channel: number; sequence: number; data: Buffer };

/** How many reports a message of `messageBytes` takes (an empty message still takes one). */
export function hidReportCount(messageBytes: number): number {
  return messageBytes <= HID_INIT_DATA_BYTES ? 1 : 1 + Math.ceil((messageBytes - HID_INIT_DATA_BYTES) / HID_CONT_DATA_BYTES);
}

function checkChannel(channel: number): void {
  if (!Number.isInteger(channel) || channel < 0 || channel > 0xffffffff) {
    throw new HidReportError('HID_BAD_CHANNEL', `HID channel ${channel} is not a 32-bit unsigned integer`);
  }
}

export class HidReportCodec {
  /** Cut one message into zero-padded 64-byte reports on `channel`. */
  encode(message: Uint8Array, channel: number): Buffer[] {
    checkChannel(channel);
    if (message.length > HID_MAX_MESSAGE_BYTES) {
      throw new HidReportError(
        'HID_LENGTH_OVERFLOW',
        `a message of ${message.length} bytes exceeds the ${HID_MAX_MESSAGE_BYTES} bytes one HID transfer can carry`,
      );
    }
    const reports: Buffer[] = [];
    const init = Buffer.alloc(HID_REPORT_BYTES);
    init.writeUInt32BE(channel, 0);
    init[4] = HID_CMD_MESSAGE;
    init.writeUInt16BE(message.length, 5);
    let offset = Math.min(message.length, HID_INIT_DATA_BYTES);
    init.set(message.subarray(0, offset), HID_INIT_HEADER_BYTES);
    reports.push(init);
    for (let seq = 0; offset < message.length; seq++) {
      const cont = Buffer.alloc(HID_REPORT_BYTES);
      cont.writeUInt32BE(channel, 0);
      cont[4] = seq;
      const end = Math.min(message.length, offset + HID_CONT_DATA_BYTES);
      cont.set(message.subarray(offset, end), HID_CONT_HEADER_BYTES);
      reports.push(cont);
      offset = end;
    }
    return reports;
  }

  /** Parse one report; only its size is checked here (the assembler checks the rest). */
  decode(report: Uint8Array): HidReport {
    if (report.length !== HID_REPORT_BYTES) {
      throw new HidReportError('HID_BAD_REPORT_SIZE', `a HID report of ${report.length} bytes, expected ${HID_REPORT_BYTES}`);
    }
    const r = Buffer.from(report.buffer, report.byteOffset, report.length);
    const channel = r.readUInt32BE(0);
    const b4 = r[4]!;
    if (b4 & HID_INIT_FLAG) {
      return { kind: 'init', channel, command: b4, length: r.readUInt16BE(5), data: r.subarray(HID_INIT_HEADER_BYTES) };
    }
    return { kind: 'continuation', channel, sequence: b4, data: r.subarray(HID_CONT_HEADER_BYTES) };
  }
}

export interface HidAssemblerStats {
  reports: number;
  messages: number;
  /** Messages left unfinished because a new init report arrived on the channel. */
  abandoned: number;
  rejected: number;
}

interface PartialMessage {
  buffer: Buffer;
  filled: number;
  nextSequence: number;
}

/**
 * Reassembles the messages of one channel from reports, in order. Each `push` returns the message
 * that report completes, or undefined; a report that breaks the rules throws a HidReportError:
 *
 * | code | the report | a message in progress |
 * |---|---|---|
 * | HID_BAD_REPORT_SIZE | ignored | kept |
 * | HID_BAD_CHANNEL | ignored (another channel's traffic) | kept |
 * | HID_UNEXPECTED_CONTINUATION | ignored (nothing in progress) | — |
 * | HID_BAD_SEQUENCE | ignored | dropped |
 * | HID_BAD_COMMAND, HID_LENGTH_OVERFLOW | ignored | dropped (an init on the channel ends it) |
 *
 * Recovery: a valid init report on the channel always starts a new message; one that arrives
 * while another is unfinished abandons it (counted in `stats.abandoned`, not an error).
 * Bytes after `length` in the last report (padding) are ignored.
 */
export class HidReportAssembler {
  private partial: PartialMessage | undefined;
  readonly stats: HidAssemblerStats = { reports: 0, messages: 0, abandoned: 0, rejected: 0 };

  constructor(
    readonly channel: number,
    private readonly codec = new HidReportCodec(),
  ) {
    checkChannel(channel);
  }

  push(report: Uint8Array): Buffer | undefined {
    this.stats.reports++;
    try {
      return this.accept(this.codec.decode(report));
    } catch (err) {
      this.stats.rejected++;
      throw err;
    }
  }

  /** True while a message has begun and not yet completed. */
  get inProgress(): boolean {
    return this.partial !== undefined;
  }

  /** Forget a message in progress. */
  reset(): void {
    this.partial = undefined;
  }

  private accept(r: HidReport): Buffer | undefined {
    if (r.channel !== this.channel) {
      throw new HidReportError('HID_BAD_CHANNEL', `a HID report on channel ${hex32(r.channel)}, expected ${hex32(this.channel)}`);
    }
    if (r.kind === 'init') {
      if (this.partial) {
        this.stats.abandoned++;
        this.partial = undefined;
      }
      if (r.command !== HID_CMD_MESSAGE) {
        throw new HidReportError('HID_BAD_COMMAND', `a HID init report with command 0x${r.command.toString(16)}, expected 0x${HID_CMD_MESSAGE.toString(16)}`);
      }
      if (r.length > HID_MAX_MESSAGE_BYTES) {
        throw new HidReportError('HID_LENGTH_OVERFLOW', `a HID message declares ${r.length} bytes, more than the ${HID_MAX_MESSAGE_BYTES} bytes a message can have`);
      }
      const first = Math.min(r.length, HID_INIT_DATA_BYTES);
      if (first === r.length) return this.complete(Buffer.from(r.data.subarray(0, first)));
      const buffer = Buffer.alloc(r.length);
      r.data.copy(buffer, 0, 0, first);
      this.partial = { buffer, filled: first, nextSequence: 0 };
      return undefined;
    }
    const p = this.partial;
    if (!p) {
      throw new HidReportError('HID_UNEXPECTED_CONTINUATION', `a HID continuation report (seq ${r.sequence}) with no message in progress`);
    }
    if (r.sequence !== p.nextSequence) {
      this.partial = undefined;
      throw new HidReportError('HID_BAD_SEQUENCE', `a HID continuation report with seq ${r.sequence}, expected ${p.nextSequence}; the message is dropped`);
    }
    const take = Math.min(p.buffer.length - p.filled, HID_CONT_DATA_BYTES);
    r.data.copy(p.buffer, p.filled, 0, take);
    p.filled += take;
    p.nextSequence++;
    if (p.filled < p.buffer.length) return undefined;
    this.partial = undefined;
    return this.complete(p.buffer);
  }

  private complete(message: Buffer): Buffer {
    this.stats.messages++;
    return message;
  }
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
