/**
 * Method 5's seed vault, as the station's other parts see it (implemented in the HSM's PKCS#11
 * worker: src/hsm/seeds/pkcs11-seed-vault.ts). Seeds never cross this port in clear: a vendor
 * seed file goes in encrypted, seeds come out sealed by the HSM, public keys come out clear.
 */

/** One chip of an opened seed file: its seed sealed at rest by the HSM, and its derived public key's hash. */
export interface SealedSeed {
  /** Lowercase hex. */
  chipId: string;
  /** The seed encrypted under the HSM's vault key (AES-256-GCM, made inside the HSM). */
  sealed: Buffer;
  /** SHA-256 (lowercase hex) of the DER SPKI of the birth key this seed derives for this chip. */
  publicKeySha256: string;
}

export interface OpenedSeedFile {
  /** The seed-import key the file was encrypted to (SHA-256 of its SPKI, hex). */
  recipientKeyId: string;
  vendor: string;
  lot: string;
  createdAt: string;
  chips: SealedSeed[];
}

export interface SeedVault {
  /** DER SubjectPublicKeyInfo of the station's seed-import key (made on first use): what the chip vendor encrypts to. */
  recipientPublicKey(): Promise<Buffer>;
  /**
   * Decrypt a vendor seed file and re-seal each seed at rest. Throws ConfigError
   * SEED_FILE_MALFORMED, SEED_FILE_WRONG_RECIPIENT or SEED_FILE_DECRYPT_FAILED.
   */
  openSeedFile(fileBytes: Buffer): Promise<OpenedSeedFile>;
  /** The DER SPKI of the birth key a sealed seed derives for its chip (the seed is opened only inside the HSM's worker). */
  derivePublicKey(chipId: string, sealed: Buffer): Promise<Buffer>;
}
