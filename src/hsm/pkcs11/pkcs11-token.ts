/**
 * A logged-in token: key lookup, EC P-256 key generation with explicit templates, raw signing,
 * attribute reads. One session; every call is synchronous, so operations never overlap on it
 * (pitfalls.md 2). Login is once per token and application (pitfalls.md 3).
 */
import { createHash } from 'node:crypto';
import { HsmError } from '../../core/errors';
import { ckrName, isPkcs11Error, toHsmError } from './ckr-names';
import { Pkcs11Library, pkcs11js, type Pkcs11Handle } from './pkcs11-library';
import { P256_EC_PARAMS, readP256PublicKeySpki, type PrivateKeyAudit } from './pkcs11-objects';

/** DER of the prime256v1 OID, the CKA_EC_PARAMS value for P-256. */
export { P256_EC_PARAMS } from './pkcs11-objects';

export interface EcKeyPairOptions {
  label: string;
  id?: Buffer;
  /** Token object (persistent) or session object. */
  token: boolean;
  /** The private key's permitted uses; everything not listed is explicitly false. */
  usage: { sign?: boolean; derive?: boolean };
  extractable?: boolean;
}

export interface EcKeyPairHandles {
  privateKey: Pkcs11Handle;
  publicKey: Pkcs11Handle;
  /** DER SubjectPublicKeyInfo of the public key. */
  spki: Buffer;
}

export type { PrivateKeyAudit } from './pkcs11-objects';

export class Pkcs11Token {
  private constructor(
    readonly library: Pkcs11Library,
    readonly label: string,
    readonly slot: Pkcs11Handle,
    private readonly session: Pkcs11Handle,
    /** The token's serial number (CK_TOKEN_INFO.serialNumber, hex digits on SoftHSM). */
    readonly serial: string,
  ) {}

  /** Open the token with this label and log in as user. `pin` is used and not kept. */
  static login(library: Pkcs11Library, label: string, pin: string): Pkcs11Token {
    const summary = library.findToken(label);
    if (!summary) {
      throw new HsmError('HSM_TOKEN_ABSENT', `No HSM token labelled "${label}" was found in ${library.modulePath}. Run "station pki init" or check hsm.tokenLabel.`, {
        details: { token: label },
      });
    }
    let session: Pkcs11Handle;
    try {
      session = library.api.C_OpenSession(summary.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    } catch (err) {
      throw toHsmError(err, `opening a session on token ${label}`);
    }
    try {
      library.api.C_Login(session, pkcs11js.CKU_USER, pin);
    } catch (err) {
      if (!(isPkcs11Error(err) && ckrName(err.code) === 'CKR_USER_ALREADY_LOGGED_IN')) {
        library.api.C_CloseSession(session);
        throw toHsmError(err, `logging in to token ${label}`);
      }
    }
    return new Pkcs11Token(library, label, summary.slot, session, summary.serial);
  }

  close(): void {
    try {
      this.library.api.C_CloseSession(this.session);
    } catch {
      // closing a dead session is not an error worth reporting
    }
  }

  private find(template: pkcs11js.Template, max = 16): Pkcs11Handle[] {
    const api = this.library.api;
    try {
      api.C_FindObjectsInit(this.session, template);
      try {
        return api.C_FindObjects(this.session, max);
      } finally {
        api.C_FindObjectsFinal(this.session);
      }
    } catch (err) {
      throw toHsmError(err, 'searching for keys');
    }
  }

  findPrivateKey(label: string): Pkcs11Handle | undefined {
    const found = this.find([
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    if (found.length > 1) throw new HsmError('HSM_KEY_AMBIGUOUS', `Token ${this.label} holds ${found.length} private keys labelled "${label}".`);
    return found[0];
  }

  findPublicKey(label: string): Pkcs11Handle | undefined {
    return this.find([
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ])[0];
  }

  listPrivateKeys(): Pkcs11Handle[] {
    return this.find([{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }], 1024);
  }

  listObjects(label: string): Pkcs11Handle[] {
    return this.find([{ type: pkcs11js.CKA_LABEL, value: label }], 1024);
  }

  generateEcP256KeyPair(options: EcKeyPairOptions): EcKeyPairHandles {
    const api = this.library.api;
    const id = options.id ?? Buffer.from(options.label, 'utf8');
    const publicTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
      { type: pkcs11js.CKA_TOKEN, value: options.token },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_LABEL, value: options.label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_EC_PARAMS, value: P256_EC_PARAMS },
      { type: pkcs11js.CKA_VERIFY, value: options.usage.sign === true },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
    ];
    // Explicit template (pitfalls.md 7): every use not asked for is switched off.
    const privateTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
      { type: pkcs11js.CKA_TOKEN, value: options.token },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: options.extractable === true },
      { type: pkcs11js.CKA_LABEL, value: options.label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_SIGN, value: options.usage.sign === true },
      { type: pkcs11js.CKA_DERIVE, value: options.usage.derive === true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_SIGN_RECOVER, value: false },
    ];
    let pair: pkcs11js.KeyPair;
    try {
      pair = api.C_GenerateKeyPair(this.session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, publicTemplate, privateTemplate);
    } catch (err) {
      throw toHsmError(err, `generating key pair ${options.label}`);
    }
    return { privateKey: pair.privateKey, publicKey: pair.publicKey, spki: this.publicKeySpki(pair.publicKey) };
  }

  /** DER SPKI of a P-256 public key object. */
  publicKeySpki(publicKey: Pkcs11Handle): Buffer {
    return readP256PublicKeySpki(this.library.api, this.session, publicKey);
  }

  /** Raw CKM_ECDSA over a digest the caller computed (SoftHSM has no CKM_ECDSA_SHA256, pitfalls.md 4). */
  signDigestRaw(privateKey: Pkcs11Handle, digest: Buffer): Buffer {
    const api = this.library.api;
    try {
      api.C_SignInit(this.session, { mechanism: pkcs11js.CKM_ECDSA }, privateKey);
      return api.C_Sign(this.session, digest, Buffer.alloc(132));
    } catch (err) {
      throw toHsmError(err, 'signing');
    }
  }

  signSha256Raw(privateKey: Pkcs11Handle, data: Uint8Array): Buffer {
    return this.signDigestRaw(privateKey, createHash('sha256').update(data).digest());
  }

  auditPrivateKey(privateKey: Pkcs11Handle): PrivateKeyAudit {
    const types = [
      pkcs11js.CKA_TOKEN,
      pkcs11js.CKA_PRIVATE,
      pkcs11js.CKA_SENSITIVE,
      pkcs11js.CKA_EXTRACTABLE,
      pkcs11js.CKA_ALWAYS_SENSITIVE,
      pkcs11js.CKA_NEVER_EXTRACTABLE,
      pkcs11js.CKA_LOCAL,
      pkcs11js.CKA_SIGN,
      pkcs11js.CKA_DECRYPT,
      pkcs11js.CKA_UNWRAP,
      pkcs11js.CKA_DERIVE,
      pkcs11js.CKA_KEY_TYPE,
      pkcs11js.CKA_EC_PARAMS,
    ];
    let attrs: pkcs11js.TemplateResult;
    try {
      attrs = this.library.api.C_GetAttributeValue(this.session, privateKey, types.map((type) => ({ type })));
    } catch (err) {
      throw toHsmError(err, 'reading key attributes');
    }
    const bool = (i: number): boolean => {
      const v = attrs[i]!.value as Buffer;
      return v.length > 0 && v[0] !== 0;
    };
    return {
      token: bool(0),
      private: bool(1),
      sensitive: bool(2),
      extractable: bool(3),
      alwaysSensitive: bool(4),
      neverExtractable: bool(5),
      local: bool(6),
      sign: bool(7),
      decrypt: bool(8),
      unwrap: bool(9),
      derive: bool(10),
      keyType: (attrs[11]!.value as Buffer).readUInt32LE(0),
      ecParams: attrs[12]!.value as Buffer,
    };
  }

  destroy(handle: Pkcs11Handle): void {
    try {
      this.library.api.C_DestroyObject(this.session, handle);
    } catch (err) {
      throw toHsmError(err, 'destroying a key');
    }
  }

  mechanisms(): number[] {
    return this.library.mechanisms(this.slot);
  }
}
