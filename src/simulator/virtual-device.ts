/**
 * The reference firmware behaviour behind protocol v1: one virtual device at a time on a port.
 * A second HELLO on a port stands for the operator swapping in the next device: the simulator
 * presents a fresh, unprovisioned device with a new identity on the same port (and the same
 * secure-element token), whether the previous device passed or failed.
 */
import { X509Certificate, createPublicKey, generateKeyPairSync, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { HsmError } from '../core/errors';
import type { MethodId } from '../core/method-id';
import { MAX_PAYLOAD_BYTES } from '../device/framing/frame-codec';
import { MIN_PAYLOAD_BYTES } from '../device/framing/fragments';
import { TlvError, TlvReader, encodeTlv, tlv, type TlvItem } from '../device/framing/tlv';
import { challengeMessage } from '../device/protocol/challenge';
import { Capability, Command, Item, KeyLocation, MethodBit, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, Tag, itemName } from '../device/protocol/commands';
import { DeviceStatus } from '../device/protocol/status';
import { generateSoftwareBirthKey, seBirthKey, type BirthKey } from './birth-key';
import { buildCsr } from './csr-builder';
import type { Firmware, FirmwareReply } from './device-link';
import type { Fault } from './faults';
import { MethodCommands, Refusal, type DeviceState } from './firmware/method-commands';
import type { SimulatedSecureElement } from './simulated-secure-element';

export interface VirtualDeviceOptions {
  model: string;
  firmwareVersion: string;
  /** The method this device's firmware is built for (its capabilities follow). */
  method: MethodId;
  faults: ReadonlySet<Fault>;
  /** The device's SE, when it has one (every method but on-device keygen, injection and seed). */
  se: SimulatedSecureElement | undefined;
  /** This device's frame limit (default 1024, so that certificate chains are fragmented). */
  maxPayloadBytes?: number;
  /** Protocol versions the firmware speaks (default: what this build of the protocol knows). */
  protocol?: { min: number; max: number };
  /** A new session keeps this device instead of presenting the next one (SimLineOptions.keepDevices). */
  keepDevice?: boolean;
  /** Runs when a new device is presented (e.g. the vendor kit provisions its SE). */
  onNewDevice?: (state: DeviceState) => void;
  /** Method 4: the simulated SE vendor's folder (its CA key and certificate); in memory when absent. */
  vendorDir?: string;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]{1,64}$/;

function capabilitiesOf(method: MethodId): number {
  const brski = Capability.BRSKI;
  switch (method) {
    case 'on-device-keygen':
      return Capability.DEVICE_KEYGEN | brski;
    case 'secure-element-keygen':
      return Capability.SECURE_ELEMENT | Capability.SE_KEYGEN | brski;
    case 'factory-injected-key':
      return Capability.KEY_INJECTION | brski;
    case 'se-preprovisioned':
      return Capability.SECURE_ELEMENT | Capability.SE_PREPROVISIONED | brski;
    case 'seed-derived':
      return Capability.SEED_DERIVATION | brski;
  }
}

/** Methods whose devices carry a secure element (a SoftHSM token per port in the simulator). */
export function methodHasSecureElement(method: MethodId): boolean {
  return method === 'secure-element-keygen' || method === 'se-preprovisioned';
}

function freshState(method: MethodId): DeviceState {
  const mac = randomBytes(6);
  mac[0] = (mac[0]! & 0xfc) | 0x02; // locally administered, unicast
  return {
    hardwareId: randomBytes(8),
    macs: [mac],
    chipId: method === 'seed-derived' ? randomBytes(8) : undefined,
    seSerial: methodHasSecureElement(method) ? randomBytes(8) : undefined,
    seed: method === 'seed-derived' ? randomBytes(32) : undefined,
    serial: undefined,
    chain: [],
    items: new Map(),
    locked: false,
    sessionOpened: false,
    birthKey: undefined,
    transportKey: undefined,
    voucherNonce: undefined,
  };
}

export class VirtualDevice implements Firmware {
  private state: DeviceState;
  private readonly methods: MethodCommands;
  /** Devices presented on this port so far (the first one counts). */
  devicesPresented = 1;
  peerMaxPayloadBytes = MAX_PAYLOAD_BYTES;
  readonly maxPayloadBytes: number;

  constructor(private readonly options: VirtualDeviceOptions) {
    this.maxPayloadBytes = Math.max(MIN_PAYLOAD_BYTES, Math.min(options.maxPayloadBytes ?? 1024, MAX_PAYLOAD_BYTES));
    this.methods = new MethodCommands(options);
    this.state = this.newDevice();
  }

  private newDevice(): DeviceState {
    const state = freshState(this.options.method);
    this.methods.presentDevice(state);
    this.options.onNewDevice?.(state);
    return state;
  }

  get hardwareId(): string {
    return this.state.hardwareId.toString('hex');
  }

  /** The current device's state, for tests and the vendor kit. */
  get current(): Readonly<DeviceState> {
    return this.state;
  }

  handleRequest(command: number, payload: Buffer): FirmwareReply | undefined {
    if (this.options.faults.has('silent')) return undefined;
    try {
      return { status: DeviceStatus.OK, payload: encodeTlv(this.dispatch(command, TlvReader.from(payload))) };
    } catch (err) {
      if (err instanceof Refusal) return { status: err.status, payload: encodeTlv([tlv.string(Tag.ERROR_DETAIL, err.message)]) };
      if (err instanceof TlvError) return { status: DeviceStatus.BAD_REQUEST, payload: encodeTlv([tlv.string(Tag.ERROR_DETAIL, err.message)]) };
      if (err instanceof HsmError) return { status: DeviceStatus.SE_ERROR, payload: encodeTlv([tlv.string(Tag.ERROR_DETAIL, err.code)]) };
      return { status: DeviceStatus.INTERNAL, payload: encodeTlv([tlv.string(Tag.ERROR_DETAIL, 'internal error')]) };
    }
  }

  private requireUnlocked(): void {
    if (this.state.locked) throw new Refusal(DeviceStatus.LOCKED, 'provisioning interface is locked');
  }

  private requireKey(): BirthKey {
    if (!this.state.birthKey) throw new Refusal(DeviceStatus.BAD_STATE, 'no birth key yet');
    return this.state.birthKey;
  }

  /**
   * WRITE_ITEM MAC_ADDRESSES: 1..8 individual (unicast) MACs, 6 bytes each, that IDENTIFY and
   * READ_ITEM report from now on. A device whose MACs are burned in (fault mac-fixed) refuses.
   */
  private macsToAdopt(value: Buffer): Buffer[] {
    if (this.options.faults.has('mac-fixed')) throw new Refusal(DeviceStatus.UNSUPPORTED, 'the MAC addresses are burned in and cannot be written');
    if (value.length === 0 || value.length > 48 || value.length % 6 !== 0) throw new Refusal(DeviceStatus.BAD_REQUEST, 'MAC_ADDRESSES is 1 to 8 MACs of 6 bytes each');
    const macs: Buffer[] = [];
    for (let i = 0; i < value.length; i += 6) macs.push(Buffer.from(value.subarray(i, i + 6)));
    if (macs.some((m) => (m[0]! & 0x01) !== 0)) throw new Refusal(DeviceStatus.BAD_REQUEST, 'a group (multicast) address cannot be a device\'s MAC');
    return macs;
  }

  private dispatch(command: number, req: TlvReader): TlvItem[] {
    const s = this.state;
    const protocol = this.options.protocol ?? { min: PROTOCOL_VERSION_MIN, max: PROTOCOL_VERSION_MAX };
    switch (command) {
      case Command.HELLO: {
        const min = req.u8(Tag.VERSION_MIN, 'VERSION_MIN');
        const max = req.u8(Tag.VERSION_MAX, 'VERSION_MAX');
        const version = Math.min(max, protocol.max);
        if (version < Math.max(min, protocol.min)) {
          throw new Refusal(DeviceStatus.UNSUPPORTED_VERSION, `device speaks ${protocol.min}..${protocol.max}`);
        }
        if (req.optional(Tag.MAX_PAYLOAD)) this.peerMaxPayloadBytes = Math.max(MIN_PAYLOAD_BYTES, req.u16(Tag.MAX_PAYLOAD, 'MAX_PAYLOAD'));
        // A new session on a port whose device already had one stands for the operator taking
        // that device off (passed or failed) and putting the next one on.
        if (s.sessionOpened && !this.options.keepDevice) {
          this.options.se?.destroyBirthKey();
          this.state = this.newDevice();
          this.devicesPresented++;
        }
        this.state.sessionOpened = true;
        return [tlv.u8(Tag.VERSION, version), tlv.u16(Tag.MAX_PAYLOAD, this.maxPayloadBytes)];
      }
      case Command.IDENTIFY: {
        const items = [
          tlv.string(Tag.MODEL, this.options.model),
          tlv.bytes(Tag.HARDWARE_ID, s.hardwareId),
          tlv.string(Tag.FIRMWARE_VERSION, this.options.firmwareVersion),
          ...s.macs.map((m) => tlv.bytes(Tag.MAC, m)),
          tlv.u32(Tag.CAPABILITIES, capabilitiesOf(this.options.method)),
          tlv.u32(Tag.METHODS, MethodBit[this.options.method]),
          tlv.u8(Tag.VERSION_MIN, protocol.min),
          tlv.u8(Tag.VERSION_MAX, protocol.max),
          tlv.u8(Tag.LOCKED, s.locked ? 1 : 0),
          tlv.u16(Tag.MAX_PAYLOAD, this.maxPayloadBytes),
        ];
        if (this.options.se && s.seSerial) items.push(tlv.string(Tag.SE_TYPE, 'SoftHSM-SE'), tlv.bytes(Tag.SE_SERIAL, s.seSerial));
        if (s.chipId) items.push(tlv.bytes(Tag.CHIP_ID, s.chipId));
        return items;
      }
      case Command.GENERATE_KEY: {
        this.requireUnlocked();
        const location = req.u8(Tag.KEY_LOCATION, 'KEY_LOCATION');
        if (s.birthKey) throw new Refusal(DeviceStatus.BAD_STATE, 'the birth key already exists');
        const caps = capabilitiesOf(this.options.method);
        if (location === KeyLocation.SECURE_ELEMENT && caps & Capability.SE_KEYGEN && this.options.se) {
          this.options.se.generateBirthKey();
          s.birthKey = seBirthKey(this.options.se);
        } else if (location === KeyLocation.DEVICE && caps & Capability.DEVICE_KEYGEN) {
          s.birthKey = generateSoftwareBirthKey();
        } else {
          throw new Refusal(DeviceStatus.UNSUPPORTED, `this device cannot generate a key ${location === KeyLocation.SECURE_ELEMENT ? 'in a secure element' : 'with its own RNG'}`);
        }
        return [tlv.bytes(Tag.PUBLIC_KEY, s.birthKey.spki)];
      }
      case Command.GET_PUBLIC_KEY:
        return [tlv.bytes(Tag.PUBLIC_KEY, this.requireKey().spki)];
      case Command.GET_CSR: {
        this.requireUnlocked();
        const key = this.requireKey();
        const serial = req.string(Tag.SUBJECT_SERIAL, 'SUBJECT_SERIAL');
        const cn = req.optional(Tag.SUBJECT_CN)?.toString('utf8') ?? this.options.model;
        const org = req.optional(Tag.SUBJECT_O)?.toString('utf8');
        for (const v of [serial, cn, ...(org === undefined ? [] : [org])]) {
          if (!PRINTABLE.test(v)) throw new Refusal(DeviceStatus.BAD_REQUEST, 'subject fields must be PrintableStrings of 1..64 characters');
        }
        s.serial = serial;
        const faults = this.options.faults;
        const csr = buildCsr({
          serial: faults.has('csr-wrong-serial') ? `${serial}X` : serial,
          model: cn,
          organization: org,
          spki: key.spki,
          sign: (data) => {
            const sig = key.sign(data);
            if (faults.has('csr-bad-signature')) sig[sig.length - 2] ^= 0x55;
            return sig;
          },
        });
        return [tlv.bytes(Tag.CSR, csr)];
      }
      case Command.GET_TRANSPORT_KEY:
        this.requireUnlocked();
        return this.methods.getTransportKey(s, req);
      case Command.INSTALL_WRAPPED_KEY:
        this.requireUnlocked();
        return this.methods.installWrappedKey(s, req);
      case Command.DERIVE_SEED_KEY:
        this.requireUnlocked();
        return this.methods.deriveSeedKey(s, req);
      case Command.READ_SE_INFO:
        return this.methods.readSeInfo(s, req);
      case Command.INSTALL_CHAIN: {
        this.requireUnlocked();
        const certs = req.all(Tag.CERTIFICATE);
        if (certs.length === 0) throw new Refusal(DeviceStatus.BAD_REQUEST, 'no certificate');
        // OpenSSL's parser (node:crypto), as a device's TLS stack would read it: the asn1 schema
        // parser cost the simulator ~2 ms of CPU per device, taken from the station it measures
        let leafKey: KeyObject;
        try {
          leafKey = new X509Certificate(certs[0]!).publicKey;
        } catch {
          throw new Refusal(DeviceStatus.BAD_REQUEST, 'the first certificate is not valid DER');
        }
        if (!s.birthKey || !leafKey.equals(createPublicKey({ key: s.birthKey.spki, format: 'der', type: 'spki' }))) {
          throw new Refusal(DeviceStatus.VERIFY_FAILED, 'the certificate is not for this device\'s birth key');
        }
        s.chain = certs;
        if (this.options.faults.has('rekey-on-install')) s.birthKey = generateSoftwareBirthKey();
        return [];
      }
      case Command.WRITE_ITEM: {
        this.requireUnlocked();
        const item = req.u8(Tag.ITEM_ID, 'ITEM_ID');
        const value = req.required(Tag.ITEM_VALUE, 'ITEM_VALUE');
        if (item === Item.IDEVID_CHAIN) throw new Refusal(DeviceStatus.UNSUPPORTED, 'the IDevID chain is written with INSTALL_CHAIN');
        if (!(Object.values(Item) as number[]).includes(item)) throw new Refusal(DeviceStatus.UNSUPPORTED, `unknown ${itemName(item)}`);
        if (item === Item.MASA_TRUST_ANCHOR) {
          try {
            new X509Certificate(value);
          } catch {
            throw new Refusal(DeviceStatus.BAD_REQUEST, 'the MASA trust anchor is not a DER certificate');
          }
        }
        if ((item === Item.DPP_URI || item === Item.MUD_URL) && !/^[\x20-\x7e]+$/.test(value.toString('latin1'))) {
          throw new Refusal(DeviceStatus.BAD_REQUEST, `${itemName(item)} must be printable ASCII`);
        }
        if (item === Item.MAC_ADDRESSES) {
          s.macs = this.macsToAdopt(value);
          return [];
        }
        s.items.set(item, value);
        return [];
      }
      case Command.READ_ITEM: {
        const item = req.u8(Tag.ITEM_ID, 'ITEM_ID');
        if (item === Item.IDEVID_CHAIN) return s.chain.map((c) => tlv.bytes(Tag.CERTIFICATE, c));
        if (item === Item.MAC_ADDRESSES) return [tlv.bytes(Tag.ITEM_VALUE, Buffer.concat(s.macs))];
        const value = s.items.get(item);
        if (!value) throw new Refusal(DeviceStatus.BAD_STATE, `no ${itemName(item)} stored`);
        if (item === Item.DPP_URI && this.options.faults.has('readback-corrupt')) {
          return [tlv.bytes(Tag.ITEM_VALUE, Buffer.concat([value.subarray(0, -3), Buffer.from('x;;')]))];
        }
        if (item === Item.MUD_URL && this.options.faults.has('readback-corrupt-mud')) {
          return [tlv.bytes(Tag.ITEM_VALUE, Buffer.concat([value, Buffer.from('?tampered')]))];
        }
        return [tlv.bytes(Tag.ITEM_VALUE, value)];
      }
      case Command.SIGN_CHALLENGE: {
        const key = this.requireKey();
        const nonce = req.required(Tag.NONCE, 'NONCE');
        const serial = req.string(Tag.SUBJECT_SERIAL, 'SUBJECT_SERIAL');
        const context = req.string(Tag.CONTEXT, 'CONTEXT');
        if (serial !== s.serial) throw new Refusal(DeviceStatus.VERIFY_FAILED, 'the challenge names another serial');
        let message: Buffer;
        try {
          message = challengeMessage(nonce, serial, context);
        } catch (err) {
          throw new Refusal(DeviceStatus.BAD_REQUEST, (err as Error).message);
        }
        if (this.options.faults.has('challenge-wrong-key')) {
          const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
          return [tlv.bytes(Tag.SIGNATURE, nodeSign('sha256', message, { key: other.privateKey, dsaEncoding: 'der' }))];
        }
        return [tlv.bytes(Tag.SIGNATURE, key.sign(message))];
      }
      case Command.BUILD_VOUCHER_REQUEST:
        return this.methods.buildVoucherRequest(s, req);
      case Command.VERIFY_VOUCHER:
        return this.methods.verifyVoucher(s, req);
      case Command.LOCK: {
        this.requireUnlocked();
        if (!s.birthKey || s.chain.length === 0) throw new Refusal(DeviceStatus.BAD_STATE, 'cannot lock before the birth credential is installed');
        if (this.options.faults.has('lock-refused')) throw new Refusal(DeviceStatus.INTERNAL, 'flash write failed while locking');
        s.locked = true;
        return [];
      }
      case Command.REWORK: {
        this.requireUnlocked();
        const auth = req.required(Tag.REWORK_AUTH, 'REWORK_AUTH');
        if (!auth.equals(s.hardwareId)) throw new Refusal(DeviceStatus.VERIFY_FAILED, 'rework authorisation does not match this device');
        this.options.se?.destroyBirthKey();
        const keep = { hardwareId: s.hardwareId, macs: s.macs, chipId: s.chipId, seed: s.seed, seSerial: s.seSerial, sessionOpened: true };
        this.state = { ...freshState(this.options.method), ...keep };
        return [];
      }
      default:
        throw new Refusal(DeviceStatus.UNKNOWN_COMMAND, `unknown command 0x${command.toString(16)}`);
    }
  }
}
