/**
 * Method 5 (seed-derived), device side: on first boot the device derives its birth key from the
 * seed its chip vendor burned in (src/core/seed-derivation.ts, docs/crypto-constructions.md §1).
 * The station derives the same public key from the vendor's seed file and compares.
 */
import { deriveSeedPrivateKey } from '../../core/seed-derivation';
import { tlv, type TlvItem, type TlvReader } from '../../device/framing/tlv';
import { Tag } from '../../device/protocol/commands';
import { DeviceStatus } from '../../device/protocol/status';
import { softwareBirthKey } from '../birth-key';
import { Refusal, type DeviceState, type MethodFirmwareOptions } from './device-state';

const PRINTABLE_SERIAL = /^[A-Za-z0-9 '()+,\-./:=?]{1,64}$/;

export class SeedKey {
  constructor(private readonly options: MethodFirmwareOptions) {}

  /**
   * DERIVE_SEED_KEY [SUBJECT_SERIAL] -> PUBLIC_KEY. With SUBJECT_SERIAL the device remembers the
   * serial it is provisioned as (SIGN_CHALLENGE checks it), as GET_CSR and INSTALL_WRAPPED_KEY do.
   */
  deriveSeedKey(s: DeviceState, req: TlvReader): TlvItem[] {
    if (this.options.method !== 'seed-derived') throw new Refusal(DeviceStatus.UNSUPPORTED, 'DERIVE_SEED_KEY: this device has no vendor seed');
    if (s.birthKey) throw new Refusal(DeviceStatus.BAD_STATE, 'the birth key already exists');
    if (!s.seed || !s.chipId) throw new Refusal(DeviceStatus.BAD_STATE, 'no vendor seed burned in this chip');
    const serialBytes = req.optional(Tag.SUBJECT_SERIAL);
    if (serialBytes !== undefined) {
      const serial = serialBytes.toString('utf8');
      if (!PRINTABLE_SERIAL.test(serial)) throw new Refusal(DeviceStatus.BAD_REQUEST, 'SUBJECT_SERIAL must be a PrintableString of 1..64 characters');
      s.serial = serial;
    }
    // The KeyObject is the only copy of the private key: the BirthKey keeps it, nothing else does.
    s.birthKey = softwareBirthKey(deriveSeedPrivateKey(s.seed, s.chipId), 'seed-derived');
    return [tlv.bytes(Tag.PUBLIC_KEY, s.birthKey.spki)];
  }
}
