/**
 * CA key administration behind `station ca create | install-chain | show | export`
 * (contracts.md §2, docs/hsm.md). Keys are generated on the token with the explicit CA template
 * (token, private, sensitive, never extractable, SIGN only) and audited; an existing key is never
 * replaced. Certificates follow contracts.md §7. Chains are checked the way `openssl verify
 * -x509_strict` would (issuer names and key identifiers, signatures, CA:TRUE critical,
 * keyCertSign, path length, validity, a self-signed root) before they are written.
 *
 * These commands run in the CLI process, one synchronous PKCS#11 call at a time; they are
 * operator tools, not the station's run-time signing path.
 */
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync, unlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  KeyUsage,
  KeyUsageFlags,
  SubjectKeyIdentifier,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
  type Name,
} from '@peculiar/asn1-x509';
import type { HsmConfig } from '../../core/config';
import { CaError, ConfigError, HsmError } from '../../core/errors';
import { formatPkcs11Uri } from '../../core/pkcs11-uri';
import { toHsmError } from '../pkcs11/ckr-names';
import { readPin } from '../pkcs11/pin-source';
import { Pkcs11Library, pkcs11js, type Pkcs11Handle } from '../pkcs11/pkcs11-library';
import { Pkcs11Signer } from '../pkcs11/pkcs11-signer';
import { Pkcs11Token, P256_EC_PARAMS, type PrivateKeyAudit } from '../pkcs11/pkcs11-token';
import { useSoftHsmConfig } from '../pkcs11/softhsm-config';
import { caKeyWeaknesses, assertStrongCaKey, REQUIRED_CA_MECHANISMS } from './ca-key-audit';
import { buildIssuingCaCertificate, buildRootCaCertificate } from './ca-certificates';
import { resolveHsmKey, type ResolvedHsmKey } from './resolve-hsm-key';
import { pkiPaths } from './test-pki';
import {
  OID_COMMON_NAME,
  OID_ORGANIZATION,
  OID_ORGANIZATIONAL_UNIT,
  buildName,
  fromPem,
  keyIdentifierOf,
  toPem,
  type NameEntry,
} from './x509-builder';

// ---------------------------------------------------------------------------------------------
// Subject names

const OID_COUNTRY = '2.5.4.6';
const PRINTABLE_STRING = /^[A-Za-z0-9 '()+,\-./:=?]+$/;

const SUBJECT_ATTRIBUTES: Record<string, { oid: string; max: number }> = {
  C: { oid: OID_COUNTRY, max: 2 },
  O: { oid: OID_ORGANIZATION, max: 64 },
  OU: { oid: OID_ORGANIZATIONAL_UNIT, max: 64 },
  CN: { oid: OID_COMMON_NAME, max: 64 },
};

const SHORT_NAMES: Record<string, string> = {
  [OID_COUNTRY]: 'C',
  [OID_ORGANIZATION]: 'O',
  [OID_ORGANIZATIONAL_UNIT]: 'OU',
  [OID_COMMON_NAME]: 'CN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

/**
 * `"C=DE,O=Example Devices Inc,CN=Example IDevID CA 2"`: O, OU, CN and C only, written in the
 * order they are encoded (most significant first, as `openssl -subj` does); a comma inside a
 * value is written `\,`. Values are PrintableString (the subject is encoded as such); CN is required.
 */
export function parseSubject(text: string): NameEntry[] {
  const bad = (why: string) => new ConfigError('CA_SUBJECT_INVALID', `The subject "${text}" is not valid: ${why}.`);
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && (text[i + 1] === ',' || text[i + 1] === '\\')) {
      current += text[++i];
    } else if (ch === ',') {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  const entries: NameEntry[] = [];
  const seen = new Set<string>();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) throw bad(`"${part.trim()}" is not KEY=VALUE`);
    const key = part.slice(0, eq).trim().toUpperCase();
    const value = part.slice(eq + 1).trim();
    const spec = SUBJECT_ATTRIBUTES[key];
    if (!spec) throw bad(`${part.slice(0, eq).trim()} is not one of C, O, OU, CN`);
    if (value === '') throw bad(`${key} is empty`);
    if (!PRINTABLE_STRING.test(value)) throw bad(`${key} has characters outside PrintableString (letters, digits, space and '()+,-./:=?)`);
    if (value.length > spec.max) throw bad(`${key} is longer than ${spec.max} characters`);
    if (key === 'C' && !/^[A-Z]{2}$/.test(value)) throw bad('C is a two-letter ISO 3166 country code in capitals');
    if (key !== 'OU' && seen.has(key)) throw bad(`${key} is given twice`);
    seen.add(key);
    entries.push({ oid: spec.oid, value });
  }
  if (!seen.has('CN')) throw bad('it needs a CN');
  return entries;
}

/** A Name in the same one-line form parseSubject reads: "O=...,CN=...". */
export function formatName(name: Name): string {
  const out: string[] = [];
  for (const rdn of name) {
    for (const atv of rdn) {
      const key = SHORT_NAMES[atv.type] ?? atv.type;
      out.push(`${key}=${atv.value.toString().replace(/\\/g, '\\\\').replace(/,/g, '\\,')}`);
    }
  }
  return out.join(',');
}

// ---------------------------------------------------------------------------------------------
// Certificates and chains

export interface CertificateInfo {
  der: Buffer;
  subject: string;
  issuer: string;
  /** Hex, as the DER INTEGER's value without a sign byte. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo, normalised (see normalizeSpki). */
  spki: Buffer;
  subjectKeyIdentifier?: string;
  authorityKeyIdentifier?: string;
  basicConstraints?: { ca: boolean; pathLen?: number; critical: boolean };
  keyUsage?: { names: string[]; keyCertSign: boolean; critical: boolean };
  selfIssued: boolean;
  /** Critical extensions this checker does not understand (openssl refuses those). */
  unknownCritical: string[];
}

const UNDERSTOOD_EXTENSIONS = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.30', // nameConstraints
  '2.5.29.32', // certificatePolicies
  '2.5.29.33', // policyMappings
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.36', // policyConstraints
  '2.5.29.37', // extKeyUsage
  '2.5.29.54', // inhibitAnyPolicy
]);

/** The SPKI re-encoded by OpenSSL, so that two encodings of one key compare equal. */
export function normalizeSpki(spki: Buffer): Buffer {
  return createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' });
}

export function spkiFingerprint(spki: Buffer): string {
  return createHash('sha256').update(normalizeSpki(spki)).digest('hex');
}

function serialHex(serial: ArrayBuffer): string {
  let b = Buffer.from(serial);
  if (b.length > 1 && b[0] === 0 && b[1]! >= 0x80) b = b.subarray(1);
  return b.toString('hex');
}

export function inspectCertificate(der: Buffer, position = 0): CertificateInfo {
  let cert: Certificate;
  let spki: Buffer;
  try {
    cert = AsnConvert.parse(der, Certificate);
    spki = normalizeSpki(Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subjectPublicKeyInfo)));
  } catch (err) {
    throw new CaError('CA_CHAIN_INVALID', `Certificate ${position + 1} of the chain is not a valid DER X.509 certificate: ${(err as Error).message}`);
  }
  const tbs = cert.tbsCertificate;
  const info: CertificateInfo = {
    der,
    subject: formatName(tbs.subject),
    issuer: formatName(tbs.issuer),
    serialNumber: serialHex(tbs.serialNumber),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    spki,
    selfIssued: Buffer.from(AsnConvert.serialize(tbs.subject)).equals(Buffer.from(AsnConvert.serialize(tbs.issuer))),
    unknownCritical: [],
  };
  for (const ext of tbs.extensions ?? []) {
    const value = ext.extnValue.buffer;
    switch (ext.extnID) {
      case id_ce_basicConstraints: {
        const bc = AsnConvert.parse(value, BasicConstraints);
        info.basicConstraints = { ca: bc.cA, critical: ext.critical, ...(bc.pathLenConstraint !== undefined ? { pathLen: bc.pathLenConstraint } : {}) };
        break;
      }
      case id_ce_keyUsage: {
        const ku = AsnConvert.parse(value, KeyUsage);
        info.keyUsage = { names: ku.toJSON(), keyCertSign: (ku.toNumber() & KeyUsageFlags.keyCertSign) !== 0, critical: ext.critical };
        break;
      }
      case id_ce_subjectKeyIdentifier:
        info.subjectKeyIdentifier = Buffer.from(AsnConvert.parse(value, SubjectKeyIdentifier).buffer).toString('hex');
        break;
      case id_ce_authorityKeyIdentifier: {
        const aki = AsnConvert.parse(value, AuthorityKeyIdentifier);
        if (aki.keyIdentifier) info.authorityKeyIdentifier = Buffer.from(aki.keyIdentifier.buffer).toString('hex');
        break;
      }
      default:
        if (ext.critical && !UNDERSTOOD_EXTENSIONS.has(ext.extnID)) info.unknownCritical.push(ext.extnID);
    }
  }
  return info;
}

/**
 * Check a CA chain, first certificate (the CA whose key is on the token) to last (the root):
 * each certificate is issued and signed by the next (issuer name, authority key identifier and
 * the issuer's keyUsage, as OpenSSL's X509_check_issued; then the signature), every one is a CA
 * (basicConstraints CA:TRUE, critical; keyUsage keyCertSign; a subject key identifier), path
 * lengths hold, each is valid now, and the last is a self-signed root. Throws CA_CHAIN_INVALID
 * listing every problem found.
 */
export function verifyCaChain(ders: readonly Buffer[], now = new Date()): CertificateInfo[] {
  if (ders.length === 0) throw new CaError('CA_CHAIN_INVALID', 'The chain holds no certificate.');
  const infos = ders.map((d, i) => inspectCertificate(d, i));
  const x509 = ders.map((d) => new X509Certificate(d));
  const problems: string[] = [];
  const name = (i: number) => `certificate ${i + 1} (${infos[i]!.subject})`;
  for (const [i, c] of infos.entries()) {
    const bc = c.basicConstraints;
    if (!bc?.ca) problems.push(`${name(i)} is not a CA certificate (basicConstraints CA:TRUE)`);
    else if (!bc.critical) problems.push(`${name(i)} has basicConstraints not marked critical`);
    if (!c.keyUsage) problems.push(`${name(i)} has no keyUsage extension`);
    else if (!c.keyUsage.keyCertSign) problems.push(`${name(i)} lacks keyUsage keyCertSign`);
    if (!c.subjectKeyIdentifier) problems.push(`${name(i)} has no subjectKeyIdentifier`);
    if (c.unknownCritical.length) problems.push(`${name(i)} has unsupported critical extensions ${c.unknownCritical.join(', ')}`);
    // Certificates 0..i-1 follow certificate i on the way to a leaf: i intermediate CAs.
    if (bc?.pathLen !== undefined && i > bc.pathLen) problems.push(`${name(i)} allows ${bc.pathLen} CA certificate(s) below it, the chain has ${i}`);
    if (now < c.notBefore) problems.push(`${name(i)} is not valid before ${c.notBefore.toISOString()}`);
    if (now > c.notAfter) problems.push(`${name(i)} expired at ${c.notAfter.toISOString()}`);
    if (i < infos.length - 1) {
      if (!c.authorityKeyIdentifier) problems.push(`${name(i)} has no authorityKeyIdentifier`);
      if (!x509[i]!.checkIssued(x509[i + 1]!)) {
        problems.push(`${name(i + 1)} is not the issuer of ${name(i)} (issuer name, key identifier or the issuer's keyUsage do not match)`);
      } else if (!x509[i]!.verify(x509[i + 1]!.publicKey)) {
        problems.push(`the signature of ${name(i)} does not verify with the key of ${name(i + 1)}`);
      }
    } else if (!x509[i]!.checkIssued(x509[i]!) || !x509[i]!.verify(x509[i]!.publicKey)) {
      problems.push(`the last certificate, ${name(i)}, is not a self-signed root; the chain must end with its root`);
    }
  }
  if (problems.length) throw new CaError('CA_CHAIN_INVALID', `The CA chain is not valid: ${problems.join('; ')}.`);
  return infos;
}

// ---------------------------------------------------------------------------------------------
// Opening the token

export interface CaAdminOptions {
  hsm: HsmConfig;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  /** Key label; default: the configured IDevID CA key. */
  label?: string;
  /** Token label; default: the configured token (or the URI's). */
  token?: string;
}

interface CaSession {
  library: Pkcs11Library;
  token: Pkcs11Token;
  key: ResolvedHsmKey;
  pinSource: string;
  dataDir: string;
  hsm: HsmConfig;
  close(): void;
}

export interface TokenKey {
  label: string;
  id: Buffer;
  privateKey: Pkcs11Handle;
  publicKey: Pkcs11Handle;
  /** Normalised DER SPKI. */
  spki: Buffer;
}

/** The key a command works on: the configured CA key, with --label / --token applied. */
export function resolveAdminKey(opts: Pick<CaAdminOptions, 'hsm' | 'label' | 'token'>): ResolvedHsmKey {
  const key = resolveHsmKey(opts.hsm, 'ca');
  const out: ResolvedHsmKey = { ...key };
  if (opts.token !== undefined && opts.token !== key.tokenLabel) {
    out.tokenLabel = opts.token;
    out.tokenMatch = {};
  }
  if (opts.label !== undefined && opts.label !== key.keyLabel) {
    out.keyLabel = opts.label;
    delete out.keyId;
  }
  return out;
}

function openSession(opts: CaAdminOptions): CaSession {
  const env = opts.env ?? process.env;
  const dataDir = resolve(opts.dataDir);
  const key = resolveAdminKey(opts);
  if (key.module.includes('softhsm') && !env.SOFTHSM2_CONF) {
    const conf = join(dataDir, 'softhsm2.conf');
    if (!existsSync(conf)) {
      throw new HsmError(
        'HSM_TOKEN_ABSENT',
        `No SoftHSM token store in ${dataDir} (${basename(conf)} is missing). Run "station pki init" first, or pass the data folder with --data-dir.`,
      );
    }
    useSoftHsmConfig(conf, env);
  }
  const library = Pkcs11Library.open(key.module);
  const pin = readPin(key.pin, dataDir, env);
  const token = Pkcs11Token.login(library, key.tokenLabel, pin.pin);
  try {
    if (Object.keys(key.tokenMatch).length > 0) {
      const info = tokenInfo(token);
      for (const [field, want] of Object.entries(key.tokenMatch)) {
        const have = info[field as keyof typeof info];
        if (have !== want) {
          throw new HsmError('HSM_TOKEN_MISMATCH', `Token "${key.tokenLabel}" has ${field} "${have}", but the configured key URI asks for "${want}".`);
        }
      }
    }
  } catch (err) {
    token.close();
    throw err;
  }
  return { library, token, key, pinSource: pin.source, dataDir, hsm: opts.hsm, close: () => token.close() };
}

function tokenInfo(token: Pkcs11Token): { label: string; serial: string; manufacturer: string; model: string } {
  try {
    const info = token.library.api.C_GetTokenInfo(token.slot);
    return { label: info.label.trim(), serial: info.serialNumber.trim(), manufacturer: info.manufacturerID.trim(), model: info.model.trim() };
  } catch (err) {
    throw toHsmError(err, 'reading the token information');
  }
}

/** A short read-only session of our own, for the look-ups Pkcs11Token does not offer (by CKA_ID). */
function withReadSession<T>(token: Pkcs11Token, doing: string, fn: (api: pkcs11js.PKCS11, session: Pkcs11Handle) => T): T {
  const api = token.library.api;
  let session: Pkcs11Handle;
  try {
    session = api.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION);
  } catch (err) {
    throw toHsmError(err, doing);
  }
  try {
    return fn(api, session);
  } catch (err) {
    throw toHsmError(err, doing);
  } finally {
    try {
      api.C_CloseSession(session);
    } catch {
      // nothing to do about a session that will not close
    }
  }
}

function keyIdOf(token: Pkcs11Token, handle: Pkcs11Handle): Buffer {
  return withReadSession(token, 'reading a key id', (api, s) => api.C_GetAttributeValue(s, handle, [{ type: pkcs11js.CKA_ID }])[0]!.value as Buffer);
}

function privateKeysWithId(token: Pkcs11Token, id: Buffer): Pkcs11Handle[] {
  return withReadSession(token, 'searching keys by id', (api, s) => {
    api.C_FindObjectsInit(s, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_ID, value: id },
    ]);
    try {
      return api.C_FindObjects(s, 16);
    } finally {
      api.C_FindObjectsFinal(s);
    }
  });
}

function findKey(session: CaSession, label: string, keyId?: Buffer): TokenKey {
  const { token } = session;
  const privateKey = token.findPrivateKey(label);
  const publicKey = token.findPublicKey(label);
  if (!privateKey) {
    throw new HsmError('HSM_KEY_NOT_FOUND', `No private key labelled "${label}" on token ${token.label}. Create one with "station ca create --label ${label}" or check the label.`, {
      details: { key: label, token: token.label },
    });
  }
  if (!publicKey) {
    throw new HsmError('HSM_KEY_NOT_FOUND', `The private key "${label}" on token ${token.label} has no public key object with the same label; the station needs it to match certificates.`);
  }
  const id = keyIdOf(token, privateKey);
  if (keyId && !id.equals(keyId)) {
    throw new HsmError('HSM_KEY_NOT_FOUND', `The key "${label}" on token ${token.label} has id ${id.toString('hex')}, but the configured key URI names id ${keyId.toString('hex')}.`);
  }
  return { label, id, privateKey, publicKey, spki: normalizeSpki(token.publicKeySpki(publicKey)) };
}


function mechanismCheck(token: Pkcs11Token): Record<string, boolean> {
  const have = new Set(token.mechanisms());
  return {
    CKM_ECDSA: have.has(pkcs11js.CKM_ECDSA),
    CKM_EC_KEY_PAIR_GEN: have.has(pkcs11js.CKM_EC_KEY_PAIR_GEN),
    // Informational: SoftHSM has none, and the station hashes in Node anyway (pitfalls.md 4).
    CKM_ECDSA_SHA256: have.has(pkcs11js.CKM_ECDSA_SHA256),
  };
}

function requireMechanisms(token: Pkcs11Token): void {
  const m = mechanismCheck(token);
  const missing = Object.keys(REQUIRED_CA_MECHANISMS).filter((n) => !m[n]);
  if (missing.length) throw new HsmError('HSM_MECHANISM_MISSING', `The HSM token ${token.label} lacks mechanisms the station needs: ${missing.join(', ')}.`);
}

// ---------------------------------------------------------------------------------------------
// Chain files

/** Where the chain of `label` is kept: the IDevID chain for the configured CA key, else `<label>-chain.pem`. */
export function chainPathFor(dataDir: string, hsm: HsmConfig, label: string): string {
  const paths = pkiPaths(dataDir);
  return label === resolveHsmKey(hsm, 'ca').keyLabel ? paths.chain : join(paths.dir, `${label.replace(/[^A-Za-z0-9._-]/g, '_')}-chain.pem`);
}

export interface FoundChain {
  path: string;
  /** From the key's certificate to the root. */
  ders: Buffer[];
}

/**
 * The chain of the certificate of `spki`, from the PEM files in DATA/pki: the label's own chain
 * file first, then any file whose first certificate certifies the key (root-ca.pem for the test
 * root), then any file holding it further down.
 */
export function findChainForKey(dataDir: string, preferred: string, spki: Buffer): FoundChain | undefined {
  const dir = pkiPaths(dataDir).dir;
  if (!existsSync(dir)) return undefined;
  const files = [preferred, ...readdirSync(dir).filter((f) => f.endsWith('.pem')).sort().map((f) => join(dir, f))];
  let fallback: FoundChain | undefined;
  const want = normalizeSpki(spki);
  for (const path of files) {
    if (!existsSync(path)) continue;
    let certs: Buffer[];
    try {
      certs = fromPem(readFileSync(path, 'utf8'));
    } catch {
      continue;
    }
    const index = certs.findIndex((der) => {
      try {
        return new X509Certificate(der).publicKey.export({ format: 'der', type: 'spki' }).equals(want);
      } catch {
        return false;
      }
    });
    if (index === 0) return { path, ders: certs };
    if (index > 0 && !fallback) fallback = { path, ders: certs.slice(index) };
  }
  return fallback;
}

/** Write `content` to `path` through a temporary file and a rename; never a half-written chain. */
function writeAtomically(path: string, content: string, exclusive: boolean): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o644 });
  try {
    if (exclusive && existsSync(path)) throw new ConfigError('CA_CHAIN_FILE_EXISTS', `${path} appeared while the certificate was being made; it was left as it is.`);
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
}

const pemChain = (ders: readonly Buffer[]) => ders.map((d) => toPem(d)).join('');

// ---------------------------------------------------------------------------------------------
// station ca create

export interface CreateCaOptions extends CaAdminOptions {
  label: string;
  /** "O=...,CN=..."; default: the parent's O (or `organization`) and CN = label. */
  subject?: string;
  /** Label of the key (on the same token) that issues the new CA certificate; none = self-signed root. */
  parentLabel?: string;
  /** O of the default subject when there is no parent. */
  organization?: string;
}

export interface CreateCaResult {
  token: string;
  label: string;
  keyId: string;
  uri: string;
  subject: string;
  issuer: string;
  serialNumber: string;
  selfSigned: boolean;
  chainPath: string;
  /** Number of certificates in the chain file. */
  chainLength: number;
}

function defaultSubject(label: string, organization: string | undefined): NameEntry[] {
  if (!PRINTABLE_STRING.test(label) || label.length > 64) {
    throw new ConfigError('CA_SUBJECT_INVALID', `The label "${label}" cannot be the certificate's CN (PrintableString, at most 64 characters); give --subject "O=...,CN=...".`);
  }
  return [...(organization ? [{ oid: OID_ORGANIZATION, value: organization }] : []), { oid: OID_COMMON_NAME, value: label }];
}

export async function createCaKey(opts: CreateCaOptions): Promise<CreateCaResult> {
  if (!/^[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?$/.test(opts.label)) {
    throw new ConfigError('CA_LABEL_INVALID', `The label "${opts.label}" is not valid for a new key: 1 to 64 printable ASCII characters, no leading or trailing space.`);
  }
  const explicitSubject = opts.subject !== undefined ? parseSubject(opts.subject) : undefined;
  if (opts.parentLabel === opts.label) throw new ConfigError('CA_PARENT_INVALID', 'A CA cannot be its own parent; a root is made without --parent-label.');
  const session = openSession(opts);
  try {
    const { token } = session;
    const label = session.key.keyLabel;
    const id = session.key.keyId ?? Buffer.from(label, 'utf8');
    // Never overwrite, never shadow: an existing key with this label or id stops here.
    const clash = [
      token.findPrivateKey(label) ? `a private key labelled "${label}"` : undefined,
      token.findPublicKey(label) ? `a public key labelled "${label}"` : undefined,
      privateKeysWithId(token, id).length > 0 ? `a private key with id ${id.toString('hex')}` : undefined,
    ].filter((x): x is string => x !== undefined);
    if (clash.length) {
      throw new HsmError('HSM_KEY_EXISTS', `Token ${token.label} already holds ${clash.join(' and ')}; "station ca create" never replaces a key. Choose another --label, or use "station ca install-chain" for an existing key.`, {
        details: { key: label, token: token.label },
      });
    }
    const chainPath = chainPathFor(session.dataDir, session.hsm, label);
    if (existsSync(chainPath)) {
      throw new ConfigError('CA_CHAIN_FILE_EXISTS', `${chainPath} already exists but the token has no key "${label}"; move that file away first (it belongs to a key that is gone).`);
    }

    let parent: { key: TokenKey; chain: CertificateInfo[]; name: Name } | undefined;
    if (opts.parentLabel !== undefined) {
      const rootUri = resolveHsmKey(session.hsm, 'root');
      const parentKey = findKey(session, opts.parentLabel, opts.parentLabel === rootUri.keyLabel && rootUri.tokenLabel === token.label ? rootUri.keyId : undefined);
      assertStrongCaKey(opts.parentLabel, token.auditPrivateKey(parentKey.privateKey));
      const found = findChainForKey(session.dataDir, chainPathFor(session.dataDir, session.hsm, opts.parentLabel), parentKey.spki);
      if (!found) {
        throw new CaError('CA_CHAIN_MISSING', `No certificate for the parent key "${opts.parentLabel}" in ${pkiPaths(session.dataDir).dir}; install it first with "station ca install-chain --label ${opts.parentLabel} --chain FILE".`);
      }
      const chain = verifyCaChain(found.ders);
      const top = chain[0]!;
      if (top.basicConstraints?.pathLen !== undefined && top.basicConstraints.pathLen < 1) {
        throw new CaError('CA_PARENT_PATHLEN', `The parent "${opts.parentLabel}" (${top.subject}) has pathLen ${top.basicConstraints.pathLen}: it may issue end-entity certificates only, not another CA.`);
      }
      if (top.subjectKeyIdentifier && top.subjectKeyIdentifier !== keyIdentifierOf(parentKey.spki).toString('hex')) {
        throw new CaError(
          'CA_PARENT_SKI_UNSUPPORTED',
          `The parent certificate's subject key identifier is not the SHA-1 of its public key (RFC 5280 method 1), so the authority key identifier the station writes would not match it; issue the new CA with the tool that made the parent, then use "station ca install-chain".`,
        );
      }
      parent = { key: parentKey, chain, name: AsnConvert.parse(top.der, Certificate).tbsCertificate.subject };
    }
    const subjectEntries =
      explicitSubject ?? defaultSubject(label, parent ? firstValue(parent.name, OID_ORGANIZATION) : opts.organization);
    const subject = buildName(subjectEntries);

    requireMechanisms(token);
    const pair = token.generateEcP256KeyPair({ label, id, token: true, usage: { sign: true } });
    try {
      assertStrongCaKey(label, token.auditPrivateKey(pair.privateKey));
      const signer = new Pkcs11Signer(token, pair.privateKey, pair.spki);
      let ders: Buffer[];
      if (parent) {
        const parentSigner = new Pkcs11Signer(token, parent.key.privateKey, parent.key.spki);
        const der = await buildIssuingCaCertificate(subject, pair.spki, { name: parent.name, signer: parentSigner });
        ders = [der, ...parent.chain.map((c) => c.der)];
      } else {
        ders = [await buildRootCaCertificate(subject, signer)];
      }
      const chain = verifyCaChain(ders);
      writeAtomically(chainPath, pemChain(ders), true);
      const cert = chain[0]!;
      return {
        token: token.label,
        label,
        keyId: id.toString('hex'),
        uri: keyUri(session, label, id),
        subject: cert.subject,
        issuer: cert.issuer,
        serialNumber: cert.serialNumber,
        selfSigned: !parent,
        chainPath,
        chainLength: ders.length,
      };
    } catch (err) {
      // A key without its certificate is of no use and would block a retry: take it back.
      for (const h of [pair.privateKey, pair.publicKey]) {
        try {
          token.destroy(h);
        } catch {
          // reported below through the original error
        }
      }
      throw err;
    }
  } finally {
    session.close();
  }
}

function firstValue(name: Name, oid: string): string | undefined {
  for (const rdn of name) for (const atv of rdn) if (atv.type === oid) return atv.value.toString();
  return undefined;
}

function keyUri(session: CaSession, label: string, id: Buffer): string {
  return formatPkcs11Uri({ token: session.token.label, object: label, type: 'private', id, modulePath: session.key.module });
}

// ---------------------------------------------------------------------------------------------
// station ca install-chain

export interface InstallChainOptions extends CaAdminOptions {
  label: string;
  /** PEM file: the key's CA certificate first, then each issuer up to the self-signed root. */
  chainFile: string;
}

export interface InstallChainResult {
  label: string;
  token: string;
  chainPath: string;
  changed: boolean;
  replaced: boolean;
  subject: string;
  root: string;
  chainLength: number;
}

export function installCaChain(opts: InstallChainOptions): InstallChainResult {
  let text: string;
  try {
    text = readFileSync(opts.chainFile, 'utf8');
  } catch (err) {
    throw new ConfigError('CHAIN_FILE_UNREADABLE', `Cannot read the chain file ${opts.chainFile}: ${(err as Error).message}`);
  }
  const ders = fromPem(text);
  if (ders.length === 0) throw new ConfigError('CHAIN_FILE_INVALID', `${opts.chainFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----).`);
  const session = openSession(opts);
  try {
    const { token } = session;
    const key = findKey(session, session.key.keyLabel, session.key.keyId);
    const first = inspectCertificate(ders[0]!, 0);
    if (!first.spki.equals(key.spki)) {
      throw new CaError(
        'CA_KEY_MISMATCH',
        `The first certificate in ${opts.chainFile} (${first.subject}) certifies another public key (SHA-256 ${spkiFingerprint(first.spki)}) than the key "${key.label}" on token ${token.label} (SHA-256 ${spkiFingerprint(key.spki)}). Put the key's own CA certificate first.`,
        { details: { key: key.label, token: token.label } },
      );
    }
    const chain = verifyCaChain(ders);
    assertStrongCaKey(key.label, token.auditPrivateKey(key.privateKey));
    const chainPath = chainPathFor(session.dataDir, session.hsm, key.label);
    const content = pemChain(ders);
    const existing = existsSync(chainPath) ? readFileSync(chainPath, 'utf8') : undefined;
    const changed = existing !== content;
    if (changed) writeAtomically(chainPath, content, false);
    return {
      label: key.label,
      token: token.label,
      chainPath,
      changed,
      replaced: changed && existing !== undefined,
      subject: chain[0]!.subject,
      root: chain[chain.length - 1]!.subject,
      chainLength: chain.length,
    };
  } finally {
    session.close();
  }
}

// ---------------------------------------------------------------------------------------------
// station ca show

export interface CaShowReport {
  ok: boolean;
  problems: string[];
  module: { path: string; manufacturer: string; description: string; cryptokiVersion: string };
  token: { label: string; serial: string; manufacturer: string; model: string };
  /** Where the PIN came from (never the PIN). */
  pinSource: string;
  key: {
    label: string;
    id: string;
    uri: string;
    keyType: string;
    curve: string;
    publicKeySha256: string;
    attributes: Omit<PrivateKeyAudit, 'keyType' | 'ecParams'>;
    status: 'ok' | 'weak';
    weaknesses: string[];
  };
  certificate: null | {
    chainPath: string;
    subject: string;
    issuer: string;
    serialNumber: string;
    notBefore: string;
    notAfter: string;
    subjectKeyIdentifier: string | null;
    authorityKeyIdentifier: string | null;
    basicConstraints: { ca: boolean; pathLen: number | null } | null;
    keyUsage: string[];
    selfSigned: boolean;
    chainLength: number;
    chainValid: boolean;
    chainProblem: string | null;
  };
  mechanisms: Record<string, boolean>;
}

export function showCa(opts: CaAdminOptions): CaShowReport {
  const session = openSession(opts);
  try {
    const { token, library } = session;
    const key = findKey(session, session.key.keyLabel, session.key.keyId);
    const audit = token.auditPrivateKey(key.privateKey);
    const weaknesses = caKeyWeaknesses(audit);
    const { keyType, ecParams, ...attributes } = audit;
    const problems = weaknesses.length ? [`the key is weaker than the station requires: it lacks ${weaknesses.join(', ')}`] : [];

    const mechanisms = mechanismCheck(token);
    for (const name of Object.keys(REQUIRED_CA_MECHANISMS)) if (!mechanisms[name]) problems.push(`the token lacks ${name}`);

    let module: CaShowReport['module'];
    try {
      const info = library.api.C_GetInfo();
      module = {
        path: library.modulePath,
        manufacturer: info.manufacturerID.trim(),
        description: info.libraryDescription.trim(),
        cryptokiVersion: `${info.cryptokiVersion.major}.${info.cryptokiVersion.minor}`,
      };
    } catch (err) {
      throw toHsmError(err, 'reading the module information');
    }

    let certificate: CaShowReport['certificate'] = null;
    const found = findChainForKey(session.dataDir, chainPathFor(session.dataDir, session.hsm, key.label), key.spki);
    if (!found) {
      problems.push(`no certificate for this key in ${pkiPaths(session.dataDir).dir} (install one with "station ca install-chain")`);
    } else {
      const c = inspectCertificate(found.ders[0]!, 0);
      let chainProblem: string | null = null;
      try {
        verifyCaChain(found.ders);
      } catch (err) {
        chainProblem = (err as Error).message;
        problems.push(chainProblem);
      }
      certificate = {
        chainPath: found.path,
        subject: c.subject,
        issuer: c.issuer,
        serialNumber: c.serialNumber,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        subjectKeyIdentifier: c.subjectKeyIdentifier ?? null,
        authorityKeyIdentifier: c.authorityKeyIdentifier ?? null,
        basicConstraints: c.basicConstraints ? { ca: c.basicConstraints.ca, pathLen: c.basicConstraints.pathLen ?? null } : null,
        keyUsage: c.keyUsage?.names ?? [],
        selfSigned: found.ders.length === 1 && c.selfIssued,
        chainLength: found.ders.length,
        chainValid: chainProblem === null,
        chainProblem,
      };
    }
    const t = tokenInfo(token);
    return {
      ok: problems.length === 0,
      problems,
      module,
      token: { label: t.label, serial: t.serial, manufacturer: t.manufacturer, model: t.model },
      pinSource: session.pinSource,
      key: {
        label: key.label,
        id: key.id.toString('hex'),
        uri: keyUri(session, key.label, key.id),
        keyType: keyType === pkcs11js.CKK_EC ? 'CKK_EC' : `0x${keyType.toString(16)}`,
        curve: ecParams.equals(P256_EC_PARAMS) ? 'P-256' : `other (${ecParams.toString('hex')})`,
        publicKeySha256: spkiFingerprint(key.spki),
        attributes,
        status: weaknesses.length ? 'weak' : 'ok',
        weaknesses,
      },
      certificate,
      mechanisms,
    };
  } finally {
    session.close();
  }
}

// ---------------------------------------------------------------------------------------------
// station ca export

export interface ExportCaOptions extends CaAdminOptions {
  /** The public key (PEM SubjectPublicKeyInfo) instead of the chain. */
  publicKey?: boolean;
}

/** The chain (the key's CA certificate, then up to the root) or the public key, as PEM. */
export function exportCa(opts: ExportCaOptions): { pem: string; source: string } {
  const session = openSession(opts);
  try {
    const key = findKey(session, session.key.keyLabel, session.key.keyId);
    if (opts.publicKey) return { pem: toPem(key.spki, 'PUBLIC KEY'), source: `token ${session.token.label}` };
    const found = findChainForKey(session.dataDir, chainPathFor(session.dataDir, session.hsm, key.label), key.spki);
    if (!found) {
      throw new CaError('CA_CHAIN_MISSING', `No certificate for the key "${key.label}" in ${pkiPaths(session.dataDir).dir}; install one with "station ca install-chain".`);
    }
    return { pem: pemChain(found.ders), source: found.path };
  } finally {
    session.close();
  }
}
