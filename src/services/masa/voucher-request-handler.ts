/**
 * `POST /.well-known/brski/requestvoucher` (RFC 8995 §5.5): the registrar's CMS-signed
 * voucher-request wraps the pledge's (prior-signed-voucher-request, signed with its IDevID key).
 * The MASA checks the registrar's signature and id-kp-cmcRA, the device (registered, not void),
 * the pledge's signature with the IDevID the station registered, serial and nonce agreement,
 * proximity (the pledge saw this registrar), and ownership; then answers an RFC 8366 voucher,
 * CMS-signed with its key. Each decision about a known device is in its audit log.
 */
import { X509Certificate, sign, type KeyObject } from 'node:crypto';
import { VOUCHER_CMS_MEDIA_TYPE, VOUCHER_KEY, VOUCHER_REQUEST_KEY, VoucherCmsError, parseVoucherCms, signVoucherCms, voucherBody, voucherCmsSignatureProblem, type ParsedVoucherCms } from '../../core/voucher-cms';
import { HttpError, type HttpResponse, type RequestContext } from '../http/https-service';
import { EKU_CMC_RA } from '../pki/software-certificates';
import type { SqlDatabase } from '../storage/sql-database';
import { ServiceRepository } from '../storage/service-repository';
import { decideOwnership, registrarChain, type OwnershipPolicy } from './ownership-policy';

export interface VoucherIssuerOptions {
  db: SqlDatabase;
  signingKey: KeyObject;
  signingCertificate: Buffer;
  ownership: OwnershipPolicy;
  /** Lifetime of a nonceless voucher (RFC 8995 §2.6.1 recommends minutes). */
  noncelessLifetimeSeconds: number;
  now?: () => Date;
}

function mediaTypeOf(value: string | undefined): string {
  return (value ?? '').split(';')[0]!.trim().toLowerCase();
}

function acceptsVoucherCms(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return accept.split(',').some((part) => ['*/*', 'application/*', VOUCHER_CMS_MEDIA_TYPE].includes(mediaTypeOf(part)));
}

function parseCms(der: Buffer, what: string): ParsedVoucherCms {
  try {
    return parseVoucherCms(der);
  } catch (err) {
    throw new HttpError(400, 'MALFORMED_VOUCHER_REQUEST', `the ${what} is not a CMS voucher-request: ${err instanceof VoucherCmsError ? err.message : 'unreadable'}`);
  }
}

function hasCmcRa(cert: X509Certificate): boolean {
  return (cert.keyUsage ?? []).includes(EKU_CMC_RA);
}

function base64Field(body: Record<string, unknown>, name: string): Buffer | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new HttpError(400, 'MALFORMED_VOUCHER_REQUEST', `${name} is not base64`);
  return Buffer.from(v, 'base64');
}

export class VoucherIssuer {
  constructor(private readonly options: VoucherIssuerOptions) {}

  async handle(ctx: RequestContext): Promise<HttpResponse> {
    if (mediaTypeOf(ctx.headers['content-type']) !== VOUCHER_CMS_MEDIA_TYPE) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `send ${VOUCHER_CMS_MEDIA_TYPE}`);
    if (!acceptsVoucherCms(ctx.headers.accept)) throw new HttpError(406, 'NOT_ACCEPTABLE', `this MASA answers ${VOUCHER_CMS_MEDIA_TYPE} only`);

    const registrarCms = parseCms(ctx.body, 'registrar voucher-request');
    if (!registrarCms.signerCertificate) throw new HttpError(400, 'MALFORMED_VOUCHER_REQUEST', 'the registrar voucher-request carries no signer certificate');
    const signatureProblem = voucherCmsSignatureProblem(registrarCms, registrarCms.signerCertificate);
    if (signatureProblem) throw new HttpError(403, 'REGISTRAR_SIGNATURE_INVALID', `registrar voucher-request: ${signatureProblem}`);
    const registrar = new X509Certificate(registrarCms.signerCertificate);
    const request = voucherBody(registrarCms, VOUCHER_REQUEST_KEY);
    if (!request) throw new HttpError(400, 'MALFORMED_VOUCHER_REQUEST', `the registrar voucher-request has no ${VOUCHER_REQUEST_KEY} object`);
    const serial = request['serial-number'];
    if (typeof serial !== 'string' || serial === '') throw new HttpError(400, 'MALFORMED_VOUCHER_REQUEST', 'the registrar voucher-request has no serial-number');
    const prior = base64Field(request, 'prior-signed-voucher-request');
    if (!prior) throw new HttpError(400, 'MALFORMED_VOUCHER_REQUEST', 'the registrar voucher-request has no prior-signed-voucher-request');
    const registrarNonce = base64Field(request, 'nonce');
    const idevidIssuer = request['idevid-issuer'];
    const pledgeCms = parseCms(prior, 'prior-signed-voucher-request');
    const carried = registrarCms.certificates.map((d) => new X509Certificate(d));
    const now = (this.options.now ?? (() => new Date()))();
    const at = now.toISOString();

    const outcome = await this.options.db.transaction(async (tx) => {
      const repo = new ServiceRepository(tx);
      const device = await repo.device(serial);
      if (!device) return { refused: new HttpError(404, 'DEVICE_UNKNOWN', `no device ${serial} is registered with this MASA`) };
      const refuse = async (status: number, code: string, reason: string) => {
        await repo.appendAudit(serial, 'voucher-refused', { reason, code, registrar: registrar.subject.replace(/\n/g, ', ') }, at);
        return { refused: new HttpError(status, code, reason) };
      };
      if (device.status === 'void') return refuse(403, 'DEVICE_VOID', `${serial} is void${device.payload.voidReason ? ` (${device.payload.voidReason})` : ''}: no voucher`);
      if (!hasCmcRa(registrar)) return refuse(403, 'REGISTRAR_NOT_RA', 'the registrar certificate lacks the id-kp-cmcRA extended key usage');

      const idevid = Buffer.from(device.payload.idevid, 'base64');
      const pledgeSigner = pledgeCms.signerCertificate;
      if (!pledgeSigner || !pledgeSigner.equals(idevid)) return refuse(403, 'PLEDGE_NOT_REGISTERED_IDEVID', 'the pledge voucher-request is not signed with the IDevID registered for this serial');
      const pledgeProblem = voucherCmsSignatureProblem(pledgeCms, pledgeSigner);
      if (pledgeProblem) return refuse(403, 'PLEDGE_SIGNATURE_INVALID', `pledge voucher-request: ${pledgeProblem}`);
      const pledge = voucherBody(pledgeCms, VOUCHER_REQUEST_KEY);
      if (!pledge) return refuse(400, 'MALFORMED_VOUCHER_REQUEST', `the pledge voucher-request has no ${VOUCHER_REQUEST_KEY} object`);
      if (pledge['serial-number'] !== serial) return refuse(403, 'SERIAL_MISMATCH', 'the pledge and registrar voucher-requests name different serial numbers');
      let pledgeNonce: Buffer | undefined;
      let proximity: Buffer | undefined;
      try {
        pledgeNonce = base64Field(pledge, 'nonce');
        proximity = base64Field(pledge, 'proximity-registrar-cert');
      } catch (err) {
        return refuse(400, 'MALFORMED_VOUCHER_REQUEST', `pledge voucher-request: ${(err as Error).message}`);
      }
      if ((pledgeNonce === undefined) !== (registrarNonce === undefined) || (pledgeNonce && registrarNonce && !pledgeNonce.equals(registrarNonce))) {
        return refuse(403, 'NONCE_MISMATCH', 'the registrar voucher-request does not carry the pledge nonce');
      }
      if (!proximity || !proximity.equals(registrar.raw)) return refuse(403, 'PROXIMITY_MISMATCH', 'the pledge did not see this registrar (its proximity-registrar-cert is another certificate)');

      const decision = decideOwnership(this.options.ownership, device, registrarChain(registrar, carried), await repo.ownerBinding(serial));
      if (!decision.allowed) return refuse(403, 'OWNER_NOT_ALLOWED', decision.reason);
      if (decision.bind) {
        await repo.bindOwner(serial, decision.domainSha256, at);
        await repo.appendAudit(serial, 'owner-bound', { domainSha256: decision.domainSha256, mode: 'trust-on-first-use' }, at);
      }
      const voucher: Record<string, unknown> = {
        'created-on': at,
        assertion: 'proximity',
        'serial-number': serial,
        ...(typeof idevidIssuer === 'string' ? { 'idevid-issuer': idevidIssuer } : {}),
        'pinned-domain-cert': decision.pinnedDomainCert.toString('base64'),
        'domain-cert-revocation-checks': false,
      };
      if (pledgeNonce) voucher.nonce = pledgeNonce.toString('base64');
      else voucher['expires-on'] = new Date(now.getTime() + this.options.noncelessLifetimeSeconds * 1000).toISOString();
      const cms = signVoucherCms({ [VOUCHER_KEY]: voucher }, {
        certificates: [this.options.signingCertificate],
        sign: (data) => sign('sha256', data, { key: this.options.signingKey, dsaEncoding: 'der' }),
        signingTime: now,
      });
      await repo.appendAudit(serial, 'voucher-issued', { assertion: 'proximity', domainSha256: decision.domainSha256, nonce: pledgeNonce !== undefined, registrar: registrar.subject.replace(/\n/g, ', ') }, at);
      return { voucher: cms };
    }, [serial]);
    if ('refused' in outcome) throw outcome.refused;
    return { status: 200, contentType: VOUCHER_CMS_MEDIA_TYPE, body: outcome.voucher };
  }
}
