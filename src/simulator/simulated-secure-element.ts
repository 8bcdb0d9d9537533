/**
 * The simulated device's secure element: its own SoftHSM token. The birth key is generated on
 * the token (sensitive, never extractable), so "the key never leaves the SE" holds in tests:
 * CKA_LOCAL, CKA_NEVER_EXTRACTABLE and CKA_ALWAYS_SENSITIVE are set by the token
 * (test/integration/simulated-secure-element.test.ts).
 *
 * The key is a session object of the simulator's login, not a token object: it lives as long as
 * the simulator process, which is as long as a simulated device does (`--keep-devices` keeps a
 * device for the life of the process, too). A token object cost 12 ms of blocking file I/O with
 * one token and ~60 ms with 32 (SoftHSM's file store rescans every token's files), stalling the
 * simulator's event loop, and with it every other port's paced replies, for each key: a real
 * device's SE keeps its own time. The SE's time is modelled by the timing floor instead
 * (link-timing.ts: SE key generation at least 100 ms).
 */
import { rawEcdsaToDer } from '../hsm/pkcs11/ecdsa-signature';
import type { Pkcs11Handle } from '../hsm/pkcs11/pkcs11-library';
import type { Pkcs11Token } from '../hsm/pkcs11/pkcs11-token';

export const BIRTH_KEY_LABEL = 'birth-key';

export class SimulatedSecureElement {
  private privateKey: Pkcs11Handle | undefined;
  private spki: Buffer | undefined;

  constructor(readonly token: Pkcs11Token) {}

  /** The SE's serial number (the token's), hex. */
  get serial(): string {
    return /^[0-9a-fA-F]+$/.test(this.token.serial) && this.token.serial.length % 2 === 0 ? this.token.serial.toLowerCase() : Buffer.from(this.token.serial, 'utf8').toString('hex');
  }

  /** Make a new birth key, destroying the one a previous device left on this token. */
  generateBirthKey(): Buffer {
    this.destroyBirthKey();
    for (const handle of this.token.listObjects(BIRTH_KEY_LABEL)) this.token.destroy(handle);
    const pair = this.token.generateEcP256KeyPair({ label: BIRTH_KEY_LABEL, token: false, usage: { sign: true } });
    this.privateKey = pair.privateKey;
    this.spki = pair.spki;
    return pair.spki;
  }

  get publicKeySpki(): Buffer | undefined {
    return this.spki;
  }

  hasKey(): boolean {
    return this.privateKey !== undefined;
  }

  /** ECDSA P-256 with SHA-256, DER signature. */
  sign(data: Uint8Array): Buffer {
    if (!this.privateKey) throw new Error('no birth key in the secure element');
    return rawEcdsaToDer(this.token.signSha256Raw(this.privateKey, Buffer.from(data)));
  }

  /** Forget the key handles (the device left with its key); objects stay until the next keygen. */
  destroyBirthKey(): void {
    this.privateKey = undefined;
    this.spki = undefined;
  }
}
