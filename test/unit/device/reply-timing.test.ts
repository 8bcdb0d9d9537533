import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../../src/device/framing/frame-codec';
import { ReplyTiming } from '../../../src/device/transport/reply-timing';

const request = (seq: number, command: number, payload: Buffer, flags = 0) => encodeFrame({ version: 1, flags, seq, command, status: 0, payload });

describe('ReplyTiming', () => {
  it('gives requests that differ only in seq one shape; short payloads, flags and length tell shapes apart', () => {
    const t = new ReplyTiming();
    const readChain = t.shapeOf(request(1, 0x30, Buffer.from([0x30, 0, 1, 2])));
    expect(readChain).toBeDefined();
    expect(t.shapeOf(request(2, 0x30, Buffer.from([0x30, 0, 1, 2])))).toBe(readChain);
    expect(t.shapeOf(request(3, 0x30, Buffer.from([0x30, 0, 1, 3])))).not.toBe(readChain);
    expect(t.shapeOf(request(4, 0x30, Buffer.from([0x30, 0, 1, 2]), 0x02))).not.toBe(readChain);
    // long payloads: the length is the shape (a nonce differs every time)
    expect(t.shapeOf(request(5, 0x31, Buffer.alloc(40, 1)))).toBe(t.shapeOf(request(6, 0x31, Buffer.alloc(40, 2))));
    expect(t.shapeOf(request(7, 0x31, Buffer.alloc(40)))).not.toBe(t.shapeOf(request(8, 0x31, Buffer.alloc(41))));
  });

  it('knows no shape for bytes that are not exactly one v1 frame', () => {
    const t = new ReplyTiming();
    const f = request(1, 0x02, Buffer.alloc(0));
    expect(t.shapeOf(f.subarray(0, f.length - 1))).toBeUndefined();
    expect(t.shapeOf(Buffer.concat([f, f]))).toBeUndefined();
    expect(t.shapeOf(Buffer.from('hello, world'))).toBeUndefined();
  });

  it('foretells after two sightings, the earliest end seen; watches one request in eight again; forgets on demand', () => {
    const t = new ReplyTiming();
    expect(t.expect('s')).toBeUndefined();
    t.learn('s', 40);
    expect(t.expect('s')).toBeUndefined();
    t.learn('s', 25);
    const hints = Array.from({ length: 16 }, () => t.expect('s'));
    expect(hints.filter((h) => h === undefined)).toHaveLength(2);
    expect(hints.filter((h) => h === 25)).toHaveLength(14);
    // a later, slower sighting does not make it wait longer
    t.learn('s', 90);
    expect(t.expect('s')).toBe(25);
    t.forget('s');
    expect(t.expect('s')).toBeUndefined();
  });
});
