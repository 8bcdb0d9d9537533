/**
 * A birth-credential method (SP 1800-36B H.1.1) as a strategy: what it needs from the device,
 * how it obtains the key material, and where the key came from. Methods get their device
 * client from the station; they never open a port or load a PKCS#11 module.
 */
import type { KeyOrigin, MethodId } from '../core/method-id';
import type { DeviceClient, DeviceIdentity } from '../device/device-client';

export type Support = { ok: true } | { ok: false; reason: string };

export interface KeyMaterial {
  /** The device key as the device reported it (DER SPKI). */
  reportedSpki: Buffer;
  /** The device's PKCS#10 request over that key, for the issuer to check. */
  csrDer: Buffer;
}

export interface ObtainKeyContext {
  client: DeviceClient;
  serial: string;
  signal: AbortSignal;
}

export interface KeyMethod {
  readonly id: MethodId;
  readonly keyOrigin: KeyOrigin;
  supports(identity: DeviceIdentity): Support;
  obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial>;
}
