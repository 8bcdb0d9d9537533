import { HsmError } from '../../core/errors';
import { P256_EC_PARAMS, type Pkcs11Token, type PrivateKeyAudit } from '../pkcs11/pkcs11-token';
import { Pkcs11Signer } from '../pkcs11/pkcs11-signer';
import { pkcs11js } from '../pkcs11/pkcs11-library';

/**
 * The CA key must have been generated on the token, be sensitive, never extractable and
 * usable for signing only (pitfalls.md 7). Returns the list of failures (empty = good).
 */
export function caKeyWeaknesses(a: PrivateKeyAudit): string[] {
  const out: string[] = [];
  const need = (ok: boolean, what: string) => {
    if (!ok) out.push(what);
  };
  need(a.keyType === pkcs11js.CKK_EC, 'CKK_EC key type');
  need(a.ecParams.equals(P256_EC_PARAMS), 'curve P-256');
  need(a.token, 'CKA_TOKEN=true');
  need(a.private, 'CKA_PRIVATE=true');
  need(a.sensitive, 'CKA_SENSITIVE=true');
  need(!a.extractable, 'CKA_EXTRACTABLE=false');
  need(a.alwaysSensitive, 'CKA_ALWAYS_SENSITIVE=true');
  need(a.neverExtractable, 'CKA_NEVER_EXTRACTABLE=true');
  need(a.local, 'CKA_LOCAL=true (generated on the token)');
  need(a.sign, 'CKA_SIGN=true');
  need(!a.decrypt, 'CKA_DECRYPT=false');
  need(!a.unwrap, 'CKA_UNWRAP=false');
  need(!a.derive, 'CKA_DERIVE=false');
  return out;
}

export function assertStrongCaKey(label: string, audit: PrivateKeyAudit): void {
  const weak = caKeyWeaknesses(audit);
  if (weak.length > 0) {
    throw new HsmError('HSM_CA_KEY_WEAK', `The CA key "${label}" is weaker than the station requires and will not be used. It lacks: ${weak.join(', ')}.`, {
      details: { key: label },
    });
  }
}

/** The mechanisms the station needs of a CA token (SoftHSM has no CKM_ECDSA_SHA256: pitfall 4). */
export const REQUIRED_CA_MECHANISMS: Readonly<Record<string, number>> = {
  CKM_ECDSA: pkcs11js.CKM_ECDSA,
  CKM_EC_KEY_PAIR_GEN: pkcs11js.CKM_EC_KEY_PAIR_GEN,
};

/**
 * The signing key pair `label` on `token` (a CA key, the station identity key): generated on the
 * token with the CA template when absent, never overwritten, audited (assertStrongCaKey) either
 * way. `created` says whether this call made it.
 */
export function ensureSigningKeyPair(token: Pkcs11Token, tokenLabel: string, label: string): { signer: Pkcs11Signer; created: boolean } {
  let priv = token.findPrivateKey(label);
  let created = false;
  if (!priv) {
    token.generateEcP256KeyPair({ label, token: true, usage: { sign: true } });
    priv = token.findPrivateKey(label)!;
    created = true;
  }
  assertStrongCaKey(label, token.auditPrivateKey(priv));
  const pub = token.findPublicKey(label);
  if (!pub) throw new HsmError('HSM_KEY_NOT_FOUND', `The public key "${label}" is missing from token ${tokenLabel}.`);
  return { signer: new Pkcs11Signer(token, priv, token.publicKeySpki(pub)), created };
}
