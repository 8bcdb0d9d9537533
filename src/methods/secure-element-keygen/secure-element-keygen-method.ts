/**
 * Method 2, secure-element keygen: the key pair is made inside the device's SE and never
 * leaves it; the device builds the CSR and the SE signs it. The station records the
 * certificate from its own issuing path (the CA journal), not from the device's report.
 */
import { KeyLocation } from '../../device/protocol/commands';
import type { DeviceIdentity } from '../../device/device-client';
import type { KeyMaterial, KeyMethod, ObtainKeyContext, Support } from '../key-method';

export class SecureElementKeygenMethod implements KeyMethod {
  readonly id = 'secure-element-keygen' as const;
  readonly keyOrigin = 'secure-element' as const;

  supports(identity: DeviceIdentity): Support {
    if (!identity.capabilities.secureElement) return { ok: false, reason: 'the device has no secure element' };
    if (!identity.capabilities.seKeygen) return { ok: false, reason: 'the device\'s secure element cannot generate keys' };
    return { ok: true };
  }

  async obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial> {
    const reportedSpki = await ctx.client.generateKey(KeyLocation.SECURE_ELEMENT);
    ctx.signal.throwIfAborted();
    const csrDer = await ctx.client.getCsr(ctx.serial);
    const seSerial = ctx.identity.secureElement?.serial;
    return { kind: 'csr', reportedSpki, csrDer, facts: seSerial ? { seSerial } : {} };
  }
}
