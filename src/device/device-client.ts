/** Domain verbs over a DeviceConnection: what the station asks a device to do. */
import { DeviceError } from '../core/errors';
import { METHOD_IDS, type MethodId } from '../core/method-id';
import { MAX_PAYLOAD_BYTES } from './framing/frame-codec';
import { MIN_PAYLOAD_BYTES } from './framing/fragments';
import { encodeTlv, tlv, type TlvItem, type TlvReader } from './framing/tlv';
import {
  Capability,
  Command,
  Item,
  KeyLocation,
  MethodBit,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
  Tag,
  type ItemId,
  type KeyLocationId,
} from './protocol/commands';
import type { DeviceConnection } from './device-connection';

export interface DeviceIdentity {
  model: string;
  hardwareId: string;
  firmwareVersion: string;
  /** 12 lowercase hex digits each. */
  macs: string[];
  capabilities: {
    secureElement: boolean;
    deviceKeygen: boolean;
    seKeygen: boolean;
    keyInjection: boolean;
    sePreprovisioned: boolean;
    seedDerivation: boolean;
    brski: boolean;
  };
  /** The birth-credential methods the firmware supports. */
  methods: MethodId[];
  secureElement: { type: string; serial: string } | null;
  /** Chip id for seed-derived keys (hex), when the chip has a vendor seed. */
  chipId: string | null;
  protocol: { min: number; max: number };
  locked: boolean;
  maxPayloadBytes: number;
}

export interface SeInfo {
  seSerial: string;
  /** The SE vendor's certificate for the SE key, then its chain, DER. */
  certificates: Buffer[];
}

export interface DeviceClientTimeouts {
  commandTimeoutMs: number;
  keygenTimeoutMs: number;
}

export interface CsrSubject {
  serial: string;
  commonName?: string;
  organization?: string;
}

function malformed(port: string, what: string, err: unknown): DeviceError {
  return new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${port} sent a bad ${what}: ${(err as Error).message}.`, { details: { port } });
}

export class DeviceClient {
  constructor(
    readonly connection: DeviceConnection,
    private readonly timeouts: DeviceClientTimeouts,
  ) {}

  get port(): string {
    return this.connection.port;
  }

  private call(command: number, items: readonly TlvItem[], timeoutMs = this.timeouts.commandTimeoutMs): Promise<TlvReader> {
    return this.connection.request(command, encodeTlv(items), timeoutMs);
  }

  private read<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw malformed(this.port, what, err);
    }
  }

  /**
   * Open a session: version negotiation (the device answers with the highest version both
   * support, or UNSUPPORTED_VERSION) and each side's frame limit.
   */
  async hello(): Promise<number> {
    const r = await this.call(Command.HELLO, [
      tlv.u8(Tag.VERSION_MIN, PROTOCOL_VERSION_MIN),
      tlv.u8(Tag.VERSION_MAX, PROTOCOL_VERSION_MAX),
      tlv.u16(Tag.MAX_PAYLOAD, this.connection.localMaxPayloadBytes),
    ]);
    const { version, maxPayload } = this.read('HELLO reply', () => ({
      version: r.u8(Tag.VERSION, 'VERSION'),
      maxPayload: r.optional(Tag.MAX_PAYLOAD) ? r.u16(Tag.MAX_PAYLOAD, 'MAX_PAYLOAD') : MAX_PAYLOAD_BYTES,
    }));
    if (version < PROTOCOL_VERSION_MIN || version > PROTOCOL_VERSION_MAX) {
      throw new DeviceError('DEVICE_PROTOCOL_VERSION', `The device on ${this.port} chose protocol version ${version}; the station supports ${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}.`);
    }
    if (maxPayload < MIN_PAYLOAD_BYTES) {
      throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${this.port} announced a frame limit of ${maxPayload} bytes; at least ${MIN_PAYLOAD_BYTES} is required.`);
    }
    this.connection.version = version;
    this.connection.maxPayloadBytes = Math.min(maxPayload, this.connection.localMaxPayloadBytes);
    return version;
  }

  async identify(): Promise<DeviceIdentity> {
    const r = await this.call(Command.IDENTIFY, []);
    return this.read('IDENTIFY reply', () => {
      const caps = r.u32(Tag.CAPABILITIES, 'CAPABILITIES');
      const methodBits = r.optional(Tag.METHODS) ? r.u32(Tag.METHODS, 'METHODS') : 0;
      const seType = r.optional(Tag.SE_TYPE)?.toString('utf8');
      const seSerial = r.optional(Tag.SE_SERIAL);
      const chipId = r.optional(Tag.CHIP_ID);
      return {
        model: r.string(Tag.MODEL, 'MODEL'),
        hardwareId: r.required(Tag.HARDWARE_ID, 'HARDWARE_ID').toString('hex'),
        firmwareVersion: r.string(Tag.FIRMWARE_VERSION, 'FIRMWARE_VERSION'),
        macs: r.all(Tag.MAC).map((m) => {
          if (m.length !== 6) throw new Error('a MAC is 6 bytes');
          return m.toString('hex');
        }),
        capabilities: {
          secureElement: (caps & Capability.SECURE_ELEMENT) !== 0,
          deviceKeygen: (caps & Capability.DEVICE_KEYGEN) !== 0,
          seKeygen: (caps & Capability.SE_KEYGEN) !== 0,
          keyInjection: (caps & Capability.KEY_INJECTION) !== 0,
          sePreprovisioned: (caps & Capability.SE_PREPROVISIONED) !== 0,
          seedDerivation: (caps & Capability.SEED_DERIVATION) !== 0,
          brski: (caps & Capability.BRSKI) !== 0,
        },
        methods: METHOD_IDS.filter((m) => (methodBits & MethodBit[m]) !== 0),
        secureElement: seType !== undefined && seSerial !== undefined ? { type: seType, serial: seSerial.toString('hex') } : null,
        chipId: chipId ? chipId.toString('hex') : null,
        protocol: {
          min: r.optional(Tag.VERSION_MIN) ? r.u8(Tag.VERSION_MIN, 'VERSION_MIN') : this.connection.version,
          max: r.optional(Tag.VERSION_MAX) ? r.u8(Tag.VERSION_MAX, 'VERSION_MAX') : this.connection.version,
        },
        locked: r.u8(Tag.LOCKED, 'LOCKED') !== 0,
        maxPayloadBytes: r.u16(Tag.MAX_PAYLOAD, 'MAX_PAYLOAD'),
      };
    });
  }

  /** Ask the device to make its birth key (in its SE or with its own RNG); returns the DER SPKI. */
  async generateKey(location: KeyLocationId = KeyLocation.SECURE_ELEMENT): Promise<Buffer> {
    const r = await this.call(Command.GENERATE_KEY, [tlv.u8(Tag.KEY_LOCATION, location)], this.timeouts.keygenTimeoutMs);
    return this.read('GENERATE_KEY reply', () => r.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY'));
  }

  /** The public half of the device's birth key, as DER SPKI. */
  async getPublicKey(): Promise<Buffer> {
    const r = await this.call(Command.GET_PUBLIC_KEY, []);
    return this.read('GET_PUBLIC_KEY reply', () => r.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY'));
  }

  /** The device builds a PKCS#10 request for these subject fields, signed by its birth key. */
  async getCsr(subject: string | CsrSubject): Promise<Buffer> {
    const s = typeof subject === 'string' ? { serial: subject } : subject;
    const items = [tlv.string(Tag.SUBJECT_SERIAL, s.serial)];
    if (s.commonName !== undefined) items.push(tlv.string(Tag.SUBJECT_CN, s.commonName));
    if (s.organization !== undefined) items.push(tlv.string(Tag.SUBJECT_O, s.organization));
    const r = await this.call(Command.GET_CSR, items, this.timeouts.keygenTimeoutMs);
    return this.read('GET_CSR reply', () => r.required(Tag.CSR, 'CSR'));
  }

  /** Method 3: a fresh transport key pair made by the device; returns its public key (DER SPKI). */
  async getTransportKey(): Promise<Buffer> {
    const r = await this.call(Command.GET_TRANSPORT_KEY, [], this.timeouts.keygenTimeoutMs);
    return this.read('GET_TRANSPORT_KEY reply', () => r.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY'));
  }

  /**
   * Method 3: install a birth key wrapped for the device (contracts.md §7): the HSM's ephemeral
   * public key and the AES key-wrap blob. Returns the public key of the installed birth key.
   */
  async installWrappedKey(input: { hsmPublicKey: Buffer; wrappedKey: Buffer; serial: string }): Promise<Buffer> {
    const r = await this.call(
      Command.INSTALL_WRAPPED_KEY,
      [tlv.bytes(Tag.PEER_PUBLIC_KEY, input.hsmPublicKey), tlv.bytes(Tag.WRAPPED_KEY, input.wrappedKey), tlv.string(Tag.SUBJECT_SERIAL, input.serial)],
      this.timeouts.keygenTimeoutMs,
    );
    return this.read('INSTALL_WRAPPED_KEY reply', () => r.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY'));
  }

  /**
   * Method 5: the device derives its birth key from the vendor seed; returns the public key.
   * With `serial`, the device also remembers the serial it is provisioned as (for SIGN_CHALLENGE,
   * as GET_CSR and INSTALL_WRAPPED_KEY do).
   */
  async deriveSeedKey(serial?: string): Promise<Buffer> {
    const r = await this.call(Command.DERIVE_SEED_KEY, serial === undefined ? [] : [tlv.string(Tag.SUBJECT_SERIAL, serial)], this.timeouts.keygenTimeoutMs);
    return this.read('DERIVE_SEED_KEY reply', () => r.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY'));
  }

  /** Method 4: the SE's serial and the certificate its vendor put in it (then the vendor chain). */
  async readSeInfo(): Promise<SeInfo> {
    const r = await this.call(Command.READ_SE_INFO, []);
    return this.read('READ_SE_INFO reply', () => {
      const certificates = r.all(Tag.CERTIFICATE);
      if (certificates.length === 0) throw new Error('no SE certificate');
      return { seSerial: r.required(Tag.SE_SERIAL, 'SE_SERIAL').toString('hex'), certificates };
    });
  }

  /** Leaf first, then the issuing CA, then the root; DER each. */
  async installChain(chain: readonly Buffer[]): Promise<void> {
    await this.call(
      Command.INSTALL_CHAIN,
      chain.map((c) => tlv.bytes(Tag.CERTIFICATE, c)),
    );
  }

  async writeItem(item: ItemId, value: Buffer): Promise<void> {
    await this.call(Command.WRITE_ITEM, [tlv.u8(Tag.ITEM_ID, item), tlv.bytes(Tag.ITEM_VALUE, value)]);
  }

  async installDppUri(uri: string): Promise<void> {
    await this.writeItem(Item.DPP_URI, Buffer.from(uri, 'utf8'));
  }

  /**
   * Give the device its MAC addresses (12 hex digits each): WRITE_ITEM MAC_ADDRESSES, 6 bytes
   * per MAC. A device whose MACs are burned in refuses with UNSUPPORTED (DEVICE_UNSUPPORTED).
   */
  async writeMacs(macs: readonly string[]): Promise<void> {
    if (macs.length === 0 || macs.some((m) => !/^[0-9a-f]{12}$/.test(m))) throw new DeviceError('DEVICE_BAD_REQUEST', `Not a list of MAC addresses to write: ${JSON.stringify(macs)}.`);
    await this.writeItem(Item.MAC_ADDRESSES, Buffer.concat(macs.map((m) => Buffer.from(m, 'hex'))));
  }

  /** The MAC addresses the device holds now (READ_ITEM MAC_ADDRESSES), 12 hex digits each. */
  async readMacs(): Promise<string[]> {
    const [value] = await this.readItem(Item.MAC_ADDRESSES);
    return this.read('MAC_ADDRESSES item', () => {
      if (!value || value.length === 0 || value.length % 6 !== 0) throw new Error('MAC_ADDRESSES must be 6 bytes per MAC');
      const macs: string[] = [];
      for (let i = 0; i < value.length; i += 6) macs.push(value.subarray(i, i + 6).toString('hex'));
      return macs;
    });
  }

  /** Read an item back. IDEVID_CHAIN returns the certificates (repeated CERTIFICATE items). */
  async readItem(item: ItemId): Promise<Buffer[]> {
    const r = await this.call(Command.READ_ITEM, [tlv.u8(Tag.ITEM_ID, item)]);
    return this.read('READ_ITEM reply', () => (item === Item.IDEVID_CHAIN ? r.all(Tag.CERTIFICATE) : [r.required(Tag.ITEM_VALUE, 'ITEM_VALUE')]));
  }

  async signChallenge(nonce: Buffer, serial: string, context: string): Promise<Buffer> {
    const r = await this.call(
      Command.SIGN_CHALLENGE,
      [tlv.bytes(Tag.NONCE, nonce), tlv.string(Tag.SUBJECT_SERIAL, serial), tlv.string(Tag.CONTEXT, context)],
      this.timeouts.keygenTimeoutMs,
    );
    return this.read('SIGN_CHALLENGE reply', () => r.required(Tag.SIGNATURE, 'SIGNATURE'));
  }

  /**
   * BRSKI: the device builds a pledge voucher-request (RFC 8995 section 3) for this nonce and
   * registrar certificate, signed with its birth key; returned as the device sends it.
   */
  async buildVoucherRequest(input: { nonce: Buffer; registrarCertificate?: Buffer; createdOn?: Date }): Promise<Buffer> {
    const items = [tlv.bytes(Tag.NONCE, input.nonce)];
    if (input.registrarCertificate) items.push(tlv.bytes(Tag.REGISTRAR_CERT, input.registrarCertificate));
    if (input.createdOn) items.push(tlv.string(Tag.CREATED_ON, input.createdOn.toISOString()));
    const r = await this.call(Command.BUILD_VOUCHER_REQUEST, items, this.timeouts.keygenTimeoutMs);
    return this.read('BUILD_VOUCHER_REQUEST reply', () => r.required(Tag.VOUCHER_REQUEST, 'VOUCHER_REQUEST'));
  }

  /** BRSKI: the device verifies a voucher against its installed MASA trust anchor. */
  async verifyVoucher(voucher: Buffer): Promise<void> {
    await this.call(Command.VERIFY_VOUCHER, [tlv.bytes(Tag.VOUCHER, voucher)], this.timeouts.keygenTimeoutMs);
  }

  async lock(): Promise<void> {
    await this.call(Command.LOCK, []);
  }

  /**
   * Guarded rework: clears the provisioning state of an unlocked device (a locked device refuses
   * with LOCKED). `authorisation` is the rework code the product defines.
   */
  async rework(authorisation: Buffer): Promise<void> {
    await this.call(Command.REWORK, [tlv.bytes(Tag.REWORK_AUTH, authorisation)]);
  }
}
