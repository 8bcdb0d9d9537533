/**
 * Messages larger than the receiver's MAX_PAYLOAD travel as fragments: every fragment but the
 * last carries FLAG_MORE, and the receiver acknowledges each one (an empty FLAG_ACK frame with
 * the same seq and command) before the sender sends the next. Pure: no timers, no I/O.
 */
export const MAX_MESSAGE_BYTES = 65536;
/** Nobody may announce a frame limit below this: HELLO itself must fit in one frame. */
export const MIN_PAYLOAD_BYTES = 64;

export class FragmentError extends Error {
  constructor(
    readonly code: 'MESSAGE_TOO_LARGE' | 'FRAGMENT_MISMATCH',
    message: string,
  ) {
    super(message);
  }
}

export function splitMessage(payload: Buffer, maxPayloadBytes: number): Buffer[] {
  if (payload.length > MAX_MESSAGE_BYTES) {
    throw new FragmentError('MESSAGE_TOO_LARGE', `a message of ${payload.length} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
  }
  const size = Math.max(MIN_PAYLOAD_BYTES, maxPayloadBytes);
  if (payload.length <= size) return [payload];
  const parts: Buffer[] = [];
  for (let off = 0; off < payload.length; off += size) parts.push(payload.subarray(off, Math.min(off + size, payload.length)));
  return parts;
}

/** Reassembles one message from its fragments, in order, for one (seq, command). */
export class MessageAssembler {
  private parts: Buffer[] = [];
  private total = 0;
  private key: string | undefined;

  /** Returns the whole message on its last fragment, undefined before. */
  push(seq: number, command: number, payload: Buffer, more: boolean): Buffer | undefined {
    const key = `${seq}/${command}`;
    if (this.key !== undefined && this.key !== key) {
      const was = this.key;
      this.reset();
      throw new FragmentError('FRAGMENT_MISMATCH', `a fragment of ${key} arrived while ${was} was incomplete`);
    }
    this.key = key;
    this.total += payload.length;
    if (this.total > MAX_MESSAGE_BYTES) {
      this.reset();
      throw new FragmentError('MESSAGE_TOO_LARGE', `the fragments exceed the ${MAX_MESSAGE_BYTES}-byte message limit`);
    }
    this.parts.push(payload);
    if (more) return undefined;
    const whole = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.reset();
    return whole;
  }

  get inProgress(): boolean {
    return this.key !== undefined;
  }

  reset(): void {
    this.parts = [];
    this.total = 0;
    this.key = undefined;
  }
}
