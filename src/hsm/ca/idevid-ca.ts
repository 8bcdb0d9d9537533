/**
 * Opens the IDevID issuing CA for a run. The start-up checks run here, in-process, before any
 * worker exists (so that the module is initialised once, first: pitfalls.md 1): the PIN source,
 * the login, the mechanisms the station needs, the CA key (audited: a weaker key is refused) and
 * its certificate chain. The run then signs through a Pkcs11WorkerSigner: a worker thread that
 * owns the run-time PKCS#11 work, recovers from dead sessions and is restarted if it dies
 * (docs/hsm-worker.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { HsmConfig } from '../../core/config';
import { HsmError } from '../../core/errors';
import { readPin } from '../pkcs11/pin-source';
import { Pkcs11Library } from '../pkcs11/pkcs11-library';
import { Pkcs11Token } from '../pkcs11/pkcs11-token';
import { Pkcs11WorkerSigner, type Pkcs11WorkerSignerOptions } from '../pkcs11/pkcs11-worker-client';
import { ensureSoftHsmConfig, useSoftHsmConfig } from '../pkcs11/softhsm-config';
import { REQUIRED_CA_MECHANISMS, assertStrongCaKey } from './ca-key-audit';
import { resolveHsmKey } from './resolve-hsm-key';
import { WorkerSignatureChecker } from './signature-checker';
import { pkiPaths } from './test-pki';
import { fromPem } from './x509-builder';

export interface IdevidCa {
  /**
   * The in-process session the start-up checks used, logged in. Kept for admin tools and the
   * bench's raw C_Sign baseline; the run never signs through it. A worker restart that
   * re-initialises the module kills this session, and its handle number may then name one of
   * the worker's new sessions: do not use it after such a restart (docs/hsm-worker.md).
   */
  token: Pkcs11Token;
  /** The run's signer: the PKCS#11 worker. Its publicKeySpki is the checked CA key's. */
  signer: Pkcs11WorkerSigner;
  /** Issuing CA then root, DER. */
  chain: Buffer[];
  chainPath: string;
  /**
   * Checks the HSM's signatures (and CSRs, where many are in flight) off the event loop, in
   * batches (signature-checker.ts); give it to every IdevidIssuer of the run. Closed with the CA.
   */
  signatureChecker: WorkerSignatureChecker;
  /**
   * Resolves when the worker has started and found the same key (a failure rejects). sign()
   * waits for it anyway; the station awaits it so that a worker that cannot start stops the
   * run before any device is touched.
   */
  ready(): Promise<void>;
  /** Closes the in-process session, then stops the worker (which closes its sessions). */
  close(): Promise<void>;
}

/** Tuning of the run's PKCS#11 worker (defaults in Pkcs11WorkerSignerOptions). */
export type IdevidCaOptions = Pick<
  Pkcs11WorkerSignerOptions,
  'sessions' | 'retries' | 'retryBackoffMs' | 'maxRestarts' | 'restartWindowMs' | 'restartBackoffMs' | 'requestTimeoutMs' | 'onEvent'
> & {
  /** A PIN provider that replaces the configured source (the operator typed it at the GUI); called for the start-up login and each worker (re)start. */
  pin?: () => string;
  /** The signature-check worker failed; checks go on in process (slower, never skipped). */
  onSignatureCheckFallback?: (reason: string) => void;
};


/**
 * Synchronous so that callers written before the worker (the bench) keep working; the worker
 * starts in the background and `ready()` says when it has. Callers that can should write
 * `const ca = openIdevidCa(...); await ca.ready();` (the station does).
 */
export function openIdevidCa(configured: HsmConfig, dataDir: string, env: NodeJS.ProcessEnv = process.env, options: IdevidCaOptions = {}): IdevidCa {
  // An RFC 7512 URI (hsm.caKeyUri), when configured, names the module, token and key.
  const key = resolveHsmKey(configured, 'ca');
  const hsm: HsmConfig = { ...configured, module: key.module, tokenLabel: key.tokenLabel, caKeyLabel: key.keyLabel, pin: key.pin };
  if (hsm.module.includes('softhsm')) useSoftHsmConfig(ensureSoftHsmConfig(dataDir), env);
  const library = Pkcs11Library.open(hsm.module);
  const pinOf = options.pin ?? (() => readPin(hsm.pin, dataDir, env).pin);
  const token = Pkcs11Token.login(library, hsm.tokenLabel, pinOf());
  try {
    const have = new Set(token.mechanisms());
    const missing = Object.entries(REQUIRED_CA_MECHANISMS).filter(([, m]) => !have.has(m)).map(([n]) => n);
    if (missing.length > 0) {
      throw new HsmError('HSM_MECHANISM_MISSING', `The HSM token ${hsm.tokenLabel} lacks mechanisms the station needs: ${missing.join(', ')}.`);
    }
    const priv = token.findPrivateKey(hsm.caKeyLabel);
    const pub = token.findPublicKey(hsm.caKeyLabel);
    if (!priv || !pub) {
      throw new HsmError('HSM_KEY_NOT_FOUND', `The IDevID CA key "${hsm.caKeyLabel}" is not on token ${hsm.tokenLabel}. Run "station pki init" or check hsm.caKeyLabel.`);
    }
    assertStrongCaKey(hsm.caKeyLabel, token.auditPrivateKey(priv));
    const chainPath = pkiPaths(dataDir).chain;
    if (!existsSync(chainPath)) {
      throw new HsmError('CA_CHAIN_MISSING', `The IDevID CA chain ${resolve(chainPath)} is missing. Run "station pki init".`);
    }
    const chain = fromPem(readFileSync(chainPath, 'utf8'));
    if (chain.length < 2) throw new HsmError('CA_CHAIN_MISSING', `The CA chain ${chainPath} must hold the issuing CA and the root.`);
    // A restarted worker re-initialises the module (it has the PIN source): the in-process
    // session dies and its handle number may come to name one of the worker's new sessions, so
    // it is never closed after a restart.
    let tokenSessionDead = false;
    const signer = Pkcs11WorkerSigner.launch({
      ...options,
      onEvent: (e) => {
        if (e.type === 'restarting') tokenSessionDead = true;
        options.onEvent?.(e);
      },
      module: hsm.module,
      tokenLabel: hsm.tokenLabel,
      keyLabel: hsm.caKeyLabel,
      ...(key.keyId ? { keyId: key.keyId } : {}),
      // Read from its source at each worker (re)start; this process keeps no copy in between.
      pin: pinOf,
      expectedSpki: token.publicKeySpki(pub),
      requiredMechanisms: Object.keys(REQUIRED_CA_MECHANISMS),
      auditCaKey: true,
    });
    const signatureChecker = new WorkerSignatureChecker({
      onFallback: (reason) => options.onSignatureCheckFallback?.(reason),
    });
    return {
      token,
      signer,
      chain,
      chainPath,
      signatureChecker,
      ready: () => signer.ready(),
      // The in-process session first and synchronously (callers that do not await still get it
      // closed at once), then the worker, which closes its own sessions and exits.
      close: async () => {
        if (!tokenSessionDead) token.close();
        await signatureChecker.close();
        await signer.close();
      },
    };
  } catch (err) {
    token.close();
    throw err;
  }
}
