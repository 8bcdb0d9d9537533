/**
 * PKCS#11 CKM_ECDSA returns the raw r||s concatenation; X.509, CSRs and CMS need the DER
 * `SEQUENCE { INTEGER r, INTEGER s }`. Written by hand because it is a two-integer structure
 * on the signing hot path, and an ASN.1 library adds an object graph per signature.
 */

function derInteger(unsigned: Uint8Array): Buffer {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  let body = Buffer.from(unsigned.subarray(start));
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

export function rawEcdsaToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 132) {
    throw new RangeError(`raw ECDSA signature has odd or bad length ${raw.length}`);
  }
  const half = raw.length / 2;
  const r = derInteger(raw.subarray(0, half));
  const s = derInteger(raw.subarray(half));
  const len = r.length + s.length;
  const header = len < 0x80 ? Buffer.from([0x30, len]) : Buffer.from([0x30, 0x81, len]);
  return Buffer.concat([header, r, s]);
}
