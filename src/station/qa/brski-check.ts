/**
 * The BRSKI confirmation (docs/brski.md): a provisioned device acts as a BRSKI pledge. It builds
 * a pledge voucher-request signed with its birth key; the QA registrar wraps it and asks the
 * MASA; the device verifies the MASA's voucher with the trust anchor installed at the factory.
 * `verified` means the whole chain a future owner relies on works for this device: its record
 * reached the MASA, its IDevID signs, and its anchor accepts the MASA's voucher.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, DeviceError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { VOUCHER_REQUEST_KEY, VoucherCmsError, parseVoucherCms, voucherBody, voucherCmsSignatureProblem } from '../../core/voucher-cms';
import type { DeviceClient } from '../../device/device-client';
import { buildRegistrarVoucherRequest, postVoucherRequest, randomNonce, type QaRegistrar } from './qa-registrar';

export interface BrskiResult {
  voucher: 'verified' | 'rejected';
  reason?: string;
  /** Absolute path of the voucher the MASA issued (DER CMS), when it issued one. */
  voucherPath?: string;
  /** Absolute path of the pledge voucher-request the device signed. */
  pledgeRequestPath?: string;
}

export interface BrskiCheckInput {
  client: DeviceClient;
  serial: string;
  masaUrl: string;
  /** PEM of the CA of the MASA's TLS certificate. */
  serverCa: Buffer;
  registrar: QaRegistrar;
  /** Where the voucher files go (`<outDir>/brski/`). */
  outDir: string;
  log?: Logger;
}

function fileSafe(serial: string): string {
  return serial.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function masaMessage(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') return parsed.error.message;
  } catch {
    /* not JSON */
  }
  return body.toString('utf8').slice(0, 200) || '(no body)';
}

export async function runBrskiCheck(input: BrskiCheckInput): Promise<BrskiResult> {
  const { client, serial, registrar } = input;
  const dir = join(input.outDir, 'brski');
  mkdirSync(dir, { recursive: true });
  const nonce = randomNonce();
  const pledgeRequest = await client.buildVoucherRequest({ nonce, registrarCertificate: registrar.certificate, createdOn: new Date() });
  const pledgeRequestPath = join(dir, `${fileSafe(serial)}-pledge-voucher-request.cms`);
  writeFileSync(pledgeRequestPath, pledgeRequest);

  // What a registrar checks before it bothers the MASA: a CMS signed by the IDevID, for this serial.
  let idevid: Buffer;
  try {
    const pledge = parseVoucherCms(pledgeRequest);
    if (!pledge.signerCertificate) return { voucher: 'rejected', reason: 'the pledge voucher-request carries no IDevID', pledgeRequestPath };
    const problem = voucherCmsSignatureProblem(pledge, pledge.signerCertificate);
    if (problem) return { voucher: 'rejected', reason: `pledge voucher-request: ${problem}`, pledgeRequestPath };
    const claimed = voucherBody(pledge, VOUCHER_REQUEST_KEY)?.['serial-number'];
    if (claimed !== serial) {
      throw new ConfigError('QA_WRONG_DEVICE', `The device on ${client.port} is ${typeof claimed === 'string' ? claimed : 'a device without a serial'}, not ${serial}.`);
    }
    idevid = pledge.signerCertificate;
  } catch (err) {
    if (err instanceof VoucherCmsError) return { voucher: 'rejected', reason: `the pledge voucher-request is not CMS: ${err.message}`, pledgeRequestPath };
    throw err;
  }

  const body = buildRegistrarVoucherRequest({ registrar, pledgeRequest, serial, nonce, idevid });
  let answer;
  try {
    answer = await postVoucherRequest({ masaUrl: input.masaUrl, serverCa: input.serverCa, registrar, body });
  } catch (err) {
    throw new ConfigError('MASA_UNREACHABLE', `The MASA at ${input.masaUrl} could not be reached: ${(err as Error).message}.`);
  }
  input.log?.info({ serial, status: answer.status }, 'MASA answered the voucher-request');
  if (answer.status !== 200) return { voucher: 'rejected', reason: `MASA answered ${answer.status}: ${masaMessage(answer.body)}`, pledgeRequestPath };

  const voucherPath = join(dir, `${fileSafe(serial)}-voucher.cms`);
  writeFileSync(voucherPath, answer.body);
  try {
    await client.verifyVoucher(answer.body);
  } catch (err) {
    if (err instanceof DeviceError && err.code === 'DEVICE_VERIFY_FAILED') return { voucher: 'rejected', reason: `the device refused the voucher: ${err.message}`, voucherPath, pledgeRequestPath };
    throw err;
  }
  return { voucher: 'verified', voucherPath, pledgeRequestPath };
}
