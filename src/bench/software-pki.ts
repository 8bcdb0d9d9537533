/**
 * A root and an issuing CA with software keys, shaped like the test PKI (same names, extensions
 * and profile code), and an IdevidIssuer over them. For link measurements and transcript
 * recordings, which need a realistic 3-certificate chain for a device key but must not spend
 * their time (or their SoftHSM) on the CA. Never used by the station itself.
 */
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import type { IssuanceJournal } from '../core/ports/issuance-journal';
import type { Signer } from '../core/ports/signer';
import { buildIssuingCaCertificate, buildRootCaCertificate } from '../hsm/ca/ca-certificates';
import { IdevidIssuer } from '../hsm/ca/idevid-issuer';
import { OID_COMMON_NAME, OID_ORGANIZATION, buildName } from '../hsm/ca/x509-builder';

export interface SoftwarePki {
  /** The issuing CA's certificate, then the root's (DER): what IdevidIssuer returns as the chain. */
  chain: readonly Buffer[];
  issuer: IdevidIssuer;
}

export function softwareSigner(key: KeyObject, spki: Buffer): Signer {
  return { algorithm: 'ecdsa-p256-sha256', publicKeySpki: spki, sign: async (data) => nodeSign('sha256', data, { key, dsaEncoding: 'der' }) };
}

function newSigner(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return softwareSigner(privateKey, publicKey.export({ format: 'der', type: 'spki' }));
}

export async function createSoftwarePki(organization: string, journal: IssuanceJournal = { recordIssued: () => undefined, recordIntent: () => undefined, findDeviceByPublicKey: () => undefined }): Promise<SoftwarePki> {
  const root = newSigner();
  const ca = newSigner();
  const rootName = buildName([
    { oid: OID_ORGANIZATION, value: organization },
    { oid: OID_COMMON_NAME, value: 'Test IDevID Root CA' },
  ]);
  const caName = buildName([
    { oid: OID_ORGANIZATION, value: organization },
    { oid: OID_COMMON_NAME, value: 'Test IDevID Issuing CA' },
  ]);
  const rootDer = await buildRootCaCertificate(rootName, root);
  const caDer = await buildIssuingCaCertificate(caName, ca.publicKeySpki, { name: rootName, signer: root });
  const chain = [caDer, rootDer];
  return { chain, issuer: new IdevidIssuer(ca, chain, journal) };
}
