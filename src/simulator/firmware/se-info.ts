/**
 * Method 4 (SE pre-provisioned), device side. The SE "vendor" provisioned the SE before the
 * device existed: `station-sim vendor-kit se` generated its key on the reel token (never
 * extractable), certified it with the vendor CA and listed it in a signed manifest. Each new
 * device takes the next SE off the reel (vendor/se-reel.ts); a reworked device keeps its SE.
 * The device then only reports what its SE holds: READ_SE_INFO answers the SE serial, the
 * vendor's certificate of the SE key and the vendor CA certificate.
 *
 * Without a reel (no vendor kit run, or the reel used up), the SE is provisioned on the fly on
 * the port's SE token and certified by the same vendor CA, but listed in no manifest: the
 * station refuses such a device (SE_UNKNOWN), as it would an SE from a reel it has no file for.
 */
import { tlv, type TlvItem, type TlvReader } from '../../device/framing/tlv';
import { Tag } from '../../device/protocol/commands';
import { DeviceStatus } from '../../device/protocol/status';
import { seBirthKey } from '../birth-key';
import { SeReel } from '../vendor/se-reel';
import { SeVendorCa } from '../vendor/se-vendor-ca';
import { Refusal, type DeviceState, type MethodFirmwareOptions } from './device-state';

export class SeInfo {
  private vendorCa: SeVendorCa | undefined;
  /** The vendor's reel, once looked for (null: there is none). */
  private reel: SeReel | null | undefined;

  constructor(private readonly options: MethodFirmwareOptions) {}

  private ca(): SeVendorCa {
    this.vendorCa ??= this.options.vendorDir ? SeVendorCa.openOrCreate(this.options.vendorDir) : SeVendorCa.inMemory();
    return this.vendorCa;
  }

  private vendorReel(): SeReel | null {
    if (this.reel === undefined) {
      const se = this.options.se;
      this.reel = se && this.options.vendorDir ? SeReel.open(se.token.library, this.options.vendorDir, false) ?? null : null;
    }
    return this.reel;
  }

  /**
   * A new device arrives with its SE: the next one off the vendor's reel (a reworked device's
   * own SE when it still has one), or an SE provisioned on the fly when there is no reel.
   * The birth key is the SE key (origin 'se-vendor').
   */
  provision(s: DeviceState): void {
    const se = this.options.se;
    if (this.options.method !== 'se-preprovisioned' || !se) return;
    const reel = this.vendorReel();
    const fromReel = reel ? ((s.seSerial && reel.adopt(s.seSerial.toString('hex'))) || reel.takeNext()) : undefined;
    if (fromReel) {
      s.seSerial = fromReel.serial;
      s.seCertificates = [fromReel.certificate, this.ca().certificate];
      s.birthKey = { origin: 'se-vendor', spki: fromReel.spki, sign: (data) => fromReel.sign(data) };
      return;
    }
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
