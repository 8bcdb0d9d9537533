/**
 * Secure-element manifests in Microchip's Trust Platform manifest format (the Trust&GO /
 * TrustFLEX manifest; docs/se-manifest.md has the format, the sources and the variants):
 * a JSON array of SignedSecureElement objects, each a JWS in the flattened JSON serialization
 * (RFC 7515 7.2.2) whose payload is a SecureElement object with the SE's uniqueId and a JWK set
 * of its public keys, the certified one with its x5c chain.
 *
 * verifySeManifest checks, for every entry: the JWS signature (ES256, raw R||S) with a configured
 * manifest signer certificate chosen by the protected header's x5t#S256; the x5c chain to a
 * configured SE vendor CA; that the certificate's key is the JWK's key. The SE's identity is the
 * uniqueId of the signed payload; the unprotected header's copy is only compared, never used.
 * Pure: no I/O (the caller reads the file and the trust anchors).
 */
import { createHash, createPublicKey, verify as verifySignature, type KeyObject, type X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectKeyIdentifier, id_ce_subjectKeyIdentifier } from '@peculiar/asn1-x509';
import { p256PointFromSpki, p256SpkiFromPoint } from './ec-public-key';
import { StationError } from './errors';
import { EncodingError, decodeBase64Url, decodeX5cCertificate, encodeBase64Url, normaliseUniqueId } from './se-manifest-encoding';
import { parseCertificate, pathToAnchor } from './x509-path';

export type SeManifestErrorCode =
  | 'MANIFEST_MALFORMED'
  | 'MANIFEST_EMPTY'
  | 'MANIFEST_ALG_UNSUPPORTED'
  | 'MANIFEST_SIGNER_UNKNOWN'
  | 'MANIFEST_SIGNATURE_INVALID'
  | 'MANIFEST_UNIQUE_ID_MISMATCH'
  | 'MANIFEST_NO_CERTIFICATE'
  | 'MANIFEST_KEY_UNSUPPORTED'
  | 'MANIFEST_KEY_MISMATCH'
  | 'MANIFEST_CHAIN_INVALID'
  | 'MANIFEST_DUPLICATE_ENTRY'
  | 'MANIFEST_DUPLICATE_KEY'
  | 'MANIFEST_ENTRY_CONFLICT'
  | 'MANIFEST_TRUST_INVALID';

export interface SeManifestProblem {
  code: SeManifestErrorCode;
  /** 1-based position in the file; null for the file as a whole. */
  entry: number | null;
  uniqueId: string | null;
  message: string;
}

/**
 * A manifest, or an entry of it, that the station refuses. Family `config` (exit code 2): the
 * input is wrong, not the station. `problems` lists every refused entry; the message names the
 * first one.
 */
export class SeManifestError extends StationError {
  readonly problems: readonly SeManifestProblem[];

  constructor(first: SeManifestProblem, problems: readonly SeManifestProblem[] = [first], total?: number) {
    const where = first.entry === null ? 'The manifest' : `Manifest entry ${first.entry}${first.uniqueId ? ` (uniqueId ${first.uniqueId})` : ''}`;
    const more = problems.length > 1 ? ` ${problems.length}${total ? ` of ${total}` : ''} entries were refused; the first is shown. Nothing was imported.` : ' Nothing was imported.';
    super('config', first.code, `${where}: ${first.message}.${more}`, {
      details: { entry: first.entry, uniqueId: first.uniqueId, refused: problems.length, ...(total ? { entries: total } : {}) },
    });
    this.problems = problems;
  }
}

export interface SeManifestTrust {
  /** Certificates of the vendor's manifest signing keys (DER). */
  signerCertificates: readonly Buffer[];
  /** The SE vendor's CA certificates that SE certificates must chain to (DER). */
  vendorCaCertificates: readonly Buffer[];
}

export interface EntityName {
  organizationName: string | null;
  organizationalUnitName: string | null;
}

export interface VerifiedSeEntry {
  /** 1-based position in the file. */
  entry: number;
  /** From the signed payload, lowercase hex. */
  uniqueId: string;
  /** The JWK `kid` of the certified key (the key slot on a CryptoAuthentication device). */
  keyId: string;
  /** DER SPKI of the SE key (uncompressed P-256 point). */
  publicKeySpki: Buffer;
  /** The vendor's certificate of the SE key (x5c[0]), DER. */
  certificateDer: Buffer;
  /** Its issuers up to and including the configured vendor CA, DER. */
  chainDer: Buffer[];
  /** SHA-256 of the manifest signer certificate that verified the entry, hex. */
  signerSha256: string;
  version: number;
  model: string | null;
  partNumber: string | null;
  groupId: string | null;
  provisioningTimestamp: string | null;
  manufacturer: EntityName | null;
}

export interface VerifiedSeManifest {
  entries: VerifiedSeEntry[];
  /** Things an operator should know that do not make an entry untrustworthy. */
  warnings: string[];
}

export interface VerifySeManifestOptions {
  /** The time certificates must be valid at (default now). */
  now?: Date;
}

/** JWS `alg` values for the ECDSA curves a manifest signer may use (RFC 7518 3.4). */
const ECDSA_ALGS: Record<string, { hash: string; curve: string; signatureBytes: number }> = {
  ES256: { hash: 'sha256', curve: 'prime256v1', signatureBytes: 64 },
  ES384: { hash: 'sha384', curve: 'secp384r1', signatureBytes: 96 },
  ES512: { hash: 'sha512', curve: 'secp521r1', signatureBytes: 132 },
};

/** Protected header parameters this verifier understands; a `crit` naming anything is refused. */
const PROTECTED_MEMBERS = new Set(['alg', 'kid', 'typ', 'x5t#S256', 'cty']);

interface TrustAnchors {
  signers: { cert: X509Certificate; sha256: Buffer; key: KeyObject; ski: Buffer | null }[];
  vendorCas: X509Certificate[];
}

class EntryRefused extends Error {
  constructor(
    readonly code: SeManifestErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(obj: Record<string, unknown>, name: string): string | null {
  const v = obj[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new EntryRefused('MANIFEST_MALFORMED', `its payload member "${name}" is not a string`);
  return v;
}

function entityName(obj: Record<string, unknown>, ...names: string[]): EntityName | null {
  const name = names.find((n) => obj[n] !== undefined);
  if (name === undefined || obj[name] === null) return null;
  const v = obj[name];
  if (!isObject(v)) throw new EntryRefused('MANIFEST_MALFORMED', `its payload member "${name}" is not an EntityName object`);
  return {
    organizationName: optionalString(v, 'organizationName'),
    organizationalUnitName: optionalString(v, 'organizationalUnitName'),
  };
}

function subjectKeyIdentifier(der: Buffer): Buffer | null {
  try {
    const ext = AsnConvert.parse(der, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
    return ext ? Buffer.from(AsnConvert.parse(ext.extnValue.buffer, SubjectKeyIdentifier).buffer) : null;
  } catch {
    return null;
  }
}

function loadTrust(trust: SeManifestTrust): TrustAnchors {
  const refuse = (message: string): never => {
    throw new SeManifestError({ code: 'MANIFEST_TRUST_INVALID', entry: null, uniqueId: null, message });
  };
  if (trust.signerCertificates.length === 0) refuse('no manifest signer certificate is configured (seVendor.manifestSignerCertificates), so no entry can be verified');
  if (trust.vendorCaCertificates.length === 0) refuse('no SE vendor CA certificate is configured (seVendor.vendorCaCertificates), so no SE certificate can be checked');
  const signers = trust.signerCertificates.map((der, i) => {
    const cert = parseCertificate(der) ?? refuse(`manifest signer certificate ${i + 1} is not a certificate`);
    return { cert, sha256: createHash('sha256').update(der).digest(), key: cert.publicKey, ski: subjectKeyIdentifier(der) };
  });
  const vendorCas = trust.vendorCaCertificates.map((der, i) => parseCertificate(der) ?? refuse(`SE vendor CA certificate ${i + 1} is not a certificate`));
  return { signers, vendorCas };
}

function decode(value: unknown, what: string): Buffer {
  try {
    return decodeBase64Url(value, what);
  } catch (err) {
    throw new EntryRefused('MANIFEST_MALFORMED', (err as Error).message);
  }
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new EntryRefused('MANIFEST_MALFORMED', `its ${what} is not JSON`);
  }
  if (!isObject(v)) throw new EntryRefused('MANIFEST_MALFORMED', `its ${what} is not a JSON object`);
  return v;
}

/** The JWS: signer by x5t#S256, ES256 signature over ASCII(protected || '.' || payload). */
function verifyJws(raw: Record<string, unknown>, anchors: TrustAnchors, now: Date, warnings: Set<string>): { payload: Record<string, unknown>; signerSha256: string } {
  for (const m of ['protected', 'payload', 'signature']) {
    if (typeof raw[m] !== 'string') throw new EntryRefused('MANIFEST_MALFORMED', `it has no "${m}" string (a flattened JWS, RFC 7515 7.2.2)`);
  }
  if (raw.header !== undefined && !isObject(raw.header)) throw new EntryRefused('MANIFEST_MALFORMED', 'its unprotected "header" is not an object');
  const protectedHeader = parseJson(decode(raw.protected, 'the protected header'), 'protected header');
  if (isObject(raw.header)) {
    const both = Object.keys(raw.header).filter((k) => k in protectedHeader);
    if (both.length > 0) throw new EntryRefused('MANIFEST_MALFORMED', `its unprotected header repeats ${both.join(', ')} from the protected header (RFC 7515 7.2.1: the two must be disjoint)`);
  }
  if (protectedHeader.crit !== undefined) throw new EntryRefused('MANIFEST_MALFORMED', 'its protected header has "crit" extensions this station does not understand');
  const alg = protectedHeader.alg;
  const scheme = typeof alg === 'string' ? ECDSA_ALGS[alg] : undefined;
  if (!scheme) throw new EntryRefused('MANIFEST_ALG_UNSUPPORTED', `its signature algorithm is ${JSON.stringify(alg)}; manifests are signed with ES256 (an ECDSA key)`);
  for (const k of Object.keys(protectedHeader)) {
    if (!PROTECTED_MEMBERS.has(k)) warnings.add(`protected header member "${k}" is not part of the manifest format and was ignored`);
  }
  const thumbprint = protectedHeader['x5t#S256'];
  if (thumbprint === undefined) throw new EntryRefused('MANIFEST_SIGNER_UNKNOWN', 'its protected header names no signer certificate (x5t#S256)');
  const x5t = decode(thumbprint, 'the x5t#S256 thumbprint');
  const signer = anchors.signers.find((s) => s.sha256.equals(x5t));
  if (!signer) {
    throw new EntryRefused(
      'MANIFEST_SIGNER_UNKNOWN',
      `it is signed by the key of a certificate with SHA-256 ${x5t.toString('hex')}, which is not a configured manifest signer. If this vendor signer is genuine, add its certificate to seVendor.manifestSignerCertificates`,
    );
  }
  if (signer.key.asymmetricKeyType !== 'ec' || signer.key.asymmetricKeyDetails?.namedCurve !== scheme.curve) {
    throw new EntryRefused('MANIFEST_ALG_UNSUPPORTED', `it claims ${String(alg)}, but its signer certificate holds another kind of key`);
  }
  if (typeof protectedHeader.kid === 'string' && signer.ski && protectedHeader.kid !== encodeBase64Url(signer.ski)) {
    warnings.add(`an entry's kid (${protectedHeader.kid}) is not the subject key identifier of its signer certificate (kid is informational; the signer was chosen by x5t#S256)`);
  }
  // every member is checked to be base64url before the signing input is built from it
  const payloadBytes = decode(raw.payload, 'the payload');
  const signature = decode(raw.signature, 'the signature');
  if (signature.length !== scheme.signatureBytes) {
    throw new EntryRefused('MANIFEST_SIGNATURE_INVALID', `its signature is ${signature.length} bytes, not the ${scheme.signatureBytes}-byte R||S of ${String(alg)} (RFC 7518 3.4)`);
  }
  const signingInput = Buffer.from(`${raw.protected as string}.${raw.payload as string}`, 'ascii');
  let ok = false;
  try {
    ok = verifySignature(scheme.hash, signingInput, { key: signer.key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new EntryRefused(
      'MANIFEST_SIGNATURE_INVALID',
      'its signature does not verify with the signer certificate it names: the entry was changed after the vendor signed it, or was not signed by that vendor. Ask the vendor for the original file',
    );
  }
  const expired = Date.parse(signer.cert.validTo);
  if (!Number.isNaN(expired) && expired < now.getTime()) {
    warnings.add(`the manifest signer certificate ${signer.cert.subject.replace(/\n/g, ', ')} expired on ${new Date(expired).toISOString()}; it still verifies the entries it signed (Microchip rotates its manifest signers)`);
  }
  return { payload: parseJson(payloadBytes, 'payload'), signerSha256: signer.sha256.toString('hex') };
}

/** The JWK's P-256 key as an uncompressed SPKI. */
function jwkSpki(jwk: Record<string, unknown>, kid: string): Buffer {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') {
    throw new EntryRefused('MANIFEST_KEY_UNSUPPORTED', `its certified key ${kid} is ${String(jwk.kty)}/${String(jwk.crv)}; this station certifies EC P-256 keys only`);
  }
  const x = decode(jwk.x, `key ${kid}'s x coordinate`);
  const y = decode(jwk.y, `key ${kid}'s y coordinate`);
  if (x.length !== 32 || y.length !== 32) throw new EntryRefused('MANIFEST_MALFORMED', `key ${kid}'s coordinates are not 32 bytes each (RFC 7518 6.2.1.2)`);
  const spki = p256SpkiFromPoint(Buffer.concat([Buffer.from([4]), x, y]));
  try {
    createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new EntryRefused('MANIFEST_MALFORMED', `key ${kid} is not a point on P-256`);
  }
  return spki;
}

function certifiedKey(
  payload: Record<string, unknown>,
  anchors: TrustAnchors,
  now: Date,
): { keyId: string; spki: Buffer; certificateDer: Buffer; chainDer: Buffer[] } {
  const set = payload.publicKeySet;
  if (set === undefined) {
    throw new EntryRefused('MANIFEST_NO_CERTIFICATE', 'its payload has no publicKeySet: the manifest lists this SE without a key (e.g. a key-less TrustMANAGER manifest), so it cannot vouch for one');
  }
  if (!isObject(set) || !Array.isArray(set.keys)) throw new EntryRefused('MANIFEST_MALFORMED', 'its publicKeySet is not a JWK set ({"keys": [...]})');
  const withCertificates = set.keys.filter((k): k is Record<string, unknown> => isObject(k) && k.x5c !== undefined);
  if (withCertificates.length === 0) throw new EntryRefused('MANIFEST_NO_CERTIFICATE', 'none of its keys carries a certificate (x5c), so none is vouched for by the vendor CA');
  let first: { keyId: string; spki: Buffer; certificateDer: Buffer; chainDer: Buffer[] } | undefined;
  // Every certified key is checked; the first is the SE's identity key (slot 0 on Trust&GO parts).
  for (const jwk of withCertificates) {
    const kid = typeof jwk.kid === 'string' ? jwk.kid : String(jwk.kid ?? '?');
    if (!Array.isArray(jwk.x5c) || jwk.x5c.length === 0) throw new EntryRefused('MANIFEST_MALFORMED', `key ${kid}'s x5c is not a non-empty array of certificates`);
    const ders = jwk.x5c.map((c, i) => {
      try {
        return decodeX5cCertificate(c, `key ${kid}'s certificate ${i}`);
      } catch (err) {
        throw new EntryRefused('MANIFEST_MALFORMED', (err as EncodingError).message);
      }
    });
    const certs = ders.map((d, i) => {
      const cert = parseCertificate(d);
      if (!cert) throw new EntryRefused('MANIFEST_MALFORMED', `key ${kid}'s certificate ${i} is not an X.509 certificate`);
      return cert;
    });
    const spki = jwkSpki(jwk, kid);
    let certPoint: Buffer;
    try {
      certPoint = p256PointFromSpki(certs[0]!.publicKey.export({ format: 'der', type: 'spki' }));
    } catch {
      throw new EntryRefused('MANIFEST_KEY_MISMATCH', `key ${kid}'s certificate does not hold a P-256 key, so it cannot be the certificate of the listed key`);
    }
    if (!p256SpkiFromPoint(certPoint).equals(spki)) {
      throw new EntryRefused('MANIFEST_KEY_MISMATCH', `key ${kid}'s certificate is for another key than the x/y the entry lists`);
    }
    const path = pathToAnchor(certs[0]!, certs.slice(1), anchors.vendorCas, now);
    if (!path.ok) throw new EntryRefused('MANIFEST_CHAIN_INVALID', `key ${kid}'s certificate: ${path.reason}`);
    first ??= { keyId: kid, spki, certificateDer: ders[0]!, chainDer: path.issuers };
  }
  return first!;
}

function verifyEntry(raw: unknown, index: number, anchors: TrustAnchors, now: Date, warnings: Set<string>): VerifiedSeEntry {
  if (!isObject(raw)) throw new EntryRefused('MANIFEST_MALFORMED', 'it is not a JSON object (a SignedSecureElement)');
  const { payload, signerSha256 } = verifyJws(raw, anchors, now, warnings);
  const uniqueId = normaliseUniqueId(payload.uniqueId);
  if (!uniqueId) throw new EntryRefused('MANIFEST_MALFORMED', `its signed uniqueId ${JSON.stringify(payload.uniqueId)} is not a hex serial number`);
  if (isObject(raw.header) && raw.header.uniqueId !== undefined && normaliseUniqueId(raw.header.uniqueId) !== uniqueId) {
    throw new EntryRefused(
      'MANIFEST_UNIQUE_ID_MISMATCH',
      `its unprotected header says uniqueId ${JSON.stringify(raw.header.uniqueId)}, but the signed payload says ${uniqueId}: the unsigned copy was changed. Ask the vendor for the original file`,
    );
  }
  const version = payload.version;
  if (version !== undefined && !(Number.isInteger(version) && (version as number) >= 1)) throw new EntryRefused('MANIFEST_MALFORMED', 'its payload version is not a positive integer');
  const key = certifiedKey(payload, anchors, now);
  return {
    entry: index + 1,
    uniqueId,
    keyId: key.keyId,
    publicKeySpki: key.spki,
    certificateDer: key.certificateDer,
    chainDer: key.chainDer,
    signerSha256,
    version: (version as number | undefined) ?? 1,
    model: optionalString(payload, 'model'),
    partNumber: optionalString(payload, 'partNumber'),
    groupId: optionalString(payload, 'groupId'),
    provisioningTimestamp: optionalString(payload, 'provisioningTimestamp'),
    manufacturer: entityName(payload, 'manufacturer'),
  };
}

/** The manifest file's text (UTF-8, an optional byte-order mark) as the array of its entries. */
function parseManifest(text: string | Buffer): unknown[] {
  const s = (typeof text === 'string' ? text : text.toString('utf8')).replace(/^\uFEFF/, '');
  let doc: unknown;
  try {
    doc = JSON.parse(s);
  } catch (err) {
    throw new SeManifestError({ code: 'MANIFEST_MALFORMED', entry: null, uniqueId: null, message: `it is not JSON (${(err as Error).message})` });
  }
  if (!Array.isArray(doc)) {
    throw new SeManifestError({ code: 'MANIFEST_MALFORMED', entry: null, uniqueId: null, message: 'it is not a JSON array of signed secure elements (Microchip manifest format, SecureElementManifest)' });
  }
  if (doc.length === 0) throw new SeManifestError({ code: 'MANIFEST_EMPTY', entry: null, uniqueId: null, message: 'it lists no secure element' });
  return doc;
}

function peekUniqueId(raw: unknown): string | null {
  // for messages only: the signed payload's id when it decodes, else the unprotected copy
  try {
    if (isObject(raw) && typeof raw.payload === 'string') {
      const p = JSON.parse(Buffer.from(raw.payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      const id = normaliseUniqueId(p.uniqueId);
      if (id) return id;
    }
  } catch {
    // fall through
  }
  return isObject(raw) && isObject(raw.header) ? normaliseUniqueId(raw.header.uniqueId) ?? null : null;
}

/**
 * Verify every entry of a manifest against the configured trust anchors. All or nothing: any
 * refused entry throws a SeManifestError listing every problem, so a partly altered file is
 * never partly imported.
 */
export function verifySeManifest(text: string | Buffer, trust: SeManifestTrust, options: VerifySeManifestOptions = {}): VerifiedSeManifest {
  const anchors = loadTrust(trust);
  const raw = parseManifest(text);
  const now = options.now ?? new Date();
  const warnings = new Set<string>();
  const entries: VerifiedSeEntry[] = [];
  const problems: SeManifestProblem[] = [];
  const byId = new Map<string, VerifiedSeEntry>();
  const byKey = new Map<string, VerifiedSeEntry>();
  raw.forEach((item, i) => {
    try {
      const e = verifyEntry(item, i, anchors, now, warnings);
      const sameId = byId.get(e.uniqueId);
      if (sameId) {
        if (!sameId.publicKeySpki.equals(e.publicKeySpki)) {
          throw new EntryRefused('MANIFEST_DUPLICATE_ENTRY', `entry ${sameId.entry} lists the same uniqueId with another key`);
        }
        warnings.add(`uniqueId ${e.uniqueId} is listed more than once with the same key; it is imported once`);
        return;
      }
      const keyHex = e.publicKeySpki.toString('hex');
      const sameKey = byKey.get(keyHex);
      if (sameKey) throw new EntryRefused('MANIFEST_DUPLICATE_KEY', `its key is also the key of entry ${sameKey.entry} (uniqueId ${sameKey.uniqueId}); two secure elements never share a key`);
      byId.set(e.uniqueId, e);
      byKey.set(keyHex, e);
      entries.push(e);
    } catch (err) {
      if (!(err instanceof EntryRefused)) throw err;
      problems.push({ code: err.code, entry: i + 1, uniqueId: peekUniqueId(item), message: err.message });
    }
  });
  if (problems.length > 0) throw new SeManifestError(problems[0]!, problems, raw.length);
  return { entries, warnings: [...warnings] };
}
