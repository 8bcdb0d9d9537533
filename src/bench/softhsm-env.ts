/**
 * Points this process's SoftHSM at a group's own token directory. SoftHSM reads SOFTHSM2_CONF
 * only in C_Initialize, and the PKCS#11 library object is shared by the whole process
 * (Pkcs11Library.open caches it), so a group that wants a fresh token must re-initialise the
 * module after changing the variable. Every session a previous group opened must be closed
 * by then (groups run one after another and close what they open).
 */
import { Pkcs11Library, pkcs11js } from '../hsm/pkcs11/pkcs11-library';
import { ensureSoftHsmConfig } from '../hsm/pkcs11/softhsm-config';

export interface SoftHsmScope {
  conf: string;
  library: Pkcs11Library;
  /** Put SOFTHSM2_CONF back as it was (the module stays initialised on this group's dir). */
  restore(): void;
}

export function useFreshSoftHsm(modulePath: string, dataDir: string): SoftHsmScope {
  const conf = ensureSoftHsmConfig(dataDir);
  const had = Object.prototype.hasOwnProperty.call(process.env, 'SOFTHSM2_CONF');
  const previous = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  const library = Pkcs11Library.open(modulePath);
  // Re-initialise so that SoftHSM reads the new configuration even if an earlier group (or the
  // first open just now, harmlessly) initialised it; flags as in Pkcs11Library (pitfalls.md 1).
  try {
    library.api.C_Finalize();
  } catch {
    // not initialised: nothing to finalise
  }
  library.api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  return {
    conf,
    library,
    restore: () => {
      if (had) process.env.SOFTHSM2_CONF = previous;
      else delete process.env.SOFTHSM2_CONF;
    },
  };
}
