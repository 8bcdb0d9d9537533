/**
 * Issues IDevIDs: applies the product's IdevidProfile to a checked public key, signs through
 * the HSM Signer, re-parses and verifies, and records the certificate in the IssuanceJournal
 * before returning it, so that no certificate leaves the issuer without a durable record.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import type { IdevidProfile } from '../../core/config';
import { CaError, asStationError } from '../../core/errors';
import type { IssuanceJournal } from '../../core/ports/issuance-journal';
import type { Signer } from '../../core/ports/signer';
import { idevidExtensions, idevidNotAfter, idevidSubject } from './idevid-profile';
import { buildCertificate, keyIdentifierOf, randomCertificateSerial } from './x509-builder';

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

export class IdevidIssuer {
  private readonly issuerName;
  private readonly issuerKeyId: Buffer;

  constructor(
    private readonly signer: Signer,
    /** The issuing CA certificate first, then the root. */
    readonly chain: readonly Buffer[],
    private readonly journal: IssuanceJournal,
  ) {
    const ca = AsnConvert.parse(chain[0]!, Certificate);
    this.issuerName = ca.tbsCertificate.subject;
    const caSpki = Buffer.from(AsnConvert.serialize(ca.tbsCertificate.subjectPublicKeyInfo));
    if (!caSpki.equals(signer.publicKeySpki)) {
      throw new CaError('CA_KEY_MISMATCH', 'The issuing CA certificate does not belong to the HSM key configured to sign IDevIDs.');
    }
    this.issuerKeyId = keyIdentifierOf(caSpki);
  }

  async issue(req: IssueRequest): Promise<IssuedIdevid> {
    const serialNumber = randomCertificateSerial();
    const notBefore = new Date();
    let der: Buffer;
    try {
      der = await buildCertificate(
        {
          serialNumber,
          issuer: this.issuerName,
          subject: idevidSubject(req.profile, { serial: req.serial, model: req.model }),
          notBefore,
          notAfter: idevidNotAfter(req.profile, notBefore),
          subjectPublicKeySpki: req.spki,
          extensions: idevidExtensions(req.profile, { spki: req.spki, issuerKeyId: this.issuerKeyId, serial: req.serial }),
        },
        this.signer,
      );
    } catch (err) {
      throw asStationError(err, 'CA_ISSUE_FAILED', 'issue');
    }
    const certificateSerialHex = serialNumber.toString('hex');
    this.journal.recordIssued({
      certificateSerialHex,
      deviceSerial: req.serial,
      workOrderId: req.workOrderId,
      certificateDer: der,
      publicKeySha256Hex: createHash('sha256').update(req.spki).digest('hex'),
      issuedAt: notBefore,
    });
    return { certificateDer: der, certificateSerialHex, chain: this.chain };
  }
}
