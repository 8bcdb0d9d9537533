/** Software keys and certificates of the services on disk: PEM, private keys 0600 in 0700 folders. */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pemCertificates, toPem } from './software-certificates';

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Writes through a temporary file and a rename, so that a reader never sees half a key. */
function writeAtomically(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export function writePrivateKey(path: string, key: KeyObject): void {
  ensurePrivateDir(dirname(path));
  writeAtomically(path, key.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
}

export function writeCertificates(path: string, ders: Buffer[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeAtomically(path, ders.map((d) => toPem(d)).join(''), 0o644);
}

export function readPrivateKey(path: string): KeyObject {
  return createPrivateKey(readFileSync(path));
}

/** Every certificate of a PEM (or one DER) file. */
export function readCertificates(path: string): X509Certificate[] {
  const data = readFileSync(path);
  const ders = data.includes('-----BEGIN CERTIFICATE-----') ? pemCertificates(data.toString('utf8')) : [data];
  if (ders.length === 0) throw new Error(`${path} holds no certificate`);
  return ders.map((d) => new X509Certificate(d));
}

export function filesExist(...paths: string[]): boolean {
  return paths.every((p) => existsSync(p));
}
