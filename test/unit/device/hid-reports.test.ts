import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_OVERHEAD_BYTES, FrameDecoder, encodeFrame } from '../../../src/device/framing/frame-codec';
import {
  HID_CMD_MESSAGE,
  HID_CONT_DATA_BYTES,
  HID_INIT_DATA_BYTES,
  HID_MAX_MESSAGE_BYTES,
  HID_REPORT_BYTES,
  HidReportAssembler,
  HidReportCodec,
  HidReportError,
  hidReportCount,
  type HidReportErrorCode,
} from '../../../src/device/framing/hid-reports';

const codec = new HidReportCodec();
const ALL_CODES: HidReportErrorCode[] = [
  'HID_BAD_REPORT_SIZE',
  'HID_BAD_CHANNEL',
  'HID_BAD_COMMAND',
  'HID_BAD_SEQUENCE',
  'HID_UNEXPECTED_CONTINUATION',
  'HID_LENGTH_OVERFLOW',
];

const channelArb = fc.integer({ min: 0, max: 0xffffffff });
/** Lengths biased to the report boundaries and the maximum. */
const lengthArb = fc.oneof(
  fc.constantFrom(0, 1, HID_INIT_DATA_BYTES - 1, HID_INIT_DATA_BYTES, HID_INIT_DATA_BYTES + 1, HID_INIT_DATA_BYTES + HID_CONT_DATA_BYTES, HID_INIT_DATA_BYTES + HID_CONT_DATA_BYTES + 1, HID_MAX_MESSAGE_BYTES - 1, HID_MAX_MESSAGE_BYTES),
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: HID_MAX_MESSAGE_BYTES }),
);
const messageArb = lengthArb.chain((n) => fc.uint8Array({ minLength: n, maxLength: n }).map((a) => Buffer.from(a)));

/** Push and capture the outcome: the message, undefined, or the HidReportError's code. */
function push(a: HidReportAssembler, report: Uint8Array): Buffer | undefined | { code: HidReportErrorCode } {
  try {
    return a.push(report);
  } catch (err) {
    expect(err).toBeInstanceOf(HidReportError);
    return { code: (err as HidReportError).code };
  }
}

function rejectionOf(a: HidReportAssembler, report: Uint8Array): HidReportErrorCode {
  const r = push(a, report);
  if (!r || Buffer.isBuffer(r)) throw new Error(`expected a rejection, got ${r === undefined ? 'undefined' : `a ${r.length}-byte message`}`);
  return r.code;
}

function report(channel: number, byte4: number, rest: number[] = []): Buffer {
  const r = Buffer.alloc(HID_REPORT_BYTES);
  r.writeUInt32BE(channel, 0);
  r[4] = byte4;
  Buffer.from(rest).copy(r, 5);
  return r;
}

describe('HidReportCodec', () => {
  it('round-trips any message up to the maximum on any channel, in exactly-64-byte zero-padded reports', () => {
    fc.assert(
      fc.property(messageArb, channelArb, (message, channel) => {
        const reports = codec.encode(message, channel);
        expect(reports.length).toBe(hidReportCount(message.length));
        reports.forEach((r, i) => {
          expect(r.length).toBe(HID_REPORT_BYTES);
          expect(r.readUInt32BE(0)).toBe(channel);
          if (i === 0) {
            expect(r[4]).toBe(HID_CMD_MESSAGE);
            expect(r.readUInt16BE(5)).toBe(message.length);
          } else {
            expect(r[4]).toBe(i - 1);
          }
        });
        // padding after the message's last byte is zero
        const lastData = (message.length - HID_INIT_DATA_BYTES) % HID_CONT_DATA_BYTES;
        const last = reports[reports.length - 1]!;
        const used = reports.length === 1 ? 7 + message.length : 5 + (lastData === 0 ? HID_CONT_DATA_BYTES : lastData);
        expect(last.subarray(used).every((b) => b === 0)).toBe(true);

        const a = new HidReportAssembler(channel);
        const out = reports.map((r) => a.push(r));
        expect(out.slice(0, -1).every((m) => m === undefined)).toBe(true);
        expect(out[out.length - 1]).toEqual(message);
        expect(a.inProgress).toBe(false);
        expect(a.stats).toEqual({ reports: reports.length, messages: 1, abandoned: 0, rejected: 0 });
      }),
      { numRuns: 200 },
    );
  });

  it('carries v1 frames with payloads up to the HID limit (7595 bytes) to the FrameDecoder unchanged', () => {
    const payloadArb = fc.integer({ min: 0, max: HID_MAX_MESSAGE_BYTES - FRAME_OVERHEAD_BYTES }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
    fc.assert(
      fc.property(payloadArb, fc.integer({ min: 0, max: 0xffff }), channelArb, (payload, seq, channel) => {
        const frame = { version: 1, flags: 0, seq, command: 0x21, status: 0, payload: Buffer.from(payload) };
        const a = new HidReportAssembler(channel);
        const decoder = new FrameDecoder();
        const frames = codec.encode(encodeFrame(frame), channel).flatMap((r) => {
          const m = a.push(r);
          return m ? decoder.push(m) : [];
        });
        expect(frames).toEqual([frame]);
        expect(decoder.pendingBytes).toBe(0);
      }),
      { numRuns: 50 },
    );
  });

  it('has a known encoding', () => {
    const [r, ...rest] = codec.encode(Buffer.from('hello'), 0x01020304);
    expect(rest).toHaveLength(0);
    expect(r!.subarray(0, 12).toString('hex')).toBe('01020304' + '81' + '0005' + '68656c6c6f');
    expect(r!.subarray(12).every((b) => b === 0)).toBe(true);

    const two = codec.encode(Buffer.alloc(HID_INIT_DATA_BYTES + 1, 0xee), 0xcafef00d);
    expect(two).toHaveLength(2);
    expect(two[0]!.subarray(0, 7).toString('hex')).toBe('cafef00d' + '81' + '003a');
    expect(two[1]!.subarray(0, 6).toString('hex')).toBe('cafef00d' + '00' + 'ee');
  });

  it('documents its maximum: 64-7 + 128*(64-5) = 7609 bytes in 129 reports, the last with seq 0x7f', () => {
    expect(HID_MAX_MESSAGE_BYTES).toBe(64 - 7 + 128 * (64 - 5));
    expect(HID_MAX_MESSAGE_BYTES).toBe(7609);
    const reports = codec.encode(Buffer.alloc(HID_MAX_MESSAGE_BYTES, 1), 7);
    expect(reports).toHaveLength(129);
    expect(reports[128]![4]).toBe(0x7f);
    expect(() => codec.encode(Buffer.alloc(HID_MAX_MESSAGE_BYTES + 1), 7)).toThrow(expect.objectContaining({ code: 'HID_LENGTH_OVERFLOW' }));
    expect(() => codec.encode(Buffer.alloc(1), 2 ** 32)).toThrow(expect.objectContaining({ code: 'HID_BAD_CHANNEL' }));
    expect(() => codec.encode(Buffer.alloc(1), -1)).toThrow(expect.objectContaining({ code: 'HID_BAD_CHANNEL' }));
  });
});

describe('HidReportAssembler', () => {
  it('reassembles messages across interleaved garbage: other channels, stray continuations, abandoned partial messages', () => {
    const garbageArb = fc.oneof(
      // any report on another channel
      fc.tuple(channelArb, fc.uint8Array({ minLength: 60, maxLength: 60 })).map(([c, rest]) => ({ kind: 'other-channel' as const, channel: c, rest })),
      // a continuation on our channel (only harmless between messages)
      fc.tuple(fc.integer({ min: 0, max: 0x7f }), fc.uint8Array({ minLength: 59, maxLength: 59 })).map(([seq, rest]) => ({ kind: 'stray' as const, seq, rest })),
    );
    fc.assert(
      fc.property(
        channelArb,
        fc.array(messageArb.filter((m) => m.length < 800), { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), garbageArb), { maxLength: 12 }),
        fc.option(messageArb.filter((m) => m.length > HID_INIT_DATA_BYTES && m.length < 800)),
        (channel, messages, garbage, abandonedPrefix) => {
          const streams = messages.map((m) => codec.encode(m, channel));
          // an unfinished message first: the next init abandons it
          const prefix = abandonedPrefix ? codec.encode(abandonedPrefix, channel).slice(0, -1) : [];
          const ours = [...prefix, ...streams.flat()];
          const boundaries = new Set<number>([prefix.length]); // indexes before which a new message begins
          let at = prefix.length;
          for (const s of streams) boundaries.add((at += s.length));
          // insert garbage; a stray continuation only at a message boundary (between messages)
          const sequence: Array<{ report: Buffer; expect?: HidReportErrorCode }> = ours.map((r) => ({ report: r }));
          const insertions = garbage
            .map(([pos, g]) => {
              if (g.kind === 'other-channel') {
                const c = g.channel === channel ? (channel + 1) >>> 0 : g.channel;
                const r = Buffer.alloc(HID_REPORT_BYTES);
                r.writeUInt32BE(c, 0);
                Buffer.from(g.rest).copy(r, 4);
                return { pos: pos % (ours.length + 1), item: { report: r, expect: 'HID_BAD_CHANNEL' as const } };
              }
              const b = [...boundaries].filter((x) => x > prefix.length || prefix.length === 0);
              const pos2 = b.length ? b[pos % b.length]! : ours.length;
              return { pos: pos2, item: { report: report(channel, g.seq, [...g.rest]), expect: 'HID_UNEXPECTED_CONTINUATION' as const } };
            })
            .sort((x, y) => y.pos - x.pos);
          for (const { pos, item } of insertions) sequence.splice(pos, 0, item);

          const a = new HidReportAssembler(channel);
          const got: Buffer[] = [];
          for (const { report: r, expect: code } of sequence) {
            const out = push(a, r);
            if (code) {
              expect(out).toEqual({ code });
            } else if (Buffer.isBuffer(out)) {
              got.push(out);
            } else {
              expect(out).toBeUndefined();
            }
          }
          expect(got).toEqual(messages);
          expect(a.inProgress).toBe(false);
          expect(a.stats.abandoned).toBe(prefix.length > 0 ? 1 : 0);
          expect(a.stats.rejected).toBe(insertions.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects anything with a typed HidReportError and never another exception', () => {
    fc.assert(
      fc.property(channelArb, fc.array(fc.uint8Array({ minLength: 0, maxLength: 80 }), { maxLength: 20 }), (channel, reports) => {
        const a = new HidReportAssembler(channel);
        for (const r of reports) {
          const out = push(a, r);
          if (out && !Buffer.isBuffer(out)) expect(ALL_CODES).toContain(out.code);
        }
      }),
      { numRuns: 300 },
    );
    // and with our channel in front, so the deeper checks are reached
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 60, maxLength: 60 }), { maxLength: 30 }), (tails) => {
        const a = new HidReportAssembler(9);
        for (const t of tails) {
          const r = Buffer.concat([Buffer.from([0, 0, 0, 9]), t]);
          const out = push(a, r);
          if (out && !Buffer.isBuffer(out)) expect(ALL_CODES.filter((c) => c !== 'HID_BAD_CHANNEL' && c !== 'HID_BAD_REPORT_SIZE')).toContain(out.code);
        }
      }),
      { numRuns: 300 },
    );
  });

  describe('each rejection, and recovery on the next init report', () => {
    const channel = 0x11223344;
    const message = Buffer.from(Array.from({ length: 200 }, (_, i) => i & 0xff)); // init + 3 continuations
    const reports = () => codec.encode(message, channel);

    function expectRecovers(a: HidReportAssembler): void {
      const rs = reports();
      const out = rs.map((r) => a.push(r));
      expect(out[out.length - 1]).toEqual(message);
    }

    it('HID_BAD_REPORT_SIZE: not 64 bytes; a message in progress is kept', () => {
      const a = new HidReportAssembler(channel);
      const [init, ...conts] = reports();
      a.push(init!);
      expect(rejectionOf(a, Buffer.alloc(63))).toBe('HID_BAD_REPORT_SIZE');
      expect(rejectionOf(a, Buffer.alloc(65))).toBe('HID_BAD_REPORT_SIZE');
      expect(conts.map((c) => a.push(c)).pop()).toEqual(message);
    });

    it('HID_BAD_CHANNEL: another channel; a message in progress is kept', () => {
      const a = new HidReportAssembler(channel);
      const [init, c0, ...rest] = reports();
      a.push(init!);
      a.push(c0!);
      expect(rejectionOf(a, codec.encode(Buffer.from('x'), channel + 1)[0]!)).toBe('HID_BAD_CHANNEL');
      expect(rejectionOf(a, report(0xffffffff, 1))).toBe('HID_BAD_CHANNEL');
      expect(rest.map((c) => a.push(c)).pop()).toEqual(message);
    });

    it('HID_UNEXPECTED_CONTINUATION: a continuation with nothing in progress', () => {
      const a = new HidReportAssembler(channel);
      expect(rejectionOf(a, reports()[1]!)).toBe('HID_UNEXPECTED_CONTINUATION');
      expectRecovers(a);
    });

    it('HID_BAD_SEQUENCE: a skipped or repeated seq drops the message; its remaining reports are unexpected', () => {
      const a = new HidReportAssembler(channel);
      const [init, c0, c1, c2] = reports();
      a.push(init!);
      expect(rejectionOf(a, c1!)).toBe('HID_BAD_SEQUENCE'); // skipped c0
      expect(a.inProgress).toBe(false);
      expect(rejectionOf(a, c2!)).toBe('HID_UNEXPECTED_CONTINUATION');
      expectRecovers(a);

      const b = new HidReportAssembler(channel);
      b.push(init!);
      b.push(c0!);
      expect(rejectionOf(b, c0!)).toBe('HID_BAD_SEQUENCE'); // repeated c0
      expectRecovers(b);
    });

    it('HID_LENGTH_OVERFLOW: a declared length above 7609; an init ends a message in progress', () => {
      const a = new HidReportAssembler(channel);
      expect(rejectionOf(a, report(channel, HID_CMD_MESSAGE, [(HID_MAX_MESSAGE_BYTES + 1) >> 8, (HID_MAX_MESSAGE_BYTES + 1) & 0xff]))).toBe('HID_LENGTH_OVERFLOW');
      a.push(reports()[0]!);
      expect(rejectionOf(a, report(channel, HID_CMD_MESSAGE, [0xff, 0xff]))).toBe('HID_LENGTH_OVERFLOW');
      expect(a.inProgress).toBe(false);
      expect(a.stats.abandoned).toBe(1);
      expectRecovers(a);
      // exactly the maximum is accepted
      const max = new HidReportAssembler(channel);
      expect(push(max, report(channel, HID_CMD_MESSAGE, [HID_MAX_MESSAGE_BYTES >> 8, HID_MAX_MESSAGE_BYTES & 0xff]))).toBeUndefined();
    });

    it('HID_BAD_COMMAND: an init report with another command', () => {
      const a = new HidReportAssembler(channel);
      expect(rejectionOf(a, report(channel, 0xbf, [0, 1, 0x7f]))).toBe('HID_BAD_COMMAND');
      expectRecovers(a);
    });

    it('a new init abandons an unfinished message without an error', () => {
      const a = new HidReportAssembler(channel);
      const [init, c0] = reports();
      a.push(init!);
      a.push(c0!);
      expectRecovers(a);
      expect(a.stats).toMatchObject({ messages: 1, abandoned: 1, rejected: 0 });
    });

    it('an empty message is one init report', () => {
      const a = new HidReportAssembler(channel);
      const [only, ...none] = codec.encode(Buffer.alloc(0), channel);
      expect(none).toHaveLength(0);
      expect(a.push(only!)).toEqual(Buffer.alloc(0));
    });
  });
});
