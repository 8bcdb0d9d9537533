/**
 * Method 5, seed-derived: the chip vendor burned a seed into each chip and sent the manufacturer
 * the seeds in an encrypted file (station import seeds). The station derives the birth key's
 * public key from the chip's seed inside its HSM worker, issues the certificate over it, and
 * before installing makes the device derive its key on "first boot" (DERIVE_SEED_KEY): the two
 * must be the same key (contracts.md §7, docs/crypto-constructions.md §1).
 *
 * The chip's seed: bound to the device at obtain-key, used for good once the device's record is
 * written (afterRecord). A device that fails keeps the binding as history, but its chip may be
 * taken again by a new serial (rework: the failed device's certificate was voided, and the same
 * seed gives the same key). A used chip, or one bound to a device still in progress, is refused
 * as SEED_ALREADY_USED: the same chip id twice is a cloned or counterfeit chip.
 *
 * Prepared ahead (`station prepare` on a seed-derived work order, src/station/admin/prepare-seed.ts):
 * the chip already has a serial, a device record and a certificate. The assign stage gives the
 * device that serial (PreparedSeedCertificates.claim), and obtain-key still derives the key from
 * the sealed seed in the HSM and checks it against the import-time hash and the certificate,
 * then hands the certificate on (`pre-issued`). A chip with nothing prepared goes the usual way.
 */
import { createHash } from 'node:crypto';
import { p256PointFromSpki, p256SpkiFromPoint } from '../../core/ec-public-key';
import { ConfigError, DeviceError, HsmError } from '../../core/errors';
import type { SeedStore } from '../../core/ports/seed-store';
import type { SeedVault } from '../../core/ports/seed-vault';
import type { DeviceIdentity } from '../../device/device-client';
import { deviceAttachment, type AfterRecordContext, type AssignContext, type BeforeInstallContext, type KeyMaterial, type KeyMethod, type MethodServices, type ObtainKeyContext, type Support } from '../key-method';
import { spkiOfCertificateDer } from './prepared-certificate';
import { IMMEDIATE_WRITES, type WriteGroup } from '../../core/ports/write-group';

export class SeedDerivedMethod implements KeyMethod {
  readonly id = 'seed-derived' as const;
  readonly keyOrigin = 'seed-derived' as const;

  /** Certificates prepared ahead, by the serial the assign stage gave them to (until obtain-key takes them). */
  private readonly claimed = new Map<string, Buffer>();

  constructor(private readonly services: MethodServices) {}

  private ports(): { seedVault: SeedVault; seedStore: SeedStore } {
    const { seedVault, seedStore } = this.services;
    if (!seedVault || !seedStore) {
      throw new ConfigError('METHOD_NOT_CONFIGURED', 'The seed-derived method needs the seed vault (HSM) and the seed records (database); the station did not provide them.');
    }
    return { seedVault, seedStore };
  }

  private get writes(): WriteGroup {
    return this.services.writes ?? IMMEDIATE_WRITES;
  }

  supports(identity: DeviceIdentity): Support {
    if (!identity.capabilities.seedDerivation) return { ok: false, reason: 'the device cannot derive a key from a vendor seed' };
    if (!identity.chipId) return { ok: false, reason: 'the device reports no chip id' };
    return { ok: true };
  }

  /** A chip prepared ahead takes its prepared serial; any other chip the next serial of the work order. */
  async assignSerial(ctx: AssignContext): Promise<string> {
    const prepared = this.services.preparedSeedCertificates;
    const chipId = ctx.identity.chipId?.toLowerCase();
    if (prepared && chipId) {
      const claim = await this.writes.run('claiming a prepared certificate', () => prepared.claim(chipId, ctx.workOrderId, deviceAttachment(ctx)));
      if (claim) {
        this.claimed.set(claim.serial, claim.certificateDer);
        return claim.serial;
      }
    }
    return ctx.allocate();
  }

  async obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial> {
    const { seedVault, seedStore } = this.ports();
    const chipId = ctx.identity.chipId!.toLowerCase();
    const port = ctx.client.port;
    const bound = await this.writes.run('binding the chip to its device', () => seedStore.bindSeed(chipId, ctx.serial));
    if (!bound.ok) {
      if (bound.reason === 'unknown') {
        throw new DeviceError(
          'SEED_UNKNOWN',
          `The device on ${port} has chip ${chipId}, which is in no imported seed file. Import the chip vendor's seed file for its lot (station import seeds FILE), or set the device aside.`,
          { details: { chipId } },
        );
      }
      throw new DeviceError(
        'SEED_ALREADY_USED',
        bound.reason === 'used'
          ? `The seed of chip ${chipId} (device on ${port}) was already used by device ${bound.holder ?? '?'}: a chip id seen twice is a cloned or counterfeit chip. Set the device aside and call the supervisor.`
          : `Chip ${chipId} (device on ${port}) is being provisioned as device ${bound.holder ?? '?'} right now: a chip id seen twice is a cloned or counterfeit chip. Set the device aside and call the supervisor.`,
        { details: { chipId, holder: bound.holder } },
      );
    }
    ctx.signal.throwIfAborted();
    const spki = await seedVault.derivePublicKey(chipId, bound.record.sealed);
    if (createHash('sha256').update(spki).digest('hex') !== bound.record.publicKeySha256) {
      throw new HsmError('SEED_VAULT_INTEGRITY', `The key derived for chip ${chipId} differs from the one derived when its seed file was imported. Stop and call the supervisor.`);
    }
    const preIssued = this.claimed.get(ctx.serial);
    if (preIssued) {
      this.claimed.delete(ctx.serial);
      if (!spkiOfCertificateDer(preIssued).equals(p256SpkiFromPoint(p256PointFromSpki(spki)))) {
        throw new HsmError('SEED_VAULT_INTEGRITY', `The certificate prepared for chip ${chipId} (${ctx.serial}) is not over the key its seed derives. Stop and call the supervisor.`);
      }
      const chain = this.services.caChain;
      if (!chain) throw new ConfigError('METHOD_NOT_CONFIGURED', 'The seed-derived method got a prepared certificate but no IDevID chain to install it with.');
      return { kind: 'pre-issued', spki, certificateDer: preIssued, chain: [...chain], facts: { chipId } };
    }
    return { kind: 'station-key', spki, facts: { chipId } };
  }

  /** "First boot": the device derives its key from its own seed; it must be the certified key. */
  async beforeInstall(ctx: BeforeInstallContext): Promise<void> {
    const chipId = ctx.facts.chipId ?? ctx.identity.chipId ?? '?';
    const reported = await ctx.client.deriveSeedKey(ctx.serial);
    let devicePoint: Buffer;
    try {
      devicePoint = p256PointFromSpki(reported);
    } catch (err) {
      throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${ctx.client.port} (chip ${chipId}) reported an unusable derived key: ${(err as Error).message}.`);
    }
    if (!p256SpkiFromPoint(devicePoint).equals(p256SpkiFromPoint(p256PointFromSpki(ctx.spki)))) {
      throw new DeviceError(
        'SEED_KEY_MISMATCH',
        `Chip ${chipId} (device on ${ctx.client.port}) derived a key other than the one its vendor's seed gives: the chip's seed is not the one in the seed file. Its certificate is voided; set the device aside and report chip ${chipId} to the chip vendor.`,
        { details: { chipId } },
      );
    }
  }

  async afterRecord(ctx: AfterRecordContext): Promise<void> {
    if (!ctx.facts.chipId) return;
    const { seedStore } = this.ports();
    const chipId = ctx.facts.chipId;
    await this.writes.run('marking the seed used', () => seedStore.markSeedUsed(chipId, ctx.serial));
  }
}
