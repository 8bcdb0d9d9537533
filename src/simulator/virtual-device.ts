/**
 * The reference firmware behaviour behind protocol v1: one virtual device at a time on a port.
 * A second HELLO on a port stands for the operator swapping in the next device: the simulator
 * presents a fresh, unprovisioned device with a new identity on the same port (and the same
 * secure-element token), whether the previous device passed or failed.
 */
import { createHash, generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { FLAG_RESPONSE, MAX_PAYLOAD_BYTES, type Frame } from '../device/framing/frame-codec';
import { TlvError, TlvReader, encodeTlv, tlv, type TlvItem } from '../device/framing/tlv';
import { HsmError } from '../core/errors';
import { challengeMessage } from '../device/protocol/challenge';
import { Capability, Command, Item, KeyLocation, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, Tag } from '../device/protocol/commands';
import { DeviceStatus } from '../device/protocol/status';
import { buildCsr } from './csr-builder';
import type { Fault } from './faults';
import type { SimulatedSecureElement } from './simulated-secure-element';

export interface VirtualDeviceOptions {
  model: string;
  firmwareVersion: string;
  faults: ReadonlySet<Fault>;
  se: SimulatedSecureElement;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(detail);
  }
}

interface DeviceState {
  hardwareId: Buffer;
  macs: Buffer[];
  serial: string | undefined;
  chain: Buffer[];
  dppUri: Buffer | undefined;
  locked: boolean;
  keyReady: boolean;
  sessionOpened: boolean;
}

function freshState(): DeviceState {
  const mac = randomBytes(6);
  mac[0] = (mac[0]! & 0xfc) | 0x02; // locally administered, unicast
  return { hardwareId: randomBytes(8), macs: [mac], serial: undefined, chain: [], dppUri: undefined, locked: false, keyReady: false, sessionOpened: false };
}

export class VirtualDevice {
  private state: DeviceState = freshState();
  /** Devices presented on this port so far (the first one counts). */
  devicesPresented = 1;

  constructor(private readonly options: VirtualDeviceOptions) {}

  get hardwareId(): string {
    return this.state.hardwareId.toString('hex');
  }

  /** Handle one request frame; undefined means the device stays silent. */
  handle(frame: Frame): Frame | undefined {
    if (this.options.faults.has('silent')) return undefined;
    if (frame.flags & FLAG_RESPONSE) return undefined;
    const reply = (status: number, items: TlvItem[] = []): Frame => ({
      version: frame.version,
      flags: FLAG_RESPONSE,
      seq: frame.seq,
      command: frame.command,
      status,
      payload: encodeTlv(items),
    });
    try {
      const req = TlvReader.from(frame.payload);
      return reply(DeviceStatus.OK, this.dispatch(frame.command, req));
    } catch (err) {
      if (err instanceof Refusal) return reply(err.status, [tlv.string(Tag.ERROR_DETAIL, err.message)]);
      if (err instanceof TlvError) return reply(DeviceStatus.BAD_REQUEST, [tlv.string(Tag.ERROR_DETAIL, err.message)]);
      if (err instanceof HsmError) return reply(DeviceStatus.SE_ERROR, [tlv.string(Tag.ERROR_DETAIL, err.code)]);
      return reply(DeviceStatus.INTERNAL, [tlv.string(Tag.ERROR_DETAIL, 'internal error')]);
    }
  }

  private requireUnlocked(): void {
    if (this.state.locked) throw new Refusal(DeviceStatus.LOCKED, 'provisioning interface is locked');
  }

  private dispatch(command: number, req: TlvReader): TlvItem[] {
    const s = this.state;
    switch (command) {
      case Command.HELLO: {
        const min = req.u8(Tag.VERSION_MIN, 'VERSION_MIN');
        const max = req.u8(Tag.VERSION_MAX, 'VERSION_MAX');
        const version = Math.min(max, PROTOCOL_VERSION_MAX);
        if (version < Math.max(min, PROTOCOL_VERSION_MIN)) {
          throw new Refusal(DeviceStatus.UNSUPPORTED_VERSION, `device speaks ${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}`);
        }
        // A new session on a port whose device already had one stands for the operator taking
        // that device off (passed or failed) and putting the next one on.
        if (s.sessionOpened) {
          this.options.se.destroyBirthKey();
          this.state = freshState();
          this.devicesPresented++;
        }
        this.state.sessionOpened = true;
        return [tlv.u8(Tag.VERSION, version)];
      }
      case Command.IDENTIFY:
        return [
          tlv.string(Tag.MODEL, this.options.model),
          tlv.bytes(Tag.HARDWARE_ID, this.state.hardwareId),
          tlv.string(Tag.FIRMWARE_VERSION, this.options.firmwareVersion),
          ...this.state.macs.map((m) => tlv.bytes(Tag.MAC, m)),
          tlv.u32(Tag.CAPABILITIES, Capability.SECURE_ELEMENT | Capability.SE_KEYGEN),
          tlv.u8(Tag.LOCKED, this.state.locked ? 1 : 0),
          tlv.u16(Tag.MAX_PAYLOAD, MAX_PAYLOAD_BYTES),
        ];
      case Command.GENERATE_KEY: {
        this.requireUnlocked();
        const location = req.u8(Tag.KEY_LOCATION, 'KEY_LOCATION');
        if (location !== KeyLocation.SECURE_ELEMENT) throw new Refusal(DeviceStatus.UNSUPPORTED, 'this device generates keys only in its secure element');
        if (s.keyReady) throw new Refusal(DeviceStatus.BAD_STATE, 'the birth key already exists');
        const spki = this.options.se.generateBirthKey();
        s.keyReady = true;
        return [tlv.bytes(Tag.PUBLIC_KEY, spki)];
      }
      case Command.GET_CSR: {
        this.requireUnlocked();
        if (!s.keyReady) throw new Refusal(DeviceStatus.BAD_STATE, 'no birth key yet');
        const serial = req.string(Tag.SUBJECT_SERIAL, 'SUBJECT_SERIAL');
        if (!/^[A-Za-z0-9 '()+,\-./:=?]{1,64}$/.test(serial)) throw new Refusal(DeviceStatus.BAD_REQUEST, 'serial is not a PrintableString');
        s.serial = serial;
        const faults = this.options.faults;
        const csr = buildCsr({
          serial: faults.has('csr-wrong-serial') ? `${serial}X` : serial,
          model: this.options.model,
          spki: this.options.se.publicKeySpki!,
          sign: (data) => {
            const sig = this.options.se.sign(data);
            if (faults.has('csr-bad-signature')) sig[sig.length - 2] ^= 0x55;
            return sig;
          },
        });
        return [tlv.bytes(Tag.CSR, csr)];
      }
      case Command.INSTALL_CHAIN: {
        this.requireUnlocked();
        const certs = req.all(Tag.CERTIFICATE);
        if (certs.length === 0) throw new Refusal(DeviceStatus.BAD_REQUEST, 'no certificate');
        const leaf = AsnConvert.parse(certs[0]!, Certificate);
        const leafSpki = Buffer.from(AsnConvert.serialize(leaf.tbsCertificate.subjectPublicKeyInfo));
        if (!s.keyReady || !leafSpki.equals(this.options.se.publicKeySpki!)) {
          throw new Refusal(DeviceStatus.VERIFY_FAILED, 'the certificate is not for this device\'s birth key');
        }
        s.chain = certs;
        return [];
      }
      case Command.WRITE_ITEM: {
        this.requireUnlocked();
        const item = req.u8(Tag.ITEM_ID, 'ITEM_ID');
        if (item !== Item.DPP_URI) throw new Refusal(DeviceStatus.UNSUPPORTED, `item ${item} cannot be written with WRITE_ITEM`);
        s.dppUri = req.required(Tag.ITEM_VALUE, 'ITEM_VALUE');
        return [];
      }
      case Command.READ_ITEM: {
        const item = req.u8(Tag.ITEM_ID, 'ITEM_ID');
        if (item === Item.IDEVID_CHAIN) return s.chain.map((c) => tlv.bytes(Tag.CERTIFICATE, c));
        if (item === Item.DPP_URI) {
          if (!s.dppUri) throw new Refusal(DeviceStatus.BAD_STATE, 'no DPP URI stored');
          const value = this.options.faults.has('readback-corrupt') ? Buffer.concat([s.dppUri.subarray(0, -3), Buffer.from('x;;')]) : s.dppUri;
          return [tlv.bytes(Tag.ITEM_VALUE, value)];
        }
        throw new Refusal(DeviceStatus.UNSUPPORTED, `unknown item ${item}`);
      }
      case Command.SIGN_CHALLENGE: {
        if (!s.keyReady) throw new Refusal(DeviceStatus.BAD_STATE, 'no birth key');
        const nonce = req.required(Tag.NONCE, 'NONCE');
        const serial = req.string(Tag.SUBJECT_SERIAL, 'SUBJECT_SERIAL');
        const context = req.string(Tag.CONTEXT, 'CONTEXT');
        if (serial !== s.serial) throw new Refusal(DeviceStatus.VERIFY_FAILED, 'the challenge names another serial');
        const message = challengeMessage(nonce, serial, context);
        if (this.options.faults.has('challenge-wrong-key')) {
          const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
          return [tlv.bytes(Tag.SIGNATURE, nodeSign('sha256', message, { key: other.privateKey, dsaEncoding: 'der' }))];
        }
        return [tlv.bytes(Tag.SIGNATURE, this.options.se.sign(message))];
      }
      case Command.LOCK: {
        this.requireUnlocked();
        if (!s.keyReady || s.chain.length === 0) throw new Refusal(DeviceStatus.BAD_STATE, 'cannot lock before the birth credential is installed');
        s.locked = true;
        return [];
      }
      default:
        throw new Refusal(DeviceStatus.UNKNOWN_COMMAND, `unknown command 0x${command.toString(16)}`);
    }
  }

  /** For logs only: a short fingerprint of the current public key. */
  keyFingerprint(): string | undefined {
    const spki = this.options.se.publicKeySpki;
    return spki ? createHash('sha256').update(spki).digest('hex').slice(0, 16) : undefined;
  }
}
