/** The device's birth key, wherever it lives: in the SE token, or in device memory (software). */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { appendFileSync } from 'node:fs';
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

/**
 * Security tests only: when STATION_SIM_SECRETS_LOG names a file, the simulator appends each
 * software birth key's private scalar (hex) to it, so that a test can search everything the
 * station wrote (logs, database, reports, temp files, its heap) for the devices' secrets.
 * The simulated device is the only place these scalars exist; the station never learns them.
 */
function exposeScalarForSecurityTests(privateKey: KeyObject, origin: string): void {
  const path = process.env.STATION_SIM_SECRETS_LOG;
  if (!path) return;
  const d = privateKey.export({ format: 'jwk' }).d;
  if (d) appendFileSync(path, JSON.stringify({ kind: 'private-scalar', origin, hex: Buffer.from(d, 'base64url').toString('hex') }) + '\n');
}

export function softwareBirthKey(privateKey: KeyObject, origin: 'device-rng' | 'injected' | 'seed-derived'): BirthKey {
  exposeScalarForSecurityTests(privateKey, origin);
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { origin, spki, sign: (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'der' }) };
}

export function generateSoftwareBirthKey(): BirthKey {
  return softwareBirthKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, 'device-rng');
}

export function softwareBirthKeyFromPkcs8(pkcs8Der: Buffer, origin: 'injected' | 'seed-derived'): BirthKey {
  return softwareBirthKey(createPrivateKey({ key: pkcs8Der, format: 'der', type: 'pkcs8' }), origin);
}
