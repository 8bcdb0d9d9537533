/** The device's birth key, wherever it lives: in the SE token, or in device memory (software). */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { SimulatedSecureElement } from './simulated-secure-element';

export interface BirthKey {
  readonly origin: 'secure-element' | 'device-rng' | 'injected' | 'seed-derived' | 'se-vendor';
  /** DER SPKI, uncompressed point. */
  readonly spki: Buffer;
  /** ECDSA P-256 / SHA-256, DER signature. */
  sign(data: Uint8Array): Buffer;
}

export function seBirthKey(se: SimulatedSecureElement, origin: 'secure-element' | 'se-vendor' = 'secure-element'): BirthKey {
  const spki = se.publicKeySpki;
  if (!spki) throw new Error('the secure element holds no birth key');
  return { origin, spki, sign: (data) => se.sign(data) };
}

export function softwareBirthKey(privateKey: KeyObject, origin: 'device-rng' | 'injected' | 'seed-derived'): BirthKey {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { origin, spki, sign: (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'der' }) };
}

export function generateSoftwareBirthKey(): BirthKey {
  return softwareBirthKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, 'device-rng');
}

export function softwareBirthKeyFromPkcs8(pkcs8Der: Buffer, origin: 'injected' | 'seed-derived'): BirthKey {
  return softwareBirthKey(createPrivateKey({ key: pkcs8Der, format: 'der', type: 'pkcs8' }), origin);
}
