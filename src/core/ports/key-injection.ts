/**
 * The HSM side of method 3 (factory-injected key), as the method and `station prepare` see it
 * (implemented by hsm/keys/HsmKeyInjector over the PKCS#11 worker). Every private key stays
 * inside the HSM or wrapped: what crosses this port is public keys and wrapped blobs only
 * (contracts.md §7, docs/crypto-constructions.md §2).
 */

/** A device key pair made in the HSM, its private half wrapped under the station's KEK. */
export interface WrappedDeviceKey {
  /** DER SubjectPublicKeyInfo (P-256, uncompressed point). */
  spki: Buffer;
  /** CKM_AES_KEY_WRAP_PAD of the private key under the KEK (PKCS#8 + SoftHSM's zero padding). */
  wrappedKey: Buffer;
}

/** What INSTALL_WRAPPED_KEY carries: the HSM's ephemeral ECDH public key and the transport blob. */
export interface TransportWrappedKey {
  /** DER SPKI of the HSM's ephemeral P-256 key (the device's PEER_PUBLIC_KEY). */
  hsmPublicKey: Buffer;
  /** The device key wrapped under HKDF(ECDH(ephemeral, transport), "inject-v1" || serial). */
  wrappedKey: Buffer;
}

export interface KeyInjector {
  /** The label of the KEK (an AES-256 token key) the prepared keys are wrapped under. */
  readonly kekLabel: string;
  /** Makes `count` device key pairs in the HSM (session objects) and returns them wrapped under the KEK. */
  generateWrapped(count: number): Promise<WrappedDeviceKey[]>;
  /**
   * Unwraps `kekWrappedKey` inside the HSM and re-wraps it for the device's transport key and
   * serial (contracts.md §7). Nothing of the private key is returned in clear.
   */
  wrapForTransport(input: { kekWrappedKey: Buffer; transportSpki: Buffer; serial: string }): Promise<TransportWrappedKey>;
}
