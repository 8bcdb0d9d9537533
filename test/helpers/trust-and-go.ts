/**
 * Test manifests with the structure of a real Microchip Trust&GO manifest (docs/se-manifest.md):
 * a test PKI shaped like Microchip's (root CA -> "Signer" intermediate -> device certificate; a
 * self-signed manifest signer), SignedSecureElement entries with five P-256 keys of which only
 * slot 0 carries x5c [device, signer], protected header {"alg","kid","typ","x5t#S256"}, compact
 * JSON payloads. Every knob here makes one of the variants or faults a test needs. All keys are
 * made fresh per test run: TEST KEYS, NOT MICROCHIP'S.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  OID_COMMON_NAME,
  OID_ORGANIZATION,
  buildVendorCertificate,
  caExtensions,
  endEntityExtensions,
  keyIdentifier,
  printableName,
} from '../../src/simulator/vendor/vendor-cert-builder';

export interface TestKey {
  key: KeyObject;
  spki: Buffer;
}

export interface TestCert extends TestKey {
  cert: Buffer;
  name: ReturnType<typeof printableName>;
}

export interface TestVendorPki {
  root: TestCert;
  /** The intermediate that issues device certificates ("Crypto Authentication Signer 2A00"). */
  signer: TestCert;
  /** The manifest signer (self-signed, "Manifest Signer 005"). */
  manifestSigner: TestCert;
}

export function newP256(curve: 'prime256v1' | 'secp384r1' = 'prime256v1'): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return { key: privateKey, spki: publicKey.export({ format: 'der', type: 'spki' }) };
}

const ORG = 'Test SE Vendor (NOT MICROCHIP)';

export function selfSigned(cn: string, ca: boolean, validity?: { notBefore?: Date; notAfter?: Date }): TestCert {
  const k = newP256();
  const name = printableName([
    [OID_ORGANIZATION, ORG],
    [OID_COMMON_NAME, cn],
  ]);
  const cert = buildVendorCertificate({
    issuer: name,
    subject: name,
    subjectSpki: k.spki,
    extensions: ca ? caExtensions(k.spki) : endEntityExtensions(k.spki, k.spki),
    signingKey: k.key,
    ...validity,
  });
  return { ...k, cert, name };
}

export function issued(issuer: TestCert, cn: string, opts: { ca?: boolean; key?: TestKey; notBefore?: Date; notAfter?: Date } = {}): TestCert {
  const k = opts.key ?? newP256();
  const name = printableName([
    [OID_ORGANIZATION, ORG],
    [OID_COMMON_NAME, cn],
  ]);
  const cert = buildVendorCertificate({
    issuer: issuer.name,
    subject: name,
    subjectSpki: k.spki,
    extensions: opts.ca ? caExtensions(k.spki) : endEntityExtensions(k.spki, issuer.spki),
    signingKey: issuer.key,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
  });
  return { ...k, cert, name };
}

/** `notBefore` (default now) lets a committed fixture be valid on machines whose clock is behind. */
export function makeVendorPki(opts: { notBefore?: Date } = {}): TestVendorPki {
  const root = selfSigned('Test Root CA 002', true, { notBefore: opts.notBefore });
  const signer = issued(root, 'Test Signer 2A00', { ca: true, notBefore: opts.notBefore });
  return { root, signer, manifestSigner: selfSigned('Manifest Signer 005', false, { notBefore: opts.notBefore }) };
}

export interface TestSe {
  uniqueId: string;
  device: TestCert;
}

/** A 9-byte CryptoAuthentication-style serial and its device certificate ("sn" + uppercase serial). */
export function makeSe(pki: TestVendorPki, opts: { issuer?: TestCert; key?: TestKey; notBefore?: Date; notAfter?: Date } = {}): TestSe {
  const uniqueId = Buffer.concat([Buffer.from([0x01, 0x23]), randomBytes(6), Buffer.from([0x01])]).toString('hex');
  return { uniqueId, device: issued(opts.issuer ?? pki.signer, `sn${uniqueId.toUpperCase()}`, { key: opts.key, notBefore: opts.notBefore, notAfter: opts.notAfter ?? new Date(Date.UTC(2060, 0, 1)) }) };
}

export interface EntryOptions {
  /** Which certificates x5c carries (default: device + signer, as Microchip's files). */
  x5c?: 'device' | 'device+signer' | 'device+signer+root';
  /** Replace the whole x5c array (base64 strings). */
  x5cStrings?: string[];
  /** The JWK x/y from this key instead of the device certificate's. */
  jwkKey?: TestKey;
  jwkCurve?: string;
  /** Payload uniqueId as written (default lowercase). */
  payloadUniqueId?: string;
  /** Unprotected header (default { uniqueId }); null: no header member. */
  header?: Record<string, unknown> | null;
  /** Pad the base64url members with '='. */
  paddedBase64Url?: boolean;
  /** Extra payload members, or members to drop (value undefined). */
  payload?: Record<string, unknown>;
  /** Protected header members to set or drop. */
  protectedHeader?: Record<string, unknown>;
  /** Sign with this key instead of the manifest signer's (x5t#S256 still names the manifest signer). */
  signWith?: KeyObject;
  /** The certificate x5t#S256 and kid name (default the manifest signer's). */
  namedSigner?: TestCert;
  /** Python's json.dumps default separators (", " and ": ") instead of compact JSON. */
  pythonJson?: boolean;
  /** Signature as DER instead of raw R||S. */
  derSignature?: boolean;
  /** No publicKeySet at all (a TrustMANAGER-style entry). */
  noKeys?: boolean;
}

const b64url = (b: Uint8Array, padded = false): string => {
  const s = Buffer.from(b).toString('base64url');
  return padded ? s + '='.repeat((4 - (s.length % 4)) % 4) : s;
};

/** json.dumps(v) with Python's default separators (", " and ": "), as pytrustplatform writes payloads. */
function pythonDumps(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pythonDumps).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pythonDumps(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

export function signedEntry(pki: TestVendorPki, se: TestSe, o: EntryOptions = {}): Record<string, unknown> {
  const x5cCerts = { device: [se.device.cert], 'device+signer': [se.device.cert, pki.signer.cert], 'device+signer+root': [se.device.cert, pki.signer.cert, pki.root.cert] }[o.x5c ?? 'device+signer'];
  const jwk = createPublicKey({ key: (o.jwkKey ?? se.device).spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  const slot0 = { kid: '0', kty: 'EC', crv: o.jwkCurve ?? 'P-256', x: jwk.x, y: jwk.y, x5c: o.x5cStrings ?? x5cCerts.map((c) => c.toString('base64')) };
  const otherSlots = [1, 2, 3, 4].map((kid) => {
    const j = createPublicKey({ key: newP256().spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
    return { kid: String(kid), kty: 'EC', crv: 'P-256', x: j.x, y: j.y };
  });
  const payload: Record<string, unknown> = {
    version: 1,
    model: 'ATECC608C',
    partNumber: 'ATECC608C-TNGTLSU-B',
    manufacturer: { organizationName: ORG, organizationalUnitName: 'Secure Products Group' },
    provisioner: { organizationName: ORG, organizationalUnitName: 'Secure Products Group' },
    distributor: { organizationName: ORG, organizationalUnitName: 'Direct' },
    groupId: 'TESTGROUP0000001',
    provisioningTimestamp: '2025-06-01T20:14:53.773Z',
    uniqueId: o.payloadUniqueId ?? se.uniqueId,
    publicKeySet: { keys: [slot0, ...otherSlots] },
  };
  if (o.noKeys) delete payload.publicKeySet;
  for (const [k, v] of Object.entries(o.payload ?? {})) {
    if (v === undefined) delete payload[k];
    else payload[k] = v;
  }
  const named = o.namedSigner ?? pki.manifestSigner;
  const protectedHeader: Record<string, unknown> = {
    alg: 'ES256',
    kid: b64url(keyIdentifier(named.spki)),
    typ: 'JWT',
    'x5t#S256': b64url(createHash('sha256').update(named.cert).digest()),
  };
  for (const [k, v] of Object.entries(o.protectedHeader ?? {})) {
    if (v === undefined) delete protectedHeader[k];
    else protectedHeader[k] = v;
  }
  const dumps = o.pythonJson ? pythonDumps : JSON.stringify;
  const payloadB64 = b64url(Buffer.from(dumps(payload)), o.paddedBase64Url);
  const protectedB64 = b64url(Buffer.from(dumps(protectedHeader)), o.paddedBase64Url);
  const signature = sign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`, 'ascii'), { key: o.signWith ?? pki.manifestSigner.key, dsaEncoding: o.derSignature ? 'der' : 'ieee-p1363' });
  const entry: Record<string, unknown> = { payload: payloadB64, protected: protectedB64, header: { uniqueId: se.uniqueId }, signature: b64url(signature, o.paddedBase64Url) };
  if (o.header === null) delete entry.header;
  else if (o.header) entry.header = o.header;
  return entry;
}

export function trustOf(pki: TestVendorPki, cas: 'root' | 'signer' | 'both' = 'root'): { signerCertificates: Buffer[]; vendorCaCertificates: Buffer[] } {
  const vendorCaCertificates = cas === 'root' ? [pki.root.cert] : cas === 'signer' ? [pki.signer.cert] : [pki.root.cert, pki.signer.cert];
  return { signerCertificates: [pki.manifestSigner.cert], vendorCaCertificates };
}

export function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}
