/**
 * The station identity key as a Signer (src/core/ports/signer.ts): every signature is made by the
 * PKCS#11 worker (worker-ops/identity-ops.ts, op `identity.sign`), so that all run-time PKCS#11
 * work stays in its one owner. This side hashes (SHA-256) and converts the raw r||s to DER.
 */
import { createHash } from 'node:crypto';
import { HsmError } from '../../core/errors';
import type { Signer } from '../../core/ports/signer';
import { rawEcdsaToDer } from '../pkcs11/ecdsa-signature';

/** The label of the station identity key pair on the station's token. */
export const STATION_IDENTITY_LABEL = 'station-identity';

/** What runs a named worker op: Pkcs11WorkerSigner (IdevidCa.signer). */
export interface WorkerOpRunner {
  runOp(op: string, args: unknown): Promise<unknown>;
}

export class HsmIdentitySigner implements Signer {
  readonly algorithm = 'ecdsa-p256-sha256' as const;

  private constructor(
    private readonly runner: WorkerOpRunner,
    readonly label: string,
    readonly publicKeySpki: Buffer,
  ) {}

  /** Finds and audits the key in the worker (a weak or missing key is refused) and learns its public key. */
  static async open(runner: WorkerOpRunner, label = STATION_IDENTITY_LABEL): Promise<HsmIdentitySigner> {
    const result = (await runner.runOp('identity.publicKey', { label })) as { spki?: unknown };
    if (!(result?.spki instanceof Uint8Array)) throw new HsmError('HSM_BAD_RESPONSE', 'The PKCS#11 worker answered identity.publicKey without a public key.');
    return new HsmIdentitySigner(runner, label, Buffer.from(result.spki));
  }

  async sign(data: Uint8Array): Promise<Buffer> {
    const digest = createHash('sha256').update(data).digest();
    const result = (await this.runner.runOp('identity.sign', { label: this.label, digest })) as { raw?: unknown };
    if (!(result?.raw instanceof Uint8Array) || result.raw.length !== 64) throw new HsmError('HSM_BAD_RESPONSE', 'The PKCS#11 worker answered identity.sign without a P-256 signature.');
    return rawEcdsaToDer(result.raw);
  }
}
