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

/**
 * What the verify stage hands a method that records from the device's report (method 1):
 * what the device reports about itself, and what the issuance journal holds for its serial.
 */
export interface DeviceReportContext {
  client: DeviceClient;
  serial: string;
  /** The IDevID chain the device reports (READ_ITEM IDEVID_CHAIN), leaf first, DER. */
  reportedChain: readonly Buffer[];
  /** The DPP URI the device reports (READ_ITEM DPP_URI). */
  reportedDppUri: string;
  /** The active certificate the issuance journal holds for this serial (DER), or null. */
  journalCertificate: Buffer | null;
  signal: AbortSignal;
}

/** The record the station writes from a device's report, once it agrees with the journal. */
export interface DeviceReportRecord {
  certificateDer: Buffer;
  /** DER SPKI of the certified key (as in the certificate). */
  publicKeySpki: Buffer;
  dppUri: string;
}

export interface KeyMethod {
  readonly id: MethodId;
  readonly keyOrigin: KeyOrigin;
  supports(identity: DeviceIdentity): Support;
  obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial>;
  /**
   * Methods whose manufacturer-DB record is written from the device's report (SP 1800-36B
   * H.1.1 method 1) cross-check that report against the issuance journal in the verify stage
   * and return what to record; a mismatch throws REPORT_MISMATCH_JOURNAL. Methods without it
   * (method 2) record from the CA path directly.
   */
  crossCheck?(ctx: DeviceReportContext): Promise<DeviceReportRecord>;
}
