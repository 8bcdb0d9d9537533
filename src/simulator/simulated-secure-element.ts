/**
 * The simulated device's secure element: its own SoftHSM token. The birth key is generated on
 * the token (CKA_TOKEN, sensitive, never extractable), so "the key never leaves the SE" holds
 * in tests: CKA_LOCAL, CKA_NEVER_EXTRACTABLE and CKA_ALWAYS_SENSITIVE are set by the token.
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
    const pair = this.token.generateEcP256KeyPair({ label: BIRTH_KEY_LABEL, token: true, usage: { sign: true } });
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
