/** Any v1 frame's fields (fast-check), payload up to `maxPayloadBytes`: for the codec and frame-progress properties. */
import fc from 'fast-check';
import { FLAG_RESPONSE } from '../../src/device/framing/frame-codec';

export function frameArbitrary(maxPayloadBytes: number) {
  return fc.record({
    version: fc.integer({ min: 0, max: 255 }),
    flags: fc.constantFrom(0, FLAG_RESPONSE),
    seq: fc.integer({ min: 0, max: 0xffff }),
    command: fc.integer({ min: 0, max: 255 }),
    status: fc.integer({ min: 0, max: 255 }),
    payload: fc.uint8Array({ maxLength: maxPayloadBytes }).map((a) => Buffer.from(a)),
  });
}
