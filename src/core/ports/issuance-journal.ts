/**
 * Where the issuer records each issuance, so that no certificate exists without a record
 * (implemented by manufacturer-db's SqliteRecordStore).
 *
 * The order the issuer keeps (docs/idevid-profile.md §Journal):
 *   1. findDeviceByPublicKey: a key already certified for another device is refused
 *      (CSR_KEY_ALREADY_CERTIFIED: a cloned or broken device);
 *   2. recordIntent: durable BEFORE the HSM signs, so a crash between signing and recording
 *      leaves a trace (resolved at the next start: the device is failed with
 *      ISSUANCE_INTERRUPTED, disposition rework);
 *   3. sign, re-parse, lint;
 *   4. recordIssued: durable before the certificate leaves the issuer.
 */
export interface IssuanceIntent {
  certificateSerialHex: string;
  deviceSerial: string;
  workOrderId: string;
  publicKeySha256Hex: string;
  at: Date;
}

export interface IssuedCertificateEntry {
  certificateSerialHex: string;
  deviceSerial: string;
  workOrderId: string;
  certificateDer: Buffer;
  publicKeySha256Hex: string;
  issuedAt: Date;
}

export interface IssuanceJournal {
  /**
   * Durable when it returns (or when its promise resolves: a group-commit journal batches
   * fsyncs); throws or rejects when the entry cannot be recorded.
   */
  recordIssued(entry: IssuedCertificateEntry): void | Promise<void>;
  /**
   * Durable when it returns or resolves; throws or rejects (and nothing is signed) when the
   * intent cannot be recorded, e.g. the device is not waiting for a certificate.
   */
  recordIntent(intent: IssuanceIntent): void | Promise<void>;
  /**
   * The serial of a device that holds `publicKeySha256Hex` (SHA-256 of the DER SPKI, hex) in an
   * active certificate or a pending issuance, if any.
   */
  findDeviceByPublicKey(publicKeySha256Hex: string): string | undefined;
}
