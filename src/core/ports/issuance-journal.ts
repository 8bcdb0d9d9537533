/**
 * Where the issuer records each certificate before it leaves the issuer, so that no
 * certificate exists without a record (implemented by manufacturer-db).
 */
export interface IssuedCertificateEntry {
  certificateSerialHex: string;
  deviceSerial: string;
  workOrderId: string;
  certificateDer: Buffer;
  publicKeySha256Hex: string;
  issuedAt: Date;
}

export interface IssuanceJournal {
  /** Durable when it returns; throws when the entry cannot be recorded. */
  recordIssued(entry: IssuedCertificateEntry): void;
}
