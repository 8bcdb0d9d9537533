/**
 * Method 4 (SE pre-provisioned): the imported, verified SE manifest entries and the binding of
 * each SE to the device serial it went into. Implemented by manufacturer-db (SeManifestStore);
 * the station hands it to the method through MethodServices.
 */

export interface SeManifestEntryRecord {
  /** Lowercase hex, from the signed manifest payload. */
  uniqueId: string;
  /** The SE serial as the device reports it (lowercase hex). */
  seSerial: string;
  /** Names the entry and the manifest file it was first imported from: `<uniqueId>@<sha256 prefix>`. */
  entryId: string;
  /** DER SPKI of the SE key the vendor certified (uncompressed P-256). */
  publicKeySpki: Buffer;
  /** The vendor's certificate of the SE key, DER. */
  certificateDer: Buffer;
  /** Its issuers up to and including the vendor CA, DER. */
  chainDer: Buffer[];
  /** The device serial the SE is bound to, or null. */
  boundSerial: string | null;
}

export interface SeManifestRegistry {
  findBySeSerial(seSerial: string): SeManifestEntryRecord | undefined;
  /**
   * Bind the SE to a device serial, atomically: refused with SE_ALREADY_BOUND when another
   * device that has not failed holds it (a failed device's SE can go to its reworked successor).
   * Binding the same pair again is a no-op. Audited.
   */
  bind(input: { seSerial: string; deviceSerial: string }): void;
}
