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

export class SeedKey {
  constructor(private readonly options: MethodFirmwareOptions) {}

  deriveSeedKey(s: DeviceState, _req: TlvReader): TlvItem[] {
    if (this.options.method !== 'seed-derived') throw new Refusal(DeviceStatus.UNSUPPORTED, 'DERIVE_SEED_KEY: this device has no vendor seed');
    if (s.birthKey) throw new Refusal(DeviceStatus.BAD_STATE, 'the birth key already exists');
    if (!s.seed || !s.chipId) throw new Refusal(DeviceStatus.BAD_STATE, 'no vendor seed burned in this chip');
    // The KeyObject is the only copy of the private key: the BirthKey keeps it, nothing else does.
    s.birthKey = softwareBirthKey(deriveSeedPrivateKey(s.seed, s.chipId), 'seed-derived');
    return [tlv.bytes(Tag.PUBLIC_KEY, s.birthKey.spki)];
  }
}
