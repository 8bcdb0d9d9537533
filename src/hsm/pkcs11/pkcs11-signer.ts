import type { Signer } from '../../core/ports/signer';
import { rawEcdsaToDer } from './ecdsa-signature';
import type { Pkcs11Handle } from './pkcs11-library';
import type { Pkcs11Token } from './pkcs11-token';

/** A Signer over a P-256 private key on a PKCS#11 token. */
export class Pkcs11Signer implements Signer {
  readonly algorithm = 'ecdsa-p256-sha256' as const;

  constructor(
    private readonly token: Pkcs11Token,
    private readonly privateKey: Pkcs11Handle,
    readonly publicKeySpki: Buffer,
  ) {}

  async sign(data: Uint8Array): Promise<Buffer> {
    return rawEcdsaToDer(this.token.signSha256Raw(this.privateKey, Buffer.from(data)));
  }
}
