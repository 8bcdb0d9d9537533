/**
 * The proof-of-possession challenge (contracts.md §7): the device signs, with its birth key,
 *   SHA-256( context || 0x00 || serial || 0x00 || nonce )
 * where context = "birth-credential-pop-v1" and nonce is 32 fresh random bytes from the station.
 */
export const CHALLENGE_CONTEXT = 'birth-credential-pop-v1';
export const CHALLENGE_NONCE_BYTES = 32;

export function challengeMessage(nonce: Uint8Array, serial: string, context = CHALLENGE_CONTEXT): Buffer {
  if (nonce.length !== CHALLENGE_NONCE_BYTES) throw new RangeError(`a challenge nonce is ${CHALLENGE_NONCE_BYTES} bytes`);
  return Buffer.concat([Buffer.from(context, 'utf8'), Buffer.from([0]), Buffer.from(serial, 'utf8'), Buffer.from([0]), Buffer.from(nonce)]);
}
