/**
 * Method 3, factory-injected key (SP 1800-36B H.1.1): the birth key is made in the station's
 * HSM and injected into the device, wrapped for a transport key the device makes for the purpose
 * (contracts.md §7, docs/crypto-constructions.md §2). Two ways (contracts.md §6):
 *
 * - prepared (default): `station prepare` made the keys ahead, each with its serial and its
 *   certificate, resting wrapped under the KEK. The assign stage gives the device the work
 *   order's next available prepared record (protocol v1 has no fixed device serial: a device
 *   that had one could take only the record prepared for that serial); the issue stage only
 *   hands the pre-issued certificate on.
 * - at-station (`station batch --inject at-station`): the serial is allocated as usual, the HSM
 *   makes the key in the obtain-key stage and the issue stage issues.
 *
 * Either way the key is reserved for the device before it leaves the station (install stage:
 * GET_TRANSPORT_KEY, the HSM re-wraps it for that transport key and serial, INSTALL_WRAPPED_KEY).
 * After the record stage committed (the device proved possession in the verify stage) the
 * wrapped blob is deleted. A device that fails after its key left keeps it reserved; when that
 * device comes back (same hardware id), it must prove possession of the reserved key (a
 * challenge verified against the key's public key): then it resumes with that key, or, if its
 * certificate was voided meanwhile, the key is recorded as held by it; otherwise the key is
 * burned. Reserved and burned keys are never offered again.
 *
 * Weak point (SP 1800-36B): the key exists outside the device before injection. It exists
 * only inside the HSM or wrapped (under the KEK at rest, under a one-device transport key in
 * flight), and its blob is destroyed once the device holds it. See docs/crypto-constructions.md §2.
 */
import { randomBytes, verify as verifySignature, createPublicKey } from 'node:crypto';
import { ConfigError, DeviceError, StationError } from '../../core/errors';
import { EcPublicKeyError, p256PointFromSpki } from '../../core/ec-public-key';
import type { KeyInjector } from '../../core/ports/key-injection';
import type { PreparedKey, PreparedKeys } from '../../core/ports/prepared-keys';
import { IMMEDIATE_WRITES, type WriteGroup } from '../../core/ports/write-group';
import type { DeviceClient, DeviceIdentity } from '../../device/device-client';
import { CHALLENGE_CONTEXT, challengeMessage } from '../../device/protocol/challenge';
import { DEVICE_STATUS_INFO } from '../../device/protocol/status';
import {
  deviceAttachment,
  type AfterRecordContext,
  type AssignContext,
  type BeforeInstallContext,
  type FailureContext,
  type KeyMaterial,
  type KeyMethod,
  type MethodServices,
  type ObtainKeyContext,
  type Support,
} from '../key-method';

export type InjectMode = 'prepared' | 'at-station';

/** The device holds a prepared key whose certificate was voided (it failed after injection and came back). */
export const INJECTED_KEY_HELD = 'INJECTED_KEY_HELD';
/** The device reports installing a key other than the one injected. */
export const INJECTED_KEY_MISMATCH = 'INJECTED_KEY_MISMATCH';

/** Error codes that are the device's own refusal (a status in its reply), not a lost link. */
const DEVICE_REFUSALS: ReadonlySet<string> = new Set(Object.values(DEVICE_STATUS_INFO).map((i) => i.errorCode));

function notConfigured(what: string): ConfigError {
  return new ConfigError('METHOD_NOT_CONFIGURED', `Method factory-injected-key needs ${what}, which the station did not provide.`);
}

export class FactoryInjectedKeyMethod implements KeyMethod {
  readonly id = 'factory-injected-key' as const;
  readonly keyOrigin = 'hsm' as const;
  /** The challenge nonce of a possession check (tests fix it). */
  private readonly nonce: () => Buffer;

  /** `services` may be filled in after construction (the station opens the HSM and database later); it is read on use. */
  constructor(
    private readonly services: MethodServices,
    options: { challengeNonce?: () => Buffer } = {},
  ) {
    this.nonce = options.challengeNonce ?? (() => randomBytes(32));
  }

  /** Keys prepared ahead (the default) or made during the run. */
  get mode(): InjectMode {
    return this.services.injectMode ?? 'prepared';
  }

  private get keys(): PreparedKeys {
    if (!this.services.preparedKeys) throw notConfigured('the prepared-key records');
    return this.services.preparedKeys;
  }

  private get writes(): WriteGroup {
    return this.services.writes ?? IMMEDIATE_WRITES;
  }

  private get injector(): KeyInjector {
    if (!this.services.keyInjector) throw notConfigured('the HSM key injector');
    return this.services.keyInjector;
  }

  supports(identity: DeviceIdentity): Support {
    if (!identity.capabilities.keyInjection) return { ok: false, reason: 'the device does not accept injected keys (no KEY_INJECTION capability)' };
    return { ok: true };
  }

  /**
   * A device coming back with a key reserved for it proves possession first; then, prepared:
   * the next available record; at the station: the work order's next serial.
   */
  async assignSerial(ctx: AssignContext): Promise<string> {
    const returning = this.keys.findReservedFor(ctx.workOrderId, ctx.identity.hardwareId);
    if (returning) {
      const resumed = await this.settleReturningDevice(ctx, returning);
      if (resumed) return resumed;
    }
    ctx.signal.throwIfAborted();
    if (this.mode === 'at-station') return ctx.allocate();
    return (await this.writes.run('claiming a prepared key', () => this.keys.claimNext(ctx.workOrderId, deviceAttachment(ctx)))).serial;
  }

  /**
   * The device took `key` before and failed (or the station stopped) after the key left for it.
   * Returns the serial to resume with, or undefined when the key is burned and the device goes on
   * as a new one. Throws INJECTED_KEY_HELD when it holds a key whose certificate was voided.
   */
  private async settleReturningDevice(ctx: AssignContext, key: PreparedKey): Promise<string | undefined> {
    if (key.injectedAt === null) {
      // Never left the station: the device cannot hold it.
      this.keys.burn(key.id, `its device ${ctx.identity.hardwareId} came back before the key left the station`, {
        code: 'INJECTION_INTERRUPTED',
        message: `The key of ${key.serial} never left the station; it was burned. The device was provisioned again under another serial.`,
      });
      return undefined;
    }
    const proven = await this.provesPossession(ctx.client, key);
    if (!proven) {
      this.keys.burn(key.id, `its device ${ctx.identity.hardwareId} came back and did not prove possession`, {
        code: 'INJECTED_KEY_NOT_PROVEN',
        message: `The device did not prove possession of the key injected for ${key.serial}; the key was burned.`,
      });
      return undefined;
    }
    if (key.deviceStatus === 'issued') return this.keys.resume(key.id, deviceAttachment(ctx)).serial;
    this.keys.consume(key.id, 'possession-confirmed');
    throw new DeviceError(
      INJECTED_KEY_HELD,
      `The device on ${ctx.port} (hardware id ${ctx.identity.hardwareId}) holds the key injected for ${key.serial}, whose certificate was voided when it failed (${key.deviceStatus}). The key is accounted for and its blob deleted; erase the device's key store (rework) before provisioning it again.`,
      { stage: 'assign', details: { serial: key.serial, preparedKeyId: key.id } },
    );
  }

  /** The device signs a fresh challenge for the key's serial; verified against the key's public key (never the device's word). */
  private async provesPossession(client: DeviceClient, key: PreparedKey): Promise<boolean> {
    const nonce = this.nonce();
    let signature: Buffer;
    try {
      signature = await client.signChallenge(nonce, key.serial, CHALLENGE_CONTEXT);
    } catch (err) {
      // The device refusing (no birth key, another serial) is an answer; a lost link is not.
      if (err instanceof StationError && DEVICE_REFUSALS.has(err.code)) return false;
      throw err;
    }
    try {
      return verifySignature('sha256', challengeMessage(nonce, key.serial), { key: createPublicKey({ key: key.spki, format: 'der', type: 'spki' }), dsaEncoding: 'der' }, signature);
    } catch {
      return false;
    }
  }

  async obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial> {
    const existing = this.keys.findBySerial(ctx.serial);
    if (existing) {
      if (existing.state !== 'reserved' || existing.reservedFor !== ctx.identity.hardwareId) {
        throw new DeviceError('PREPARED_KEY_STATE_CONFLICT', `The key prepared for ${ctx.serial} is ${existing.state}, not reserved for the device on ${ctx.client.port}.`);
      }
      const chain = this.services.caChain;
      if (!chain) throw notConfigured('the IDevID CA chain');
      const certificateDer = this.keys.certificateOf(existing.id);
      return { kind: 'pre-issued', spki: existing.spki, certificateDer, chain: [...chain], facts: { preparedKeyId: existing.id } };
    }
    if (this.mode !== 'at-station') {
      throw new DeviceError('PREPARED_KEY_UNKNOWN', `No prepared key holds serial ${ctx.serial}.`);
    }
    const [made] = await this.injector.generateWrapped(1);
    ctx.signal.throwIfAborted();
    const key = this.keys.recordStationKey({
      workOrderId: ctx.workOrderId,
      serial: ctx.serial,
      key: made!,
      kekLabel: this.injector.kekLabel,
      hardwareId: ctx.identity.hardwareId,
      port: ctx.client.port,
    });
    return { kind: 'station-key', spki: key.spki, facts: { preparedKeyId: key.id } };
  }

  /**
   * The injection: the HSM re-wraps the key for the device's transport key and serial; the key
   * is marked as leaving (durable) before the blob is sent; the device answers with the public
   * key it installed.
   */
  async beforeInstall(ctx: BeforeInstallContext): Promise<void> {
    const id = ctx.facts.preparedKeyId;
    const key = id ? this.keys.get(id) : undefined;
    if (!key || !key.wrappedKey) throw new DeviceError('PREPARED_KEY_UNKNOWN', `No injectable key is recorded for ${ctx.serial}.`, { stage: 'install' });
    if (key.confirmedAt !== null) return; // a device that came back and proved it holds the key
    const transportSpki = await ctx.client.getTransportKey();
    try {
      p256PointFromSpki(transportSpki);
    } catch (err) {
      if (err instanceof EcPublicKeyError) throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${ctx.client.port} sent a transport key that is not a P-256 public key.`, { stage: 'install' });
      throw err;
    }
    ctx.signal.throwIfAborted();
    const wrapped = await this.injector.wrapForTransport({ kekWrappedKey: key.wrappedKey, transportSpki, serial: ctx.serial });
    let installed: Buffer;
    try {
      // Durable before the blob leaves: from here on the key may be in the device.
      await this.writes.run('marking the key as leaving for the device', () => this.keys.markInjecting(key.id, ctx.identity.hardwareId));
      installed = await ctx.client.installWrappedKey({ hsmPublicKey: wrapped.hsmPublicKey, wrappedKey: wrapped.wrappedKey, serial: ctx.serial });
    } finally {
      wrapped.wrappedKey.fill(0);
    }
    if (!installed.equals(key.spki)) {
      throw new DeviceError(INJECTED_KEY_MISMATCH, `The device on ${ctx.client.port} reports installing a key other than the one injected for ${ctx.serial}. Do not ship it.`, { stage: 'install' });
    }
  }

  /** The record is committed: the device proved possession; the blob goes, and its copies with it. */
  async afterRecord(ctx: AfterRecordContext): Promise<void> {
    const id = ctx.facts.preparedKeyId;
    if (!id) throw new DeviceError('PREPARED_KEY_UNKNOWN', `No injected key is recorded for ${ctx.serial}.`, { stage: 'record' });
    await this.writes.run('consuming the injected key', () => this.keys.consume(id, 'recorded'));
    this.keys.scrub();
  }

  /**
   * A key that never left the station is burned (its certificate is voided with the device); a
   * key that left stays reserved for its device, which may come back and prove possession.
   */
  async onFailure(ctx: FailureContext): Promise<void> {
    const id = ctx.facts.preparedKeyId;
    const key = id ? this.keys.get(id) : this.keys.findBySerial(ctx.serial);
    if (!key || key.state !== 'reserved') return;
    if (key.injectedAt === null) {
      this.keys.burn(key.id, `its device failed (${ctx.code}) before the key left the station`);
      this.keys.scrub();
    }
  }
}
