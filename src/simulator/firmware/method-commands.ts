/**
 * Firmware commands of the methods other than SE keygen: the transport key and wrapped-key
 * install (method 3), seed derivation (method 5), the SE vendor's certificate (method 4), and
 * the BRSKI voucher-request / voucher check. Each follows contracts.md §7 and
 * docs/crypto-constructions.md; this class only routes to the file of each concern.
 */
import type { TlvItem, TlvReader } from '../../device/framing/tlv';
import type { DeviceState, MethodFirmwareOptions } from './device-state';
import { KeyInjection } from './key-injection';
import { SeInfo } from './se-info';
import { SeedKey } from './seed-key';
import { VoucherFirmware } from './voucher';

export { Refusal, type DeviceState, type MethodFirmwareOptions } from './device-state';

export class MethodCommands {
  private readonly injection: KeyInjection;
  private readonly seedKey: SeedKey;
  private readonly seInfo: SeInfo;
  private readonly voucher = new VoucherFirmware();

  constructor(readonly options: MethodFirmwareOptions) {
    this.injection = new KeyInjection(options);
    this.seedKey = new SeedKey(options);
    this.seInfo = new SeInfo(options);
  }

  /** A new device is presented: for method 4 its SE arrives provisioned by the SE vendor. */
  presentDevice(s: DeviceState): void {
    this.seInfo.provision(s);
  }

  getTransportKey(s: DeviceState, req: TlvReader): TlvItem[] {
    return this.injection.getTransportKey(s, req);
  }

  installWrappedKey(s: DeviceState, req: TlvReader): TlvItem[] {
    return this.injection.installWrappedKey(s, req);
  }

  deriveSeedKey(s: DeviceState, req: TlvReader): TlvItem[] {
    return this.seedKey.deriveSeedKey(s, req);
  }

  readSeInfo(s: DeviceState, req: TlvReader): TlvItem[] {
    return this.seInfo.readSeInfo(s, req);
  }

  buildVoucherRequest(s: DeviceState, req: TlvReader): TlvItem[] {
    return this.voucher.buildVoucherRequest(s, req);
  }

  verifyVoucher(s: DeviceState, req: TlvReader): TlvItem[] {
    return this.voucher.verifyVoucher(s, req);
  }
}
