/**
 * Issues IDevIDs: refuses a key already certified for another device, applies the product's
 * IdevidProfile to a checked public key, records the intent, signs through the HSM Signer,
 * verifies the signature, lints the result against the profile, and records the certificate in
 * the IssuanceJournal before returning it, so that no certificate leaves the issuer without a
 * durable record (docs/idevid-profile.md).
 *
 * The TBSCertificate comes from the DER fast path (fast-tbs.ts, per-profile templates) whenever
 * it handles the input, otherwise from the general builder (x509-builder.ts, the reference);
 * both give the same bytes (test/unit/hsm/fast-issuer.property.test.ts). The journal's record
 * methods may return a promise (GroupCommitJournal): the issuer awaits it, so signing waits for
 * the intent's commit and the certificate is returned only after its row's commit.
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
import { FastTbsTemplate, assembleCertificate } from './fast-tbs';
import { InProcessSignatureChecker, type SignatureChecker, type SignatureKeyRef, type SignatureVerdict } from './signature-checker';
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
  /** Build every certificate with the general library (the reference) instead of the DER fast path. */
  generalBuilderOnly?: boolean;
  /**
   * Where the fast path checks each HSM signature against the CA key before the certificate is
   * released (a worker thread shared by the issuances in flight: signature-checker.ts); default
   * in process. The check is never skipped.
   */
  signatureChecker?: SignatureChecker;
}

export class IdevidIssuer {
  private readonly issuerName;
  private readonly issuerKeyId: Buffer;
  private readonly now: () => Date;
  private readonly newSerial: () => Buffer;
  private readonly issuerNameDer: Buffer;
  /** Per-profile DER templates of the fast path (fast-tbs.ts); null = the profile needs the general builder. */
  private readonly templates = new WeakMap<IdevidProfile, FastTbsTemplate | null>();
  /** Use the general builder for every certificate (tests, comparisons). */
  private readonly generalOnly: boolean;
  private readonly checker: SignatureChecker;
  private readonly caKeyRef: SignatureKeyRef;

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
    this.issuerNameDer = Buffer.from(AsnConvert.serialize(this.issuerName));
    this.generalOnly = options.generalBuilderOnly ?? false;
    this.checker = options.signatureChecker ?? new InProcessSignatureChecker();
    this.caKeyRef = this.checker.registerKey(caSpki);
  }

  private templateFor(profile: IdevidProfile): FastTbsTemplate | undefined {
    if (this.generalOnly) return undefined;
    let t = this.templates.get(profile);
    if (t === undefined) {
      try {
        t = new FastTbsTemplate(profile, this.issuerNameDer, this.issuerKeyId);
      } catch {
        t = null;
      }
      this.templates.set(profile, t);
    }
    return t ?? undefined;
  }

  async issue(req: IssueRequest): Promise<IssuedIdevid> {
    const publicKeySha256Hex = createHash('sha256').update(req.spki).digest('hex');
    // A key certified for another device means a cloned or broken device (or a replayed CSR).
    const holder = this.journal.findDeviceByPublicKey(publicKeySha256Hex);
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
    let params: CertificateParams | undefined;
    let tbs: Buffer | undefined;
    try {
      const notAfter = idevidNotAfter(req.profile, notBefore);
      tbs = this.templateFor(req.profile)?.encode({ serialNumber, notBefore, notAfter, spki: req.spki, serial: req.serial, model: req.model });
      if (!tbs) {
        params = {
          serialNumber,
          issuer: this.issuerName,
          subject: idevidSubject(req.profile, { serial: req.serial, model: req.model }),
          notBefore,
          notAfter,
          subjectPublicKeySpki: req.spki,
          extensions: idevidExtensions(req.profile, { spki: req.spki, issuerKeyId: this.issuerKeyId, serial: req.serial }),
        };
      }
    } catch (err) {
      throw asStationError(err, 'CA_ISSUE_FAILED', 'issue');
    }
    // Durable before the HSM signs: a crash from here to recordIssued leaves a pending intent.
    // A group-committing journal returns a promise that settles once the row's transaction has
    // committed; a synchronous one returns when it is durable. Either way nothing is signed first.
    await this.journal.recordIntent({ certificateSerialHex, deviceSerial: req.serial, workOrderId: req.workOrderId, publicKeySha256Hex, at: notBefore });
    let der: Buffer;
    let signatureCheck: Promise<SignatureVerdict> | undefined;
    try {
      if (tbs) {
        // The fast path's signature is checked over exactly the TBS bytes that were signed, with
        // the CA public key: the assembly around them is three fixed TLVs, so this is the
        // general path's check (parse and verify the certificate) without the parse. The check
        // runs while the certificate is linted; nothing is released before both pass.
        const signature = await this.signer.sign(tbs);
        signatureCheck = this.checker.check({ key: this.caKeyRef, data: tbs, signature });
        der = assembleCertificate(tbs, signature);
      } else {
        der = await buildCertificate(params!, this.signer);
      }
    } catch (err) {
      throw asStationError(err, 'CA_ISSUE_FAILED', 'issue');
    }
    const faults = lintFaults(lintIdevid(der, req.profile, { model: req.model }));
    if (signatureCheck && (await signatureCheck) !== 'valid') {
      throw new CaError('CA_SIGNATURE_CHECK_FAILED', 'A certificate the HSM just signed does not verify with the CA public key; the HSM key and the CA certificate do not match. It was not recorded or released.', {
        stage: 'issue',
        details: { serial: req.serial },
      });
    }
    if (faults.length > 0) {
      throw new CaError('CA_PROFILE_VIOLATION', `The certificate just signed for ${req.serial} breaks the profile: ${faults.map((f) => `${f.code} (${f.message})`).join('; ')}. It was not recorded or released.`, {
        stage: 'issue',
        details: { codes: faults.map((f) => f.code).join(',') },
      });
    }
    // The certificate leaves only after the transaction holding its row has committed.
    await this.journal.recordIssued({
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
