/**
 * `station pki init`: a test PKI in SoftHSM under the data dir. The IDevID issuing CA key and
 * the root CA key are generated on the token (sensitive, never extractable, SIGN only); the
 * chain (issuing CA, then root) is written as PEM. Running it again changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import type { HsmConfig } from '../../core/config';
import { HsmError } from '../../core/errors';
import { readPin } from '../pkcs11/pin-source';
import { Pkcs11Library } from '../pkcs11/pkcs11-library';
import { Pkcs11Token } from '../pkcs11/pkcs11-token';
import { ensureSoftHsmConfig, useSoftHsmConfig } from '../pkcs11/softhsm-config';
import { ensureSigningKeyPair } from './ca-key-audit';
import { buildIssuingCaCertificate, buildRootCaCertificate } from './ca-certificates';
import { OID_COMMON_NAME, OID_ORGANIZATION, buildName, fromPem, toPem } from './x509-builder';

export interface PkiPaths {
  dir: string;
  root: string;
  issuing: string;
  /** Issuing CA then root, PEM. */
  chain: string;
}

export function pkiPaths(dataDir: string): PkiPaths {
  const dir = join(resolve(dataDir), 'pki');
  return { dir, root: join(dir, 'root-ca.pem'), issuing: join(dir, 'issuing-ca.pem'), chain: join(dir, 'idevid-chain.pem') };
}

export interface PkiInitResult {
  created: { token: boolean; rootKey: boolean; caKey: boolean; chain: boolean };
  paths: PkiPaths;
  pinSource: string;
}

function writeSecretFile(path: string, value: string): void {
  writeFileSync(path, value + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

export interface PkiInitOptions {
  dataDir: string;
  hsm: HsmConfig;
  organization: string;
  env?: NodeJS.ProcessEnv;
}

export async function initTestPki(opts: PkiInitOptions): Promise<PkiInitResult> {
  const dataDir = resolve(opts.dataDir);
  const env = opts.env ?? process.env;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  useSoftHsmConfig(ensureSoftHsmConfig(dataDir), env);
  const created = { token: false, rootKey: false, caKey: false, chain: false };

  const library = Pkcs11Library.open(opts.hsm.module);
  if (!library.findToken(opts.hsm.tokenLabel)) {
    // A new token: its PIN comes from the configured source, or is generated into the 0600 PIN file.
    let pin: string;
    try {
      pin = readPin(opts.hsm.pin, dataDir, env).pin;
    } catch (err) {
      if (!(err instanceof HsmError && err.code === 'HSM_PIN_MISSING' && opts.hsm.pin.file)) throw err;
      pin = randomBytes(18).toString('base64url');
      writeSecretFile(resolve(dataDir, opts.hsm.pin.file), pin);
    }
    const soPin = randomBytes(18).toString('base64url');
    writeSecretFile(join(dataDir, 'hsm-so-pin'), soPin);
    library.initToken(opts.hsm.tokenLabel, soPin, pin);
    created.token = true;
  }
  const resolvedPin = readPin(opts.hsm.pin, dataDir, env);
  const token = Pkcs11Token.login(library, opts.hsm.tokenLabel, resolvedPin.pin);
  try {
    const ensureKey = (label: string) => ensureSigningKeyPair(token, opts.hsm.tokenLabel, label);
    const root = ensureKey(opts.hsm.rootKeyLabel);
    const ca = ensureKey(opts.hsm.caKeyLabel);
    created.rootKey = root.created;
    created.caKey = ca.created;

    const paths = pkiPaths(dataDir);
    mkdirSync(paths.dir, { recursive: true });
    const chainMatches = (): boolean => {
      if (!existsSync(paths.chain)) return false;
      const certs = fromPem(readFileSync(paths.chain, 'utf8'));
      if (certs.length !== 2) return false;
      const spkiOf = (der: Buffer) => Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate).tbsCertificate.subjectPublicKeyInfo));
      return spkiOf(certs[0]!).equals(ca.signer.publicKeySpki) && spkiOf(certs[1]!).equals(root.signer.publicKeySpki);
    };
    if (!chainMatches()) {
      const rootName = buildName([
        { oid: OID_ORGANIZATION, value: opts.organization },
        { oid: OID_COMMON_NAME, value: 'Test IDevID Root CA' },
      ]);
      const caName = buildName([
        { oid: OID_ORGANIZATION, value: opts.organization },
        { oid: OID_COMMON_NAME, value: 'Test IDevID Issuing CA' },
      ]);
      const rootDer = await buildRootCaCertificate(rootName, root.signer);
      const caDer = await buildIssuingCaCertificate(caName, ca.signer.publicKeySpki, { name: rootName, signer: root.signer });
      writeFileSync(paths.root, toPem(rootDer));
      writeFileSync(paths.issuing, toPem(caDer));
      writeFileSync(paths.chain, toPem(caDer) + toPem(rootDer));
      created.chain = true;
    }
    return { created, paths, pinSource: resolvedPin.source };
  } finally {
    token.close();
  }
}
