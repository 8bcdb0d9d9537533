/**
 * The registrar of the BRSKI confirmation (docs/brski.md): a QA-only domain, made once under
 * DATA/brski-qa (a domain CA and a registrar certificate with id-kp-cmcRA, software keys 0600),
 * that wraps the pledge's voucher-request in a CMS-signed registrar voucher-request (RFC 8995
 * §5.5) and posts it to the MASA over TLS, presenting its registrar certificate.
 */
import { X509Certificate, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, Certificate, id_ce_authorityKeyIdentifier } from '@peculiar/asn1-x509';
import { VOUCHER_CMS_MEDIA_TYPE, VOUCHER_REQUEST_KEY, signVoucherCms } from '../../core/voucher-cms';
import { filesExist, readPrivateKey, writeCertificates, writePrivateKey } from '../../services/pki/key-files';
import { EKU_CLIENT_AUTH, EKU_CMC_RA, generateP256Key, issueCertificate, pemCertificates } from '../../services/pki/software-certificates';

export interface QaRegistrar {
  key: KeyObject;
  /** DER: the registrar's certificate (the pledge's proximity-registrar-cert). */
  certificate: Buffer;
  /** DER: the QA domain CA (what a trust-on-first-use MASA pins). */
  domainCa: Buffer;
  domainCaPath: string;
}

export function ensureQaRegistrar(dataDir: string): QaRegistrar {
  const dir = join(dataDir, 'brski-qa');
  const caPath = join(dir, 'domain-ca.pem');
  const caKeyPath = join(dir, 'domain-ca.key');
  const certPath = join(dir, 'registrar.pem');
  const keyPath = join(dir, 'registrar.key');
  if (!filesExist(caPath, caKeyPath)) {
    const caKey = generateP256Key();
    writePrivateKey(caKeyPath, caKey);
    writeCertificates(caPath, [issueCertificate({ subject: { commonName: 'Station QA domain CA', organization: 'Station QA' }, publicKey: createPublicKey(caKey), signingKey: caKey, validityDays: 3650, ca: {}, keyUsage: ['keyCertSign', 'cRLSign'] })]);
  }
  const domainCa = pemCertificates(readFileSync(caPath, 'utf8'))[0]!;
  if (!filesExist(certPath, keyPath)) {
    const key = generateP256Key();
    writePrivateKey(keyPath, key);
    writeCertificates(certPath, [
      issueCertificate({
        subject: { commonName: 'Station QA registrar', organization: 'Station QA' },
        publicKey: createPublicKey(key),
        issuerCertificate: domainCa,
        signingKey: readPrivateKey(caKeyPath),
        validityDays: 3650,
        keyUsage: ['digitalSignature'],
        extendedKeyUsage: [EKU_CMC_RA, EKU_CLIENT_AUTH],
      }),
    ]);
  }
  return { key: readPrivateKey(keyPath), certificate: pemCertificates(readFileSync(certPath, 'utf8'))[0]!, domainCa, domainCaPath: caPath };
}

/** RFC 8366 idevid-issuer: the keyIdentifier of the IDevID's authorityKeyIdentifier, base64; undefined without one. */
export function idevidIssuerOf(idevid: Buffer): string | undefined {
  const cert = AsnConvert.parse(idevid, Certificate);
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_authorityKeyIdentifier);
  if (!ext) return undefined;
  const aki = AsnConvert.parse(ext.extnValue, AuthorityKeyIdentifier);
  return aki.keyIdentifier ? Buffer.from(aki.keyIdentifier.buffer).toString('base64') : undefined;
}

export function buildRegistrarVoucherRequest(input: { registrar: QaRegistrar; pledgeRequest: Buffer; serial: string; nonce: Buffer | undefined; idevid: Buffer; now?: Date }): Buffer {
  const now = input.now ?? new Date();
  const issuer = idevidIssuerOf(input.idevid);
  const body: Record<string, string> = {
    'created-on': now.toISOString(),
    'serial-number': input.serial,
    ...(input.nonce ? { nonce: input.nonce.toString('base64') } : {}),
    ...(issuer ? { 'idevid-issuer': issuer } : {}),
    'prior-signed-voucher-request': input.pledgeRequest.toString('base64'),
  };
  return signVoucherCms(
    { [VOUCHER_REQUEST_KEY]: body },
    { certificates: [input.registrar.certificate, input.registrar.domainCa], sign: (data) => sign('sha256', data, { key: input.registrar.key, dsaEncoding: 'der' }), signingTime: now },
  );
}

export interface MasaAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** POST the registrar voucher-request to `${masaUrl}/.well-known/brski/requestvoucher`. */
export function postVoucherRequest(input: { masaUrl: string; serverCa: Buffer; registrar: QaRegistrar; body: Buffer; timeoutMs?: number }): Promise<MasaAnswer> {
  const url = new URL('/.well-known/brski/requestvoucher', input.masaUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: input.serverCa,
        key: input.registrar.key.export({ format: 'pem', type: 'pkcs8' }),
        cert: new X509Certificate(input.registrar.certificate).toString(),
        agent: false,
        timeout: input.timeoutMs ?? 15_000,
        headers: { 'content-type': VOUCHER_CMS_MEDIA_TYPE, accept: VOUCHER_CMS_MEDIA_TYPE, 'content-length': input.body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`the MASA did not answer within ${input.timeoutMs ?? 15_000} ms`)));
    req.on('error', reject);
    req.end(input.body);
  });
}

export function randomNonce(): Buffer {
  return randomBytes(16);
}
