/**
 * ScriptedKeyInjector: the HSM side of method 3 (core/ports/key-injection.ts KeyInjector) for the
 * factory-injected-key device transcript. The transcript tests the link (what the station writes
 * around GET_TRANSPORT_KEY / INSTALL_WRAPPED_KEY and how it reacts to the device's answers), so
 * the HSM is replaced by values recorded as `@input`s:
 *
 * - recording: the device key is a software P-256 key pair made here, and `wrapForTransport`
 *   does the construction of contracts.md §7 in software (an ephemeral P-256 key, ECDH with the
 *   device's transport key, HKDF-SHA256(Z, salt empty, info "inject-v1" ‖ serial, 32 bytes),
 *   AES-256 key wrap with padding of the key's PKCS#8), which the simulated device unwraps;
 * - replay: the recorded device public key, HSM ephemeral public key and wrapped blob.
 *
 * The blob in a transcript cannot be opened: the ephemeral private key and the device's
 * transport key existed only in memory during the recording. Nothing private is recorded.
 * The real HSM path (SoftHSM through the PKCS#11 worker) is tested by
 * test/integration/key-injection-hsm.test.ts and batch-factory-injected-key.test.ts.
 */
import { createHash, createCipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import type { KeyInjector, TransportWrappedKey, WrappedDeviceKey } from '../../src/core/ports/key-injection';
import type { ScenarioInputs } from './transcript-scenario-kit';

/** What stands in for a key wrapped under the KEK: a name for the key, not the key. */
function kekBlobStandIn(spki: Buffer): Buffer {
  return createHash('sha256').update('transcript: stands in for the KEK-wrapped device key of ').update(spki).digest();
}

/** SHA-256 of what the station asked the HSM to wrap for: the transport key and the serial. */
function wrapRequestDigest(transportSpki: Buffer, serial: string): Buffer {
  return createHash('sha256').update(transportSpki).update(Buffer.from([0])).update(serial, 'utf8').digest();
}

export class ScriptedKeyInjector implements KeyInjector {
  readonly kekLabel = 'transcript-kek';
  /** Recording only: the software device keys by their KEK-blob stand-in (hex). */
  private readonly privateKeys = new Map<string, KeyObject>();

  constructor(private readonly inputs: ScenarioInputs) {}

  async generateWrapped(count: number): Promise<WrappedDeviceKey[]> {
    if (count !== 1) throw new Error(`ScriptedKeyInjector makes one key per transcript, not ${count}`);
    let made: { publicKey: KeyObject; privateKey: KeyObject } | undefined;
    const spki = await this.inputs.bytes('device-public-key', () => {
      made = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      return made.publicKey.export({ format: 'der', type: 'spki' });
    });
    const wrappedKey = kekBlobStandIn(spki);
    if (made) this.privateKeys.set(wrappedKey.toString('hex'), made.privateKey);
    return [{ spki, wrappedKey }];
  }

  async wrapForTransport(input: { kekWrappedKey: Buffer; transportSpki: Buffer; serial: string }): Promise<TransportWrappedKey> {
    // The station must ask for the key it prepared, the device's transport key and the device's serial.
    const asked = wrapRequestDigest(input.transportSpki, input.serial);
    const recorded = await this.inputs.bytes('wrap-request-sha256', () => asked);
    if (!recorded.equals(asked)) throw new Error(`the station asked the HSM to wrap for another transport key or serial (${input.serial}) than when the transcript was recorded`);
    const spki = await this.inputs.bytes('device-public-key', () => {
      throw new Error('wrapForTransport before generateWrapped');
    });
    if (!input.kekWrappedKey.equals(kekBlobStandIn(spki))) throw new Error('the station asked the HSM to wrap a key other than the one it prepared');

    let made: TransportWrappedKey | undefined;
    const make = (): TransportWrappedKey => {
      made ??= this.wrapInSoftware(input);
      return made;
    };
    const hsmPublicKey = await this.inputs.bytes('hsm-ephemeral-public-key', () => make().hsmPublicKey);
    const wrappedKey = await this.inputs.bytes('transport-wrapped-key', () => make().wrappedKey);
    return { hsmPublicKey, wrappedKey };
  }

  /** Recording: contracts.md §7 in software, over the key generateWrapped made. */
  private wrapInSoftware(input: { kekWrappedKey: Buffer; transportSpki: Buffer; serial: string }): TransportWrappedKey {
    const deviceKey = this.privateKeys.get(input.kekWrappedKey.toString('hex'));
    if (!deviceKey) throw new Error('no device key was made for this blob in this recording');
    const ephemeral = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: createPublicKey({ key: input.transportSpki, format: 'der', type: 'spki' }) });
    const kek = Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), Buffer.concat([Buffer.from('inject-v1', 'utf8'), Buffer.from(input.serial, 'utf8')]), 32));
    const pkcs8 = deviceKey.export({ format: 'der', type: 'pkcs8' });
    try {
      const cipher = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'));
      const wrappedKey = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
      return { hsmPublicKey: ephemeral.publicKey.export({ format: 'der', type: 'spki' }), wrappedKey };
    } finally {
      z.fill(0);
      kek.fill(0);
      pkcs8.fill(0);
    }
  }
}
