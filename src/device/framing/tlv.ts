/**
 * Payloads are sequences of TLV items: tag (1 byte), length (2 bytes, big-endian), value.
 * A tag may repeat (e.g. one CERTIFICATE item per certificate, one MAC item per MAC).
 */
export interface TlvItem {
  tag: number;
  value: Buffer;
}

export class TlvError extends Error {}

const TLV_HEAD_BYTES = 3;

/** One buffer for the whole message (its size is known up front; no per-item head buffers). */
export function encodeTlv(items: readonly TlvItem[]): Buffer {
  let size = 0;
  for (const { tag, value } of items) {
    if (tag < 0 || tag > 0xff) throw new TlvError(`tag ${tag} out of range`);
    if (value.length > 0xffff) throw new TlvError(`value of tag 0x${tag.toString(16)} too long`);
    size += TLV_HEAD_BYTES + value.length;
  }
  // every byte is written below, so no zero fill
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const { tag, value } of items) {
    out[off] = tag;
    out.writeUInt16BE(value.length, off + 1);
    off += TLV_HEAD_BYTES;
    out.set(value, off);
    off += value.length;
  }
  return out;
}

/**
 * The items of a payload. Their values are views of `payload`, not copies: a payload is a
 * message this side received and owns (a frame decoder's copy or the join of its fragments),
 * and nothing writes into it.
 */
export function decodeTlv(payload: Buffer): TlvItem[] {
  const items: TlvItem[] = [];
  let off = 0;
  while (off < payload.length) {
    if (off + TLV_HEAD_BYTES > payload.length) throw new TlvError(`truncated TLV header at offset ${off}`);
    const tag = payload[off]!;
    const len = payload.readUInt16BE(off + 1);
    off += TLV_HEAD_BYTES;
    if (off + len > payload.length) throw new TlvError(`TLV 0x${tag.toString(16)} runs past the payload end`);
    items.push({ tag, value: payload.subarray(off, off + len) });
    off += len;
  }
  return items;
}

/** Typed read access to a decoded payload. */
export class TlvReader {
  constructor(readonly items: readonly TlvItem[]) {}

  static from(payload: Buffer): TlvReader {
    return new TlvReader(decodeTlv(payload));
  }

  optional(tag: number): Buffer | undefined {
    for (const i of this.items) if (i.tag === tag) return i.value;
    return undefined;
  }

  required(tag: number, name: string): Buffer {
    const v = this.optional(tag);
    if (v === undefined) throw new TlvError(`missing ${name} (tag 0x${tag.toString(16).padStart(2, '0')})`);
    return v;
  }

  all(tag: number): Buffer[] {
    return this.items.filter((i) => i.tag === tag).map((i) => i.value);
  }

  string(tag: number, name: string): string {
    return this.required(tag, name).toString('utf8');
  }

  u8(tag: number, name: string): number {
    const v = this.required(tag, name);
    if (v.length !== 1) throw new TlvError(`${name} must be 1 byte`);
    return v[0]!;
  }

  u16(tag: number, name: string): number {
    const v = this.required(tag, name);
    if (v.length !== 2) throw new TlvError(`${name} must be 2 bytes`);
    return v.readUInt16BE(0);
  }

  u32(tag: number, name: string): number {
    const v = this.required(tag, name);
    if (v.length !== 4) throw new TlvError(`${name} must be 4 bytes`);
    return v.readUInt32BE(0);
  }
}

export const tlv = {
  bytes: (tag: number, value: Uint8Array): TlvItem => ({ tag, value: Buffer.from(value) }),
  string: (tag: number, value: string): TlvItem => ({ tag, value: Buffer.from(value, 'utf8') }),
  u8: (tag: number, value: number): TlvItem => ({ tag, value: Buffer.from([value & 0xff]) }),
  u16: (tag: number, value: number): TlvItem => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    return { tag, value: b };
  },
  u32: (tag: number, value: number): TlvItem => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value >>> 0);
    return { tag, value: b };
  },
};
