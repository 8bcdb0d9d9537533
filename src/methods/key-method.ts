/**
 * A birth-credential method (SP 1800-36B H.1.1) as a strategy: what it needs from the device,
 * how it obtains the key material, and where the key came from. Methods get their device
 * client from the station; they never open a port or load a PKCS#11 module.
 */
import type { KeyOrigin, MethodId } from '../core/method-id';
import type { DeviceAttachment } from '../core/ports/prepared-keys';
import type { DeviceClient, DeviceIdentity } from '../device/device-client';

export type Support = { ok: true } | { ok: false; reason: string };

/**
 * What a method learnt about the device's key besides the key itself, for the record and the
 * report (contracts.md §3's method-specific fields).
 */
export interface MethodFacts {
  /** SE serial (methods 2 and 4, when the device has an SE). */
  seSerial?: string;
  /** The SE vendor's certificate of the SE key (method 4), DER, and its chain to the vendor CA. */
  seCertificateDer?: Buffer;
  seChainDer?: Buffer[];
  /** The manifest entry that vouched for the SE (method 4). */
  manifestEntryId?: string;
  /** The chip id the seed belongs to (method 5). */
  chipId?: string;
  /** The prepared key the device took (method 3). */
  preparedKeyId?: string;
}

/**
 * The key to certify, in one of three shapes:
 * - `csr`: the device (or its SE) holds the key and signed a PKCS#10 request over it (methods
 *   1, 2 and 4). The station checks the request (csr-check) and that it names the reported key.
 * - `station-key`: the station knows the public key from its own side (method 3 at the station:
 *   the HSM made it; method 5: derived from the imported seed). No request exists; proof of
 *   possession is the verify stage's challenge. The station still refuses a key it certified
 *   before.
 * - `pre-issued`: the certificate was issued ahead of the run (methods 3 and 5, `station prepare`) and
 *   recorded then; the issue stage only hands it on.
 * - `vendor-certified`: the key's certificate was issued by another party's CA before the device
 *   existed, and the product keeps it as the device's IDevID instead of issuing ours (method 4
 *   with `sePreprovisioned.issueIdevid: false`: the SE vendor's certificate). Nothing is signed;
 *   the issue stage records the certificate in the manufacturer database as the device's
 *   (refusing a key already certified for another device) and the install stage installs it with
 *   `chain` (the vendor's intermediates, then its CA). `issuer` names the CA for the audit trail.
 *   The method has checked that the certificate chains to a configured vendor CA and is valid now;
 *   our IDevID profile does not apply to it (its subject is the vendor's). `csrDer`, when the
 *   device signed a request over the key, is checked as for `csr` (signature = possession before
 *   anything is recorded, subject serialNumber = the assigned serial) and then not used: it is
 *   how a protocol v1 device learns the serial its challenge must name.
 */
export type KeyMaterial =
  | { kind: 'csr'; reportedSpki: Buffer; csrDer: Buffer; facts?: MethodFacts }
  | { kind: 'station-key'; spki: Buffer; facts?: MethodFacts }
  | { kind: 'pre-issued'; spki: Buffer; certificateDer: Buffer; chain: Buffer[]; facts?: MethodFacts }
  | { kind: 'vendor-certified'; spki: Buffer; certificateDer: Buffer; chain: Buffer[]; issuer: string; csrDer?: Buffer; facts?: MethodFacts };

export interface ObtainKeyContext {
  client: DeviceClient;
  identity: DeviceIdentity;
  serial: string;
  /** The work order being run (methods that prepared material per work order look it up). */
  workOrderId: string;
  signal: AbortSignal;
}

/**
 * The assign stage for methods that own it (method 3 with prepared keys: the device takes the
 * next prepared serial, or the one prepared for its fixed serial). `allocate` is the default
 * assignment (the next serial of the work order's block), for a method that falls back to it.
 */
export interface AssignContext {
  client: DeviceClient;
  identity: DeviceIdentity;
  runId: string;
  workOrderId: string;
  port: string;
  signal: AbortSignal;
  allocate: () => string | Promise<string>;
}

/** The device a claim (a prepared key, a prepared certificate) is attached to, from the assign stage. */
export function deviceAttachment(ctx: AssignContext): DeviceAttachment {
  return {
    runId: ctx.runId,
    port: ctx.port,
    hardwareId: ctx.identity.hardwareId,
    model: ctx.identity.model,
    firmwareVersion: ctx.identity.firmwareVersion,
    macs: ctx.identity.macs,
  };
}

/** After the certificate exists and before the install stage writes it (method 3 injects here, method 5 compares the derived key). */
export interface BeforeInstallContext {
  client: DeviceClient;
  identity: DeviceIdentity;
  serial: string;
  workOrderId: string;
  certificateDer: Buffer;
  /** DER SPKI of the certified key. */
  spki: Buffer;
  facts: MethodFacts;
  signal: AbortSignal;
}

/** After the record stage committed the device's record (method 3 deletes the wrapped blob here). */
export interface AfterRecordContext {
  serial: string;
  workOrderId: string;
  facts: MethodFacts;
}

/** A device that fails after obtain-key (method 3 keeps the key reserved or burns it). */
export interface FailureContext {
  serial: string;
  workOrderId: string;
  facts: MethodFacts;
  stage: string | null;
  code: string;
}

/**
 * What the verify stage hands a method that records from the device's report (method 1):
 * what the device reports about itself, and what the issuance journal holds for its serial.
 */
export interface DeviceReportContext {
  client: DeviceClient;
  serial: string;
  /** The IDevID chain the device reports (READ_ITEM IDEVID_CHAIN), leaf first, DER. */
  reportedChain: readonly Buffer[];
  /** The DPP URI the device reports (READ_ITEM DPP_URI). */
  reportedDppUri: string;
  /** The active certificate the issuance journal holds for this serial (DER), or null. */
  journalCertificate: Buffer | null;
  signal: AbortSignal;
}

/** The record the station writes from a device's report, once it agrees with the journal. */
export interface DeviceReportRecord {
  certificateDer: Buffer;
  /** DER SPKI of the certified key (as in the certificate). */
  publicKeySpki: Buffer;
  dppUri: string;
}

export interface KeyMethod {
  readonly id: MethodId;
  readonly keyOrigin: KeyOrigin;
  supports(identity: DeviceIdentity): Support;
  obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial>;
  /**
   * Methods whose manufacturer-DB record is written from the device's report (SP 1800-36B
   * H.1.1 method 1) cross-check that report against the issuance journal in the verify stage
   * and return what to record; a mismatch throws REPORT_MISMATCH_JOURNAL. Methods without it
   * (method 2) record from the CA path directly.
   */
  crossCheck?(ctx: DeviceReportContext): Promise<DeviceReportRecord>;
  /** The assign stage, when the method owns it (see AssignContext). Default: ctx.allocate(). */
  assignSerial?(ctx: AssignContext): Promise<string>;
  beforeInstall?(ctx: BeforeInstallContext): Promise<void>;
  afterRecord?(ctx: AfterRecordContext): Promise<void>;
  /** Must not throw for a failure it cannot repair: log-and-continue is the station's job. */
  onFailure?(ctx: FailureContext): Promise<void>;
}

/**
 * What the station hands the registry so that a method can reach the parts it needs, as ports
 * from core (architecture.md: methods get their device client, key manager and issuer from the
 * station; they never open a port or load a PKCS#11 module). Each method adds the ports it uses
 * as optional fields and fails with METHOD_NOT_CONFIGURED when one is missing.
 */
export interface MethodServices {
  /** The station's id (records and audit). */
  stationId: string;
  /** Method 5: the seeds sealed by the HSM and the HSM op that derives their public keys. */
  seedVault?: import('../core/ports/seed-vault').SeedVault;
  seedStore?: import('../core/ports/seed-store').SeedStore;
  /** Method 5: certificates issued ahead for imported chips (`station prepare` on a seed-derived work order). */
  preparedSeedCertificates?: import('../core/ports/prepared-seed-certificates').PreparedSeedCertificates;
  /** Method 3: the HSM side of key injection (KEK, device keys, transport wrap). */
  keyInjector?: import('../core/ports/key-injection').KeyInjector;
  /** Method 3: prepared keys and their records. */
  preparedKeys?: import('../core/ports/prepared-keys').PreparedKeys;
  /** Method 3: keys prepared ahead (`station prepare`, the default) or made during the run. */
  injectMode?: 'prepared' | 'at-station';
  /** The IDevID chain (issuing CA, then root), DER: what a pre-issued certificate is installed with. */
  caChain?: readonly Buffer[];
  /**
   * Where the methods' hot writes on the line go (claims, a key leaving, a key or seed used): the
   * station's per-turn group commit. Default: each write its own transaction, at once.
   */
  writes?: import('../core/ports/write-group').WriteGroup;
  /** Method 4: the imported SE manifest entries and the SE-to-device bindings. */
  seManifest?: import('../core/ports/se-manifest-registry').SeManifestRegistry;
  /**
   * Method 4: the product's `sePreprovisioned.issueIdevid` (default true): issue our IDevID over
   * the SE key through a CSR the SE signs, or (false) keep the SE vendor's certificate as the IDevID.
   */
  issueSeIdevid?: boolean;
}
