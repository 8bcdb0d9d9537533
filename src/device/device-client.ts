/** Domain verbs over a DeviceConnection: what the station asks a device to do. */
import { DeviceError } from '../core/errors';
import { MAX_PAYLOAD_BYTES } from './framing/frame-codec';
import { encodeTlv, tlv, type TlvReader } from './framing/tlv';
import { Capability, Command, Item, KeyLocation, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, Tag, type ItemId, type KeyLocationId } from './protocol/commands';
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
  };
  locked: boolean;
  maxPayloadBytes: number;
}

export interface DeviceClientTimeouts {
  commandTimeoutMs: number;
  keygenTimeoutMs: number;
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

  private call(command: number, items: Parameters<typeof encodeTlv>[0], timeoutMs = this.timeouts.commandTimeoutMs): Promise<TlvReader> {
    return this.connection.request(command, encodeTlv(items), timeoutMs);
  }

  /** Version negotiation: the device answers with the highest version both sides support. */
  async hello(): Promise<number> {
    const r = await this.call(Command.HELLO, [tlv.u8(Tag.VERSION_MIN, PROTOCOL_VERSION_MIN), tlv.u8(Tag.VERSION_MAX, PROTOCOL_VERSION_MAX)]);
    let version: number;
    try {
      version = r.u8(Tag.VERSION, 'VERSION');
    } catch (err) {
      throw malformed(this.port, 'HELLO reply', err);
    }
    if (version < PROTOCOL_VERSION_MIN || version > PROTOCOL_VERSION_MAX) {
      throw new DeviceError('DEVICE_PROTOCOL_VERSION', `The device on ${this.port} chose protocol version ${version}; the station supports ${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}.`);
    }
    this.connection.version = version;
    return version;
  }

  async identify(): Promise<DeviceIdentity> {
    const r = await this.call(Command.IDENTIFY, []);
    try {
      const caps = r.u32(Tag.CAPABILITIES, 'CAPABILITIES');
      const identity: DeviceIdentity = {
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
        },
        locked: r.u8(Tag.LOCKED, 'LOCKED') !== 0,
        maxPayloadBytes: r.u16(Tag.MAX_PAYLOAD, 'MAX_PAYLOAD'),
      };
      this.connection.maxPayloadBytes = Math.min(identity.maxPayloadBytes, MAX_PAYLOAD_BYTES);
      return identity;
    } catch (err) {
      throw malformed(this.port, 'IDENTIFY reply', err);
    }
  }

  /** Ask the device to make its birth key; returns the public key as DER SPKI. */
  async generateKey(location: KeyLocationId = KeyLocation.SECURE_ELEMENT): Promise<Buffer> {
    const r = await this.call(Command.GENERATE_KEY, [tlv.u8(Tag.KEY_LOCATION, location)], this.timeouts.keygenTimeoutMs);
    try {
      return r.required(Tag.PUBLIC_KEY, 'PUBLIC_KEY');
    } catch (err) {
      throw malformed(this.port, 'GENERATE_KEY reply', err);
    }
  }

  /** The device builds a PKCS#10 request with subject serialNumber = serial, signed by its birth key. */
  async getCsr(serial: string): Promise<Buffer> {
    const r = await this.call(Command.GET_CSR, [tlv.string(Tag.SUBJECT_SERIAL, serial)], this.timeouts.keygenTimeoutMs);
    try {
      return r.required(Tag.CSR, 'CSR');
    } catch (err) {
      throw malformed(this.port, 'GET_CSR reply', err);
    }
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

  /** Read an item back. IDEVID_CHAIN returns the certificates (repeated CERTIFICATE items). */
  async readItem(item: ItemId): Promise<Buffer[]> {
    const r = await this.call(Command.READ_ITEM, [tlv.u8(Tag.ITEM_ID, item)]);
    return item === Item.IDEVID_CHAIN ? r.all(Tag.CERTIFICATE) : [r.required(Tag.ITEM_VALUE, 'ITEM_VALUE')];
  }

  async signChallenge(nonce: Buffer, serial: string, context: string): Promise<Buffer> {
    const r = await this.call(
      Command.SIGN_CHALLENGE,
      [tlv.bytes(Tag.NONCE, nonce), tlv.string(Tag.SUBJECT_SERIAL, serial), tlv.string(Tag.CONTEXT, context)],
      this.timeouts.keygenTimeoutMs,
    );
    try {
      return r.required(Tag.SIGNATURE, 'SIGNATURE');
    } catch (err) {
      throw malformed(this.port, 'SIGN_CHALLENGE reply', err);
    }
  }

  async lock(): Promise<void> {
    await this.call(Command.LOCK, []);
  }
}
