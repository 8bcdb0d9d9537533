/**
 * The only file that loads a PKCS#11 module (pkcs11js). One library object per module path
 * per process, initialised once with CKF_OS_LOCKING_OK (pitfalls.md 1): calling C_Initialize
 * without it makes SoftHSM turn its locking off. Calls are synchronous (pitfalls.md 8).
 */
import { existsSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { HsmError } from '../../core/errors';
import { ckrName, isPkcs11Error, toHsmError } from './ckr-names';

export type Pkcs11Handle = Buffer;

export { pkcs11js };

const libraries = new Map<string, Pkcs11Library>();

export interface TokenSummary {
  slot: Pkcs11Handle;
  label: string;
  serial: string;
  initialized: boolean;
}

export class Pkcs11Library {
  private constructor(
    readonly modulePath: string,
    readonly api: pkcs11js.PKCS11,
  ) {}

  static open(modulePath: string): Pkcs11Library {
    const existing = libraries.get(modulePath);
    if (existing) return existing;
    if (!existsSync(modulePath)) {
      throw new HsmError(
        'HSM_MODULE_MISSING',
        `The PKCS#11 module ${modulePath} does not exist. Install SoftHSM2 (apt-get install softhsm2) ` +
          'or set hsm.module in the configuration to your HSM vendor\'s PKCS#11 library.',
        { details: { module: modulePath } },
      );
    }
    const api = new pkcs11js.PKCS11();
    try {
      api.load(modulePath);
    } catch (err) {
      throw new HsmError('HSM_MODULE_LOAD_FAILED', `The PKCS#11 module ${modulePath} could not be loaded: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (!(isPkcs11Error(err) && ckrName(err.code) === 'CKR_CRYPTOKI_ALREADY_INITIALIZED')) {
        throw toHsmError(err, `initialising ${modulePath}`);
      }
    }
    const lib = new Pkcs11Library(modulePath, api);
    libraries.set(modulePath, lib);
    return lib;
  }

  listTokens(): TokenSummary[] {
    try {
      return this.api.C_GetSlotList(true).map((slot) => {
        const info = this.api.C_GetTokenInfo(slot);
        return {
          slot,
          label: info.label.trim(),
          serial: info.serialNumber.trim(),
          initialized: (info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0,
        };
      });
    } catch (err) {
      throw toHsmError(err, 'listing tokens');
    }
  }

  findToken(label: string): TokenSummary | undefined {
    return this.listTokens().find((t) => t.initialized && t.label === label);
  }

  /**
   * Initialise a fresh token on the first free slot and set its user PIN, through PKCS#11
   * itself (C_InitToken / C_InitPIN) so that no PIN ever appears on a command line.
   */
  initToken(label: string, soPin: string, userPin: string): TokenSummary {
    const free = this.listTokens().find((t) => !t.initialized);
    if (!free) throw new HsmError('HSM_NO_FREE_SLOT', `The PKCS#11 module ${this.modulePath} has no free slot for token ${label}.`);
    try {
      this.api.C_InitToken(free.slot, soPin, label.padEnd(32, ' '));
    } catch (err) {
      throw toHsmError(err, `initialising token ${label}`);
    }
    const token = this.findToken(label);
    if (!token) throw new HsmError('HSM_TOKEN_ABSENT', `Token ${label} was initialised but cannot be found again.`);
    const session = this.api.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      this.api.C_Login(session, pkcs11js.CKU_SO, soPin);
      this.api.C_InitPIN(session, userPin);
      this.api.C_Logout(session);
    } catch (err) {
      throw toHsmError(err, `setting the user PIN of token ${label}`);
    } finally {
      this.api.C_CloseSession(session);
    }
    return token;
  }

  mechanisms(slot: Pkcs11Handle): number[] {
    try {
      return this.api.C_GetMechanismList(slot);
    } catch (err) {
      throw toHsmError(err, 'reading the mechanism list');
    }
  }
}
