/** A signing key held somewhere the caller cannot read it (an HSM, an SE). */
export interface Signer {
  /** ecdsa-with-SHA256 over P-256 is the only algorithm of this cut. */
  readonly algorithm: 'ecdsa-p256-sha256';
  /** DER SubjectPublicKeyInfo of the signing key. */
  readonly publicKeySpki: Buffer;
  /** Sign `data` (hashing is the signer's job); returns a DER ECDSA-Sig-Value. */
  sign(data: Uint8Array): Promise<Buffer>;
}
