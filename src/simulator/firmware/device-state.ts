/** The simulated firmware's per-device state, its typed refusal, and the options it reads. */
import type { KeyObject } from 'node:crypto';
import type { MethodId } from '../../core/method-id';
import type { BirthKey } from '../birth-key';
import type { SimulatedSecureElement } from '../simulated-secure-element';

/** A refusal the firmware answers with a status code and a detail string. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(detail);
  }
}

export interface DeviceState {
  hardwareId: Buffer;
  macs: Buffer[];
  /** Seed-derived devices: the chip id the vendor's seed file names, and the burned seed. */
  chipId: Buffer | undefined;
  /**
   * The serial of this device's own SE (8 bytes), when it has one. The SoftHSM token behind it
   * is the simulator's storage, reused across device swaps on a port; the serial is per device.
   */
  seSerial: Buffer | undefined;
  seed: Buffer | undefined;
  serial: string | undefined;
  chain: Buffer[];
  items: Map<number, Buffer>;
  locked: boolean;
  sessionOpened: boolean;
  birthKey: BirthKey | undefined;
  /** Method 3: the device's ephemeral transport key pair (software, in RAM). */
  transportKey: KeyObject | undefined;
  /** BRSKI: the nonce of the last voucher-request. */
  voucherNonce: Buffer | undefined;
  /** Method 4: the SE vendor's certificate for the SE key, then the vendor CA certificate (DER). */
  seCertificates?: Buffer[] | undefined;
}

/**
 * What the method commands read from the device's options (a structural subset of
 * VirtualDeviceOptions, so that the firmware does not import the device that dispatches to it).
 */
export interface MethodFirmwareOptions {
  /** The method this device's firmware is built for (its capabilities follow). */
  method: MethodId;
  /** The device's SE, when it has one. */
  se: SimulatedSecureElement | undefined;
  /** Where the simulated SE vendor keeps its CA key and certificate; in memory when absent. */
  vendorDir?: string | undefined;
}
