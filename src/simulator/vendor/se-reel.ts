/**
 * The simulated SE vendor's reel: secure elements it provisioned at its factory, before any
 * device existed. Each SE's key pair is a token object on the `se-reel` SoftHSM token in the
 * simulator's SoftHSM (generated there: CKA_LOCAL, sensitive, never extractable, sign only), and
 * the reel file in the vendor folder lists, in reel order, each SE's serial and the vendor's
 * certificate of its key. The vendor kit adds SEs to the reel; the simulator puts the next SE
 * off the reel into each new device (method 4) and remembers how far it got, so an SE is never
 * placed in two devices.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rawEcdsaToDer } from '../../hsm/pkcs11/ecdsa-signature';
import type { Pkcs11Handle, Pkcs11Library } from '../../hsm/pkcs11/pkcs11-library';
import { Pkcs11Token } from '../../hsm/pkcs11/pkcs11-token';

export const SE_REEL_TOKEN = 'se-reel';
/** Reel order: `{ "ses": [{ "serial": hex, "certificate": base64 DER }] }`. */
export const SE_REEL_FILE = 'se-reel.json';
/** How many SEs the simulator has taken off the reel: `{ "next": n }`. */
export const SE_REEL_STATE_FILE = 'se-reel-state.json';
const PIN_FILE = 'se-reel-pin';
const SO_PIN_FILE = 'se-reel-so-pin';

interface ReelFile {
  ses: { serial: string; certificate: string }[];
}

/** An SE off the reel: its serial, its key (on the token) and the vendor's certificate of it. */
export interface ReelSe {
  serial: Buffer;
  spki: Buffer;
  certificate: Buffer;
  /** ECDSA P-256 / SHA-256 by the SE key, DER signature. */
  sign(data: Uint8Array): Buffer;
}

export function seKeyLabel(serialHex: string): string {
  return `se-${serialHex}`;
}

/** A CryptoAuthentication-style 9-byte serial: 01 23, six random bytes, 01. */
export function newSeSerial(): Buffer {
  return Buffer.concat([Buffer.from([0x01, 0x23]), randomBytes(6), Buffer.from([0x01])]);
}

function writeJsonAtomically(path: string, value: unknown, mode = 0o644): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode });
  renameSync(tmp, path);
}

function readOrCreateSecret(path: string, create: boolean): string | undefined {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  if (!create) return undefined;
  const value = randomBytes(12).toString('base64url');
  writeFileSync(path, value + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return value;
}

export class SeReel {
  private constructor(
    private readonly token: Pkcs11Token,
    private readonly vendorDir: string,
  ) {}

  /**
   * The reel token in `library` (SOFTHSM2_CONF must already name the simulator's SoftHSM).
   * `create`: the vendor kit makes the token when it is missing; the simulator does not
   * (undefined: no reel yet, so its SEs are provisioned on the fly and listed in no manifest).
   */
  static open(library: Pkcs11Library, vendorDir: string, create: boolean): SeReel | undefined {
    const pin = readOrCreateSecret(join(vendorDir, PIN_FILE), create);
    if (pin === undefined) return undefined;
    if (!library.findToken(SE_REEL_TOKEN)) {
      if (!create) return undefined;
      library.initToken(SE_REEL_TOKEN, readOrCreateSecret(join(vendorDir, SO_PIN_FILE), true)!, pin);
    }
    return new SeReel(Pkcs11Token.login(library, SE_REEL_TOKEN, pin), vendorDir);
  }

  close(): void {
    this.token.close();
  }

  private readReel(): ReelFile {
    const path = join(this.vendorDir, SE_REEL_FILE);
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as ReelFile) : { ses: [] };
  }

  /** The vendor's factory: a new SE key on the token for each serial; `certify` makes its certificate. */
  provision(count: number, certify: (serialHex: string, spki: Buffer) => Buffer): { serial: Buffer; spki: Buffer; certificate: Buffer }[] {
    const reel = this.readReel();
    const made: { serial: Buffer; spki: Buffer; certificate: Buffer }[] = [];
    for (let i = 0; i < count; i++) {
      const serial = newSeSerial();
      const hex = serial.toString('hex');
      const pair = this.token.generateEcP256KeyPair({ label: seKeyLabel(hex), id: serial, token: true, usage: { sign: true } });
      const certificate = certify(hex, pair.spki);
      made.push({ serial, spki: pair.spki, certificate });
      reel.ses.push({ serial: hex, certificate: certificate.toString('base64') });
    }
    writeJsonAtomically(join(this.vendorDir, SE_REEL_FILE), reel);
    return made;
  }

  /** The SE with this serial, when the reel has it (a reworked device keeps its SE). */
  adopt(serialHex: string): ReelSe | undefined {
    const listed = this.readReel().ses.find((s) => s.serial === serialHex);
    if (!listed) return undefined;
    const label = seKeyLabel(serialHex);
    const privateKey: Pkcs11Handle | undefined = this.token.findPrivateKey(label);
    const publicKey = this.token.findPublicKey(label);
    if (!privateKey || !publicKey) return undefined;
    const token = this.token;
    return {
      serial: Buffer.from(serialHex, 'hex'),
      spki: token.publicKeySpki(publicKey),
      certificate: Buffer.from(listed.certificate, 'base64'),
      sign: (data) => rawEcdsaToDer(token.signSha256Raw(privateKey, Buffer.from(data))),
    };
  }

  /** The next SE off the reel, or undefined when the reel is used up. */
  takeNext(): ReelSe | undefined {
    const statePath = join(this.vendorDir, SE_REEL_STATE_FILE);
    const reel = this.readReel();
    let next = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, 'utf8')) as { next: number }).next : 0;
    while (next < reel.ses.length) {
      const se = this.adopt(reel.ses[next]!.serial);
      next++;
      writeJsonAtomically(statePath, { next });
      if (se) return se;
    }
    return undefined;
  }
}
