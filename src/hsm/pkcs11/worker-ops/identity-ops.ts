/**
 * The station identity key (docs/records-and-sync.md): a P-256 key on the station's token that
 * signs device records. Sensitive, never extractable, SIGN only; made by `station pki init` or
 * `station ca station-cert` (src/hsm/identity/station-pki.ts), used at run time only here.
 *
 * - `identity.publicKey` { label } -> { spki }: finds the key pair, refuses a weak private key
 *   (the CA key audit: token, private, sensitive, never extractable, sign only) and returns the
 *   DER SPKI of its public half.
 * - `identity.sign` { label, digest } -> { raw }: CKM_ECDSA over the 32-byte SHA-256 digest the
 *   parent computed (pitfalls.md 4); raw r||s (the parent converts, pitfalls.md 5).
 *
 * Key handles are cached per session and label; any error drops the cache entry before it is
 * rethrown, so a recovery (which re-opens sessions and runs the op again) finds the key afresh.
 */
import { HsmError } from '../../../core/errors';
import { assertStrongCaKey } from '../../ca/ca-key-audit';
import { toHsmError } from '../ckr-names';
import { pkcs11js, type Pkcs11Handle } from '../pkcs11-library';
import type { PrivateKeyAudit } from '../pkcs11-token';
import { registerWorkerOps, type WorkerOpContext } from '../pkcs11-worker-ops';
import { findObjects, readP256PublicKeySpki, readPrivateKeyAudit } from '../pkcs11-objects';

const LABEL = /^[\x20-\x7e]{1,64}$/;
const handles = new Map<string, Pkcs11Handle>();

function labelArg(args: unknown): string {
  const label = (args as { label?: unknown } | null)?.label;
  if (typeof label !== 'string' || !LABEL.test(label)) throw new HsmError('HSM_OP_BAD_ARGS', 'identity op: label must be 1..64 printable ASCII characters.');
  return label;
}

function findOne(ctx: WorkerOpContext, cls: number, label: string): Pkcs11Handle | undefined {
  let found: Pkcs11Handle[];
  try {
    found = findObjects(ctx.api, ctx.session, [{ type: pkcs11js.CKA_CLASS, value: cls }, { type: pkcs11js.CKA_LABEL, value: label }], 2);
  } catch (err) {
    throw toHsmError(err, 'searching for the station identity key');
  }
  if (found.length > 1) throw new HsmError('HSM_KEY_AMBIGUOUS', `Token ${ctx.tokenLabel} holds more than one key labelled "${label}".`);
  return found[0];
}

function readAudit(ctx: WorkerOpContext, key: Pkcs11Handle): PrivateKeyAudit {
  try {
    return readPrivateKeyAudit(ctx.api, ctx.session, key);
  } catch (err) {
    throw toHsmError(err, 'reading the station identity key attributes');
  }
}

function privateKey(ctx: WorkerOpContext, label: string): Pkcs11Handle {
  const cacheKey = `${ctx.session.toString('hex')}:${label}`;
  const cached = handles.get(cacheKey);
  if (cached) return cached;
  const priv = findOne(ctx, pkcs11js.CKO_PRIVATE_KEY, label);
  if (!priv) {
    throw new HsmError('STATION_IDENTITY_MISSING', `The station identity key "${label}" is not on token ${ctx.tokenLabel}. Run "station ca station-cert".`, {
      details: { token: ctx.tokenLabel, key: label },
    });
  }
  handles.set(cacheKey, priv);
  return priv;
}

registerWorkerOps({
  'identity.publicKey': (ctx, args) => {
    const label = labelArg(args);
    const priv = findOne(ctx, pkcs11js.CKO_PRIVATE_KEY, label);
    const pub = findOne(ctx, pkcs11js.CKO_PUBLIC_KEY, label);
    if (!priv || !pub) {
      throw new HsmError('STATION_IDENTITY_MISSING', `The station identity key "${label}" is not on token ${ctx.tokenLabel}. Run "station ca station-cert".`, {
        details: { token: ctx.tokenLabel, key: label },
      });
    }
    assertStrongCaKey(label, readAudit(ctx, priv));
    return { spki: readP256PublicKeySpki(ctx.api, ctx.session, pub, `The station identity key "${label}"`) };
  },

  'identity.sign': (ctx, args) => {
    const label = labelArg(args);
    const digest = (args as { digest?: unknown }).digest;
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new HsmError('HSM_OP_BAD_ARGS', 'identity.sign: digest must be 32 bytes (SHA-256).');
    const key = privateKey(ctx, label);
    try {
      ctx.api.C_SignInit(ctx.session, { mechanism: pkcs11js.CKM_ECDSA }, key);
      const raw = ctx.api.C_Sign(ctx.session, Buffer.from(digest), Buffer.alloc(132));
      return { raw: new Uint8Array(raw) };
    } catch (err) {
      handles.delete(`${ctx.session.toString('hex')}:${label}`);
      throw toHsmError(err, 'signing a device record');
    }
  },
});
