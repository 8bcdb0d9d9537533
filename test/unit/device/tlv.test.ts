import { describe, expect, it } from 'vitest';
import { TlvReader, decodeTlv, encodeTlv, tlv } from '../../../src/device/framing/tlv';

describe('TLV payloads', () => {
  it('round-trips repeated tags in order', () => {
    const items = [tlv.u8(1, 7), tlv.string(2, 'héllo'), tlv.bytes(3, Buffer.from([1, 2])), tlv.bytes(3, Buffer.from([3])), tlv.u32(4, 0xdeadbeef), tlv.u16(5, 513)];
    const r = TlvReader.from(encodeTlv(items));
    expect(r.u8(1, 'a')).toBe(7);
    expect(r.string(2, 'b')).toBe('héllo');
    expect(r.all(3).map((b) => b.toString('hex'))).toEqual(['0102', '03']);
    expect(r.u32(4, 'd')).toBe(0xdeadbeef);
    expect(r.u16(5, 'e')).toBe(513);
  });

  it('names what is missing or malformed', () => {
    expect(() => TlvReader.from(Buffer.alloc(0)).required(0x21, 'PUBLIC_KEY')).toThrow('missing PUBLIC_KEY (tag 0x21)');
    expect(() => decodeTlv(Buffer.from([1, 0, 5, 0]))).toThrow(/runs past/);
    expect(() => decodeTlv(Buffer.from([1, 0]))).toThrow(/truncated/);
    expect(() => TlvReader.from(encodeTlv([tlv.u16(1, 1)])).u8(1, 'X')).toThrow('X must be 1 byte');
  });
});
