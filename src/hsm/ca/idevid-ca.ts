/**
 * Opens the IDevID issuing CA for a run: the token, a login with the configured PIN, the CA key
 * (audited: a weaker key is refused), its certificate chain, and the mechanisms the station needs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { HsmConfig } from '../../core/config';
import { HsmError } from '../../core/errors';
import { readPin } from '../pkcs11/pin-source';
import { Pkcs11Library, pkcs11js } from '../pkcs11/pkcs11-library';
import { Pkcs11Signer } from '../pkcs11/pkcs11-signer';
import { Pkcs11Token } from '../pkcs11/pkcs11-token';
import { ensureSoftHsmConfig, useSoftHsmConfig } from '../pkcs11/softhsm-config';
import { assertStrongCaKey } from './ca-key-audit';
import { pkiPaths } from './test-pki';
import { fromPem } from './x509-builder';

export interface IdevidCa {
  token: Pkcs11Token;
  signer: Pkcs11Signer;
  /** Issuing CA then root, DER. */
  chain: Buffer[];
  chainPath: string;
  close(): void;
}

const REQUIRED_MECHANISMS: Record<string, number> = {
  CKM_ECDSA: pkcs11js.CKM_ECDSA,
  CKM_EC_KEY_PAIR_GEN: pkcs11js.CKM_EC_KEY_PAIR_GEN,
};

export function openIdevidCa(hsm: HsmConfig, dataDir: string, env: NodeJS.ProcessEnv = process.env): IdevidCa {
  if (hsm.module.includes('softhsm')) useSoftHsmConfig(ensureSoftHsmConfig(dataDir), env);
  const library = Pkcs11Library.open(hsm.module);
  const { pin } = readPin(hsm.pin, dataDir, env);
  const token = Pkcs11Token.login(library, hsm.tokenLabel, pin);
  try {
    const have = new Set(token.mechanisms());
    const missing = Object.entries(REQUIRED_MECHANISMS).filter(([, m]) => !have.has(m)).map(([n]) => n);
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
    const signer = new Pkcs11Signer(token, priv, token.publicKeySpki(pub));
    return { token, signer, chain, chainPath, close: () => token.close() };
  } catch (err) {
    token.close();
    throw err;
  }
}
