/**
 * Firmware commands of the methods other than SE keygen: the transport key and wrapped-key
 * install (method 3), seed derivation (method 5), the SE vendor's certificate (method 4), and
 * the BRSKI voucher-request / voucher check. Each follows contracts.md §7.
 */
import type { KeyObject } from 'node:crypto';
import type { TlvItem, TlvReader } from '../../device/framing/tlv';
import { DeviceStatus } from '../../device/protocol/status';
import type { BirthKey } from '../birth-key';
import type { VirtualDeviceOptions } from '../virtual-device';

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
}

export class MethodCommands {
  constructor(readonly options: VirtualDeviceOptions) {}

  getTransportKey(_s: DeviceState, _req: TlvReader): TlvItem[] {
    throw new Refusal(DeviceStatus.UNSUPPORTED, 'GET_TRANSPORT_KEY is not simulated yet');
  }

  installWrappedKey(_s: DeviceState, _req: TlvReader): TlvItem[] {
    throw new Refusal(DeviceStatus.UNSUPPORTED, 'INSTALL_WRAPPED_KEY is not simulated yet');
  }

  deriveSeedKey(_s: DeviceState, _req: TlvReader): TlvItem[] {
    throw new Refusal(DeviceStatus.UNSUPPORTED, 'DERIVE_SEED_KEY is not simulated yet');
  }

  readSeInfo(_s: DeviceState, _req: TlvReader): TlvItem[] {
    throw new Refusal(DeviceStatus.UNSUPPORTED, 'READ_SE_INFO is not simulated yet');
  }

  buildVoucherRequest(_s: DeviceState, _req: TlvReader): TlvItem[] {
    throw new Refusal(DeviceStatus.UNSUPPORTED, 'BUILD_VOUCHER_REQUEST is not simulated yet');
  }

  verifyVoucher(_s: DeviceState, _req: TlvReader): TlvItem[] {
    throw new Refusal(DeviceStatus.UNSUPPORTED, 'VERIFY_VOUCHER is not simulated yet');
  }
}
