/**
 * DER, written by hand in one place (X.509 and PKCS#10 need only single-byte tags and definite
 * lengths): a strict reader that throws DerError (profile lint, KAT tests), a non-allocating span
 * reader that answers undefined instead of throwing (the CSR fast path, where every failure is
 * handed to the general path), and the writer's length and TLV helpers (the fast TBS template,
 * hand-made extensions). @peculiar/asn1-schema parses and serialises whole structures; these
 * exist where a linter must name the exact fault or a hot path must not allocate.
 */

export class DerError extends Error {}

export interface DerNode {
  /** The identifier octet (single-byte tags only: X.509 needs no other). */
  tag: number;
  constructed: boolean;
  /** Offset of the identifier octet in the buffer it was read from. */
  offset: number;
  headerLength: number;
  /** The whole TLV. */
  bytes: Buffer;
  /** The contents octets. */
  value: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const TAG_NAMES: Record<number, string> = {
  0x01: 'BOOLEAN',
  0x02: 'INTEGER',
  0x03: 'BIT STRING',
  0x04: 'OCTET STRING',
  0x05: 'NULL',
  0x06: 'OBJECT IDENTIFIER',
  0x0c: 'UTF8String',
  0x13: 'PrintableString',
  0x14: 'TeletexString',
  0x16: 'IA5String',
  0x17: 'UTCTime',
  0x18: 'GeneralizedTime',
  0x1c: 'UniversalString',
  0x1e: 'BMPString',
  0x30: 'SEQUENCE',
  0x31: 'SET',
};

export function tagName(tag: number): string {
  if (TAG_NAMES[tag]) return TAG_NAMES[tag]!;
  const cls = ['universal', 'application', 'context', 'private'][tag >> 6]!;
  return `${cls} [${tag & 0x1f}]${tag & 0x20 ? ' constructed' : ''} (0x${tag.toString(16).padStart(2, '0')})`;
}

/** Reads one TLV at `offset`. Definite, minimal lengths only (DER). */
export function readDer(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new DerError(`truncated at offset ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${offset}`);
  let p = offset + 1;
  const first = buf[p++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError(`indefinite length at offset ${offset} (BER, not DER)`);
    if (n > 4) throw new DerError(`length of ${n} octets at offset ${offset}`);
    if (p + n > buf.length) throw new DerError(`truncated length at offset ${offset}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p++]!;
    if (length < 0x80 || buf[offset + 2] === 0) throw new DerError(`non-minimal length at offset ${offset}`);
  }
  const headerLength = p - offset;
  if (p + length > buf.length) throw new DerError(`value at offset ${offset} runs past the end (${length} bytes announced)`);
  return {
    tag,
    constructed: (tag & 0x20) !== 0,
    offset,
    headerLength,
    bytes: buf.subarray(offset, p + length),
    value: buf.subarray(p, p + length),
  };
}

/** Reads exactly one TLV that fills `buf`. */
export function readDerExact(buf: Buffer): DerNode {
  const node = readDer(buf, 0);
  if (node.bytes.length !== buf.length) throw new DerError(`${buf.length - node.bytes.length} bytes after the end of the structure`);
  return node;
}

export function derChildren(node: DerNode): DerNode[] {
  if (!node.constructed) throw new DerError(`${tagName(node.tag)} is not constructed`);
  const out: DerNode[] = [];
  let p = 0;
  while (p < node.value.length) {
    const child = readDer(node.value, p);
    out.push(child);
    p += child.bytes.length;
  }
  return out;
}

export interface DerSpan {
  tag: number;
  /** First content byte. */
  start: number;
  /** One past the last content byte. */
  end: number;
}

/** One DER TLV at `off`, with minimal definite lengths inside `limit`; undefined otherwise. */
export function derSpanAt(buf: Buffer, off: number, limit: number): DerSpan | undefined {
  if (off + 2 > limit) return undefined;
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) return undefined;
  let len = buf[off + 1]!;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[p + i]!;
    p += n;
    if (len < 0x80 || (n > 1 && buf[off + 2] === 0)) return undefined;
  }
  if (p + len > limit) return undefined;
  return { tag, start: p, end: p + len };
}

/** DER length octets (definite form, minimal). */
export function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
}

/** One TLV from a tag and already-encoded contents. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  return Buffer.concat([Buffer.from([tag]), derLen(len), ...parts], 1 + derLen(len).length + len);
}

/**
 * The DER subjectPublicKeyInfo of a certificate, by walking its TLVs (no object graph: a general
 * ASN.1 parse of a whole certificate costs ~1.5 ms, pitfalls.md 14). Throws DerError when the
 * certificate is not strict DER.
 */
export function certificateSpkiDer(certificateDer: Buffer): Buffer {
  const tbs = derChildren(readDerExact(certificateDer))[0];
  if (!tbs || tbs.tag !== 0x30) throw new DerError('the certificate has no TBSCertificate');
  const fields = derChildren(tbs);
  // [0] version (absent for v1), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  const spki = fields[(fields[0]?.tag === 0xa0 ? 1 : 0) + 5];
  if (!spki || spki.tag !== 0x30) throw new DerError('the certificate has no subjectPublicKeyInfo');
  return Buffer.from(spki.bytes);
}
