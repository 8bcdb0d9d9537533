/** Small byte helpers shared by codecs. No I/O. */

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Buffer {
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new TypeError('not an even-length hex string');
  return Buffer.from(hex, 'hex');
}

export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

/** Overwrite a buffer holding secret material once it is no longer needed. */
export function zeroise(bytes: Uint8Array): void {
  bytes.fill(0);
}
