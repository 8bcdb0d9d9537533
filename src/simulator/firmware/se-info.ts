/**
 * Method 4 (SE pre-provisioned), device side. The SE "vendor" provisions the SE before the
 * device exists: it generates the SE key on the token (never extractable) and certifies it with
 * its CA. The device then only reports what its SE holds: READ_SE_INFO answers the SE serial,
 * the vendor's certificate for the SE key and the vendor CA certificate.
 */
import { tlv, type TlvItem, type TlvReader } from '../../device/framing/tlv';
import { Tag } from '../../device/protocol/commands';
import { DeviceStatus } from '../../device/protocol/status';
import { seBirthKey } from '../birth-key';
import { SeVendorCa } from '../vendor/se-vendor-ca';
import { Refusal, type DeviceState, type MethodFirmwareOptions } from './device-state';

export class SeInfo {
  private vendorCa: SeVendorCa | undefined;

  constructor(private readonly options: MethodFirmwareOptions) {}

  private ca(): SeVendorCa {
    this.vendorCa ??= this.options.vendorDir ? SeVendorCa.openOrCreate(this.options.vendorDir) : SeVendorCa.inMemory();
    return this.vendorCa;
  }

  /**
   * The SE vendor's provisioning of a new device's SE: a fresh SE key on the token and its
   * vendor certificate. The birth key is the SE key (origin 'se-vendor').
   */
  provision(s: DeviceState): void {
    const se = this.options.se;
    if (this.options.method !== 'se-preprovisioned' || !se) return;
    const spki = se.generateBirthKey();
    s.seCertificates = [this.ca().issueSeCertificate((s.seSerial ?? Buffer.from(se.serial, 'hex')).toString('hex'), spki), this.ca().certificate];
    s.birthKey = seBirthKey(se, 'se-vendor');
  }

  readSeInfo(s: DeviceState, _req: TlvReader): TlvItem[] {
    if (this.options.method !== 'se-preprovisioned') throw new Refusal(DeviceStatus.UNSUPPORTED, 'READ_SE_INFO: this device has no vendor-provisioned secure element');
    const se = this.options.se;
    if (!se) throw new Refusal(DeviceStatus.SE_ERROR, 'the secure element does not answer');
    // A device whose SE was not provisioned when it was presented (e.g. after a rework) gets it now.
    if (!s.seCertificates || !s.birthKey) this.provision(s);
    return [tlv.bytes(Tag.SE_SERIAL, s.seSerial ?? Buffer.from(se.serial, 'hex')), ...s.seCertificates!.map((c) => tlv.bytes(Tag.CERTIFICATE, c))];
  }
}
