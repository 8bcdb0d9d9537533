/**
 * Issues IDevIDs: refuses a key already certified for another device, applies the product's
 * IdevidProfile to a checked public key, records the intent, signs through the HSM Signer,
 * re-parses and verifies the signature, lints the result against the profile, and records the
 * certificate in the IssuanceJournal before returning it, so that no certificate leaves the
 * issuer without a durable record (docs/idevid-profile.md).
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import type { IdevidProfile } from '../../core/config';
import { CaError, asStationError } from '../../core/errors';
import type { IssuanceJournal } from '../../core/ports/issuance-journal';
import type { Signer } from '../../core/ports/signer';
import { idevidExtensions, idevidNotAfter, idevidSubject } from './idevid-profile';
import { lintFaults, lintIdevid } from './profile-lint';
import { buildCertificate, keyIdentifierOf, randomCertificateSerial, type CertificateParams } from './x509-builder';

export interface IssueRequest {
  /** DER SPKI of the device key (already checked). */
  spki: Buffer;
  serial: string;
  model: string;
  workOrderId: string;
  profile: IdevidProfile;
}

export interface IssuedIdevid {
  certificateDer: Buffer;
  certificateSerialHex: string;
  /** Issuing CA then root, DER. */
  chain: readonly Buffer[];
}

export interface IdevidIssuerOptions {
  /** notBefore of each certificate; default: the system clock. Known-answer tests fix it. */
  now?: () => Date;
  /** The certificate serial (positive DER INTEGER contents); default randomCertificateSerial. */
  certificateSerial?: () => Buffer;
}

export class IdevidIssuer {
  private readonly issuerName;
  private readonly issuerKeyId: Buffer;
  private readonly now: () => Date;
  private readonly newSerial: () => Buffer;

  constructor(
    private readonly signer: Signer,
    /** The issuing CA certificate first, then the root. */
    readonly chain: readonly Buffer[],
    private readonly journal: IssuanceJournal,
    options: IdevidIssuerOptions = {},
  ) {
    const ca = AsnConvert.parse(chain[0]!, Certificate);
    this.issuerName = ca.tbsCertificate.subject;
    const caSpki = Buffer.from(AsnConvert.serialize(ca.tbsCertificate.subjectPublicKeyInfo));
    if (!caSpki.equals(signer.publicKeySpki)) {
      throw new CaError('CA_KEY_MISMATCH', 'The issuing CA certificate does not belong to the HSM key configured to sign IDevIDs.');
    }
    this.issuerKeyId = keyIdentifierOf(caSpki);
    this.now = options.now ?? (() => new Date());
    this.newSerial = options.certificateSerial ?? randomCertificateSerial;
  }

  async issue(req: IssueRequest): Promise<IssuedIdevid> {
    const publicKeySha256Hex = createHash('sha256').update(req.spki).digest('hex');
    // A key certified for another device means a cloned or broken device (or a replayed CSR).
    const holder = this.journal.findDeviceByPublicKey?.(publicKeySha256Hex);
    if (holder !== undefined && holder !== req.serial) {
      throw new CaError(
        'CSR_KEY_ALREADY_CERTIFIED',
        `The key of device ${req.serial} is already certified for device ${holder}: a duplicate key means a cloned or broken device. Set both aside; do not ship either.`,
        { stage: 'issue', details: { serial: req.serial, otherSerial: holder, publicKeySha256: publicKeySha256Hex } },
      );
    }
    const serialNumber = this.newSerial();
    const certificateSerialHex = serialNumber.toString('hex');
    const notBefore = this.now();
    let params: CertificateParams;
    try {
      params = {
        serialNumber,
        issuer: this.issuerName,
        subject: idevidSubject(req.profile, { serial: req.serial, model: req.model }),
        notBefore,
        notAfter: idevidNotAfter(req.profile, notBefore),
        subjectPublicKeySpki: req.spki,
        extensions: idevidExtensions(req.profile, { spki: req.spki, issuerKeyId: this.issuerKeyId, serial: req.serial }),
      };
    } catch (err) {
      throw asStationError(err, 'CA_ISSUE_FAILED', 'issue');
    }
    // Durable before the HSM signs: a crash from here to recordIssued leaves a pending intent.
    this.journal.recordIntent?.({ certificateSerialHex, deviceSerial: req.serial, workOrderId: req.workOrderId, publicKeySha256Hex, at: notBefore });
    let der: Buffer;
    try {
      der = await buildCertificate(params, this.signer);
    } catch (err) {
      throw asStationError(err, 'CA_ISSUE_FAILED', 'issue');
    }
    const faults = lintFaults(lintIdevid(der, req.profile, { model: req.model }));
    if (faults.length > 0) {
      throw new CaError('CA_PROFILE_VIOLATION', `The certificate just signed for ${req.serial} breaks the profile: ${faults.map((f) => `${f.code} (${f.message})`).join('; ')}. It was not recorded or released.`, {
        stage: 'issue',
        details: { codes: faults.map((f) => f.code).join(',') },
      });
    }
    this.journal.recordIssued({
      certificateSerialHex,
      deviceSerial: req.serial,
      workOrderId: req.workOrderId,
      certificateDer: der,
      publicKeySha256Hex,
      issuedAt: notBefore,
    });
    return { certificateDer: der, certificateSerialHex, chain: this.chain };
  }
}
