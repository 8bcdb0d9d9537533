/**
 * Method 1, on-device keygen (SP 1800-36B H.1.1): the device makes its key pair with its own
 * RNG (no secure element), builds and signs a CSR; the station has it signed by the IDevID CA
 * and installs the certificate. The manufacturer DB learns the credential from the device's
 * report (through the station): in the verify stage the certificate, public key and DPP URI
 * the device reports are cross-checked with the issuance journal before anything is recorded.
 *
 * Weak point (SP 1800-36B): the method trusts the device RNG. The station cannot measure a
 * device's entropy, but it refuses a key already certified for another device
 * (CSR_KEY_ALREADY_CERTIFIED, checked against the journal before issuing) and a report that
 * disagrees with the journal (REPORT_MISMATCH_JOURNAL). See docs/security-model.md.
 */
import { X509Certificate } from 'node:crypto';
import { DppUri } from '../../core/dpp-uri';
import { compressedP256Spki, p256PointFromSpki } from '../../core/ec-public-key';
import { DeviceError } from '../../core/errors';
import { KeyLocation } from '../../device/protocol/commands';
import type { DeviceIdentity } from '../../device/device-client';
import type { DeviceReportContext, DeviceReportRecord, KeyMaterial, KeyMethod, ObtainKeyContext, Support } from '../key-method';

export const REPORT_MISMATCH_JOURNAL = 'REPORT_MISMATCH_JOURNAL';

function mismatch(ctx: DeviceReportContext, field: string, what: string): DeviceError {
  return new DeviceError(
    REPORT_MISMATCH_JOURNAL,
    `The device on ${ctx.client.port} (serial ${ctx.serial}) reports ${what}: its report disagrees with the issuance journal, so it is not recorded. Set it aside for rework.`,
    { stage: 'verify', details: { serial: ctx.serial, field } },
  );
}

/** The certificate's key as DER SPKI (OpenSSL's parser: the asn1 schema one cost ~1.2 ms per device on the line). */
function certificateSpki(der: Buffer): Buffer {
  return new X509Certificate(der).publicKey.export({ format: 'der', type: 'spki' });
}

/** The uncompressed point of a P-256 SPKI, or undefined when it is not one. */
function pointOf(spki: Uint8Array): Buffer | undefined {
  try {
    return p256PointFromSpki(spki);
  } catch {
    return undefined;
  }
}

export class OnDeviceKeygenMethod implements KeyMethod {
  readonly id = 'on-device-keygen' as const;
  readonly keyOrigin = 'device-rng' as const;

  supports(identity: DeviceIdentity): Support {
    if (!identity.capabilities.deviceKeygen) return { ok: false, reason: 'the device cannot generate a key with its own RNG (no DEVICE_KEYGEN capability)' };
    return { ok: true };
  }

  async obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial> {
    const reportedSpki = await ctx.client.generateKey(KeyLocation.DEVICE);
    ctx.signal.throwIfAborted();
    const csrDer = await ctx.client.getCsr(ctx.serial);
    return { kind: 'csr', reportedSpki, csrDer };
  }

  /**
   * The device's report against the journal: the leaf it reports must be the certificate the
   * journal holds for its serial, its current public key (GET_PUBLIC_KEY) and its DPP URI's K:
   * key must be that certificate's key.
   */
  async crossCheck(ctx: DeviceReportContext): Promise<DeviceReportRecord> {
    const journal = ctx.journalCertificate;
    if (!journal) throw mismatch(ctx, 'journal', 'a certificate for a serial the issuance journal holds no active certificate for');
    const leaf = ctx.reportedChain[0];
    if (!leaf) throw mismatch(ctx, 'certificate', 'no IDevID certificate');
    if (!leaf.equals(journal)) throw mismatch(ctx, 'certificate', 'an IDevID certificate other than the one the journal holds for its serial');

    ctx.signal.throwIfAborted();
    // asked first: the certificate is parsed while the device answers
    const reported = ctx.client.getPublicKey();
    let certSpki: Buffer;
    try {
      certSpki = certificateSpki(journal);
    } catch (err) {
      await reported.catch(() => undefined); // the link is idle before the device is given up
      throw err;
    }
    const certPoint = pointOf(certSpki);
    const devicePoint = pointOf(await reported);
    if (!certPoint || !devicePoint || !devicePoint.equals(certPoint)) {
      throw mismatch(ctx, 'public-key', 'a public key (GET_PUBLIC_KEY) other than the key of the certificate the journal holds');
    }

    let dppKey: Buffer;
    try {
      dppKey = DppUri.parse(ctx.reportedDppUri).publicKeySpki;
    } catch {
      throw mismatch(ctx, 'dpp-uri', 'a DPP URI that does not parse');
    }
    if (!dppKey.equals(compressedP256Spki(certSpki))) {
      throw mismatch(ctx, 'dpp-uri', 'a DPP URI over a key other than the key of the certificate the journal holds');
    }
    return { certificateDer: leaf, publicKeySpki: certSpki, dppUri: ctx.reportedDppUri };
  }
}
