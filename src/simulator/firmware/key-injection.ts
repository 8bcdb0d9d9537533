/**
 * Method 3 (factory-injected key), device side (contracts.md §7, docs/crypto-constructions.md §2):
 *
 *   GET_TRANSPORT_KEY     a fresh software P-256 key pair in device RAM; answers its public key.
 *   INSTALL_WRAPPED_KEY   Z   = ECDH(transport private, HSM ephemeral public), the 32-byte x
 *                               coordinate (what CKM_ECDH1_DERIVE with CKD_NULL gives)
 *                         KEK = HKDF-SHA256(IKM = Z, salt = empty, info = "inject-v1" || serial, L = 32)
 *                         PKCS#8 = AES-256 key unwrap with padding (RFC 5649) of WRAPPED_KEY under KEK,
 *                               less SoftHSM's zero padding to a multiple of 8 (pkcs8FromUnwrapped)
 *
 * The transport key is single-use: it is destroyed as soon as it has been used in an ECDH,
 * whether the unwrap then succeeds or not; Z, the KEK and the clear PKCS#8 are zeroised.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { zeroise } from '../../core/bytes';
import { tlv, type TlvItem, type TlvReader } from '../../device/framing/tlv';
import { Tag } from '../../device/protocol/commands';
import { DeviceStatus } from '../../device/protocol/status';
import { softwareBirthKey } from '../birth-key';
import { Refusal, type DeviceState, type MethodFirmwareOptions } from './device-state';

/** HKDF info prefix; the serial (UTF-8) follows it. */
export const INJECTION_INFO_PREFIX = Buffer.from('inject-v1', 'utf8');
/** RFC 5649 alternative initial value (the 32-bit constant before the message length indicator). */
export const AES_KWP_IV = Buffer.from('a65959a6', 'hex');
const KWP_CIPHER = 'id-aes256-wrap-pad';

/** Subject serials are PrintableStrings of 1..64 characters (contracts.md §7, IDevID). */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]{1,64}$/;

/** KEK = HKDF-SHA256(Z, salt = empty, info = "inject-v1" || UTF-8(serial), 32 bytes). The caller zeroises it. */
export function injectionKek(z: Uint8Array, serial: string): Buffer {
  return Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), Buffer.concat([INJECTION_INFO_PREFIX, Buffer.from(serial, 'utf8')]), 32));
}

/** AES-256 key wrap with padding (RFC 5649), as CKM_AES_KEY_WRAP_PAD on SoftHSM produces it. */
export function aesKeyWrapPad(kek: Uint8Array, plaintext: Uint8Array): Buffer {
  const c = createCipheriv(KWP_CIPHER, kek, AES_KWP_IV);
  return Buffer.concat([c.update(plaintext), c.final()]);
}

/** RFC 5649 unwrap; throws when the integrity check fails (wrong KEK or a corrupted blob). */
export function aesKeyUnwrapPad(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  const d = createDecipheriv(KWP_CIPHER, kek, AES_KWP_IV);
  const head = d.update(wrapped);
  const tail = d.final();
  const out = Buffer.concat([head, tail]);
  zeroise(head);
  zeroise(tail);
  return out;
}

/**
 * The PKCS#8 DER inside an unwrapped blob. SoftHSM 2.6.1 zero-pads the PKCS#8 encoding of a
 * private key to a multiple of 8 bytes before C_WrapKey(CKM_AES_KEY_WRAP_PAD), so the RFC 5649
 * length indicator counts the padding (an EC P-256 key: 67 bytes of DER + 5 zero bytes). Accept
 * exactly that: one DER SEQUENCE followed by at most 7 zero bytes. Returns a view, not a copy.
 */
export function pkcs8FromUnwrapped(plain: Buffer): Buffer {
  if (plain[0] !== 0x30 || plain.length < 2) throw new RangeError('not a DER SEQUENCE');
  let header = 2;
  let length = plain[1]!;
  if (length === 0x81 && plain.length >= 3) {
    length = plain[2]!;
    header = 3;
  } else if (length === 0x82 && plain.length >= 4) {
    length = plain.readUInt16BE(2);
    header = 4;
  } else if (length >= 0x80) {
    throw new RangeError('unsupported DER length');
  }
  const total = header + length;
  if (total > plain.length) throw new RangeError('DER SEQUENCE runs past the unwrapped data');
  const padding = plain.subarray(total);
  if (padding.length > 7 || padding.some((b) => b !== 0)) throw new RangeError('unexpected bytes after the PKCS#8 structure');
  return plain.subarray(0, total);
}

function p256PublicKey(spki: Buffer, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new Refusal(DeviceStatus.BAD_REQUEST, `${what} is not a DER SubjectPublicKeyInfo`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Refusal(DeviceStatus.BAD_REQUEST, `${what} is not an EC P-256 key`);
  }
  return key;
}

export class KeyInjection {
  constructor(private readonly options: MethodFirmwareOptions) {}

  private requireInjection(command: string): void {
    if (this.options.method !== 'factory-injected-key') throw new Refusal(DeviceStatus.UNSUPPORTED, `${command}: this device does not accept injected keys`);
  }

  getTransportKey(s: DeviceState, _req: TlvReader): TlvItem[] {
    this.requireInjection('GET_TRANSPORT_KEY');
    if (s.birthKey) throw new Refusal(DeviceStatus.BAD_STATE, 'the birth key already exists');
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    s.transportKey = pair.privateKey; // replaces (and drops) any earlier, unused transport key
    return [tlv.bytes(Tag.PUBLIC_KEY, pair.publicKey.export({ format: 'der', type: 'spki' }))];
  }

  installWrappedKey(s: DeviceState, req: TlvReader): TlvItem[] {
    this.requireInjection('INSTALL_WRAPPED_KEY');
    if (s.birthKey) throw new Refusal(DeviceStatus.BAD_STATE, 'the birth key already exists');
    const peer = req.required(Tag.PEER_PUBLIC_KEY, 'PEER_PUBLIC_KEY');
    const wrapped = req.required(Tag.WRAPPED_KEY, 'WRAPPED_KEY');
    const serial = req.string(Tag.SUBJECT_SERIAL, 'SUBJECT_SERIAL');
    const transport = s.transportKey;
    if (!transport) throw new Refusal(DeviceStatus.BAD_STATE, 'no transport key: ask GET_TRANSPORT_KEY first');
    if (!PRINTABLE.test(serial)) throw new Refusal(DeviceStatus.BAD_REQUEST, 'SUBJECT_SERIAL must be a PrintableString of 1..64 characters');
    const peerKey = p256PublicKey(peer, 'PEER_PUBLIC_KEY');
    // RFC 5649: the output is 8 bytes longer than the input padded to a multiple of 8, so at least 16.
    if (wrapped.length < 16 || wrapped.length % 8 !== 0) throw new Refusal(DeviceStatus.BAD_REQUEST, 'WRAPPED_KEY is not an AES key-wrap-with-padding blob');

    s.transportKey = undefined; // single-use from here on, whatever the outcome
    const z = diffieHellman({ privateKey: transport, publicKey: peerKey });
    let kek: Buffer | undefined;
    let pkcs8: Buffer | undefined;
    try {
      kek = injectionKek(z, serial);
      zeroise(z);
      try {
        pkcs8 = aesKeyUnwrapPad(kek, wrapped);
      } catch {
        throw new Refusal(DeviceStatus.VERIFY_FAILED, 'the wrapped key fails the key-wrap integrity check (not wrapped for this transport key and serial)');
      }
      let privateKey: KeyObject;
      try {
        privateKey = createPrivateKey({ key: pkcs8FromUnwrapped(pkcs8), format: 'der', type: 'pkcs8' });
      } catch {
        throw new Refusal(DeviceStatus.BAD_REQUEST, 'the unwrapped key is not a PKCS#8 private key');
      }
      if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
        throw new Refusal(DeviceStatus.BAD_REQUEST, 'the unwrapped key is not an EC P-256 private key');
      }
      s.birthKey = softwareBirthKey(privateKey, 'injected');
      s.serial = serial;
      return [tlv.bytes(Tag.PUBLIC_KEY, s.birthKey.spki)];
    } finally {
      zeroise(z);
      if (kek) zeroise(kek);
      if (pkcs8) zeroise(pkcs8);
    }
  }
}
