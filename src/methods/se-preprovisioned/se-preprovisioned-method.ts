/**
 * Method 4, SE pre-provisioned (SP 1800-36B H.1.1): the key pair was made in the SE at the SE
 * vendor's factory, before the device existed, and the vendor vouches for it in a signed
 * manifest that the station imported and verified (`station import se-manifest`). The weak point
 * is trust in the SE factory; the station handles it by accepting only SEs whose manifest entry
 * verified against the configured vendor signer and CA, and whose key the SE still holds.
 *
 * At the station: read the SE serial and certificate (READ_SE_INFO), find the SE's manifest
 * entry, check that the key the SE holds is the key the manifest lists, bind the SE to the
 * device serial (atomically: an SE goes into one device), then have the SE sign a CSR over that
 * key so the manufacturer's IDevID is issued over the vendor-made key. A product with
 * `sePreprovisioned.issueIdevid: false` keeps the vendor's certificate as the device's IDevID
 * instead (SP 1800-36B method 4 lets the pre-provisioned credential be the birth credential):
 * the vendor certificate's path to the vendor CA stored at import is checked again, with every
 * certificate on it but the anchor valid now; the SE still signs a CSR (proof of possession, and
 * the device learns its serial), and the run records and installs the vendor's certificate
 * (KeyMaterial `vendor-certified`).
 *
 * A device that fails later keeps its binding as history; because its record is failed (its
 * IDevID voided), the same SE may be bound again to the serial its reworked device gets.
 */
import { X509Certificate } from 'node:crypto';
import { p256PointFromSpki, p256SpkiFromPoint } from '../../core/ec-public-key';
import { ConfigError, DeviceError } from '../../core/errors';
import type { SeManifestEntryRecord, SeManifestRegistry } from '../../core/ports/se-manifest-registry';
import { parseCertificate, pathToAnchor } from '../../core/x509-path';
import type { DeviceIdentity } from '../../device/device-client';
import type { KeyMaterial, KeyMethod, MethodServices, ObtainKeyContext, Support } from '../key-method';

/** The uncompressed P-256 SPKI of a key, or undefined when it is not one. */
function normalisedP256(spki: Buffer): Buffer | undefined {
  try {
    return p256SpkiFromPoint(p256PointFromSpki(spki));
  } catch {
    return undefined;
  }
}

function certificateSpki(der: Buffer): Buffer | undefined {
  try {
    return new X509Certificate(der).publicKey.export({ format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

export class SePreprovisionedMethod implements KeyMethod {
  readonly id = 'se-preprovisioned' as const;
  readonly keyOrigin = 'se-vendor' as const;

  constructor(
    private readonly services: MethodServices,
    /** The clock the vendor certificate's validity is checked against (tests fix it). */
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Whether the product issues our IDevID over the SE key (default) or keeps the vendor's certificate. */
  get issuesIdevid(): boolean {
    return this.services.issueSeIdevid ?? true;
  }

  supports(identity: DeviceIdentity): Support {
    if (!identity.capabilities.secureElement) return { ok: false, reason: 'the device has no secure element' };
    if (!identity.capabilities.sePreprovisioned) return { ok: false, reason: 'the device\'s secure element was not provisioned by its vendor' };
    return { ok: true };
  }

  private registry(): SeManifestRegistry {
    if (!this.services.seManifest) {
      throw new ConfigError('METHOD_NOT_CONFIGURED', 'The se-preprovisioned method needs the imported SE manifest entries (database); the station did not provide them.');
    }
    return this.services.seManifest;
  }

  async obtainKeyMaterial(ctx: ObtainKeyContext): Promise<KeyMaterial> {
    const registry = this.registry();
    const port = ctx.client.port;
    const info = await ctx.client.readSeInfo();
    const seSerial = info.seSerial.toLowerCase();
    const identified = ctx.identity.secureElement?.serial.toLowerCase();
    if (identified !== undefined && identified !== seSerial) {
      throw new DeviceError('SE_SERIAL_MISMATCH', `The device on ${port} identified its SE as ${identified} but reads SE ${seSerial}. Set it aside for rework.`, { stage: 'obtain-key' });
    }
    const entry = registry.findBySeSerial(seSerial);
    if (!entry) {
      throw new DeviceError(
        'SE_UNKNOWN',
        `The secure element ${seSerial} of the device on ${port} is in no imported SE manifest: its key is vouched for by no vendor file. Import the vendor's manifest ("station import se-manifest") or set the device aside.`,
        { stage: 'obtain-key', details: { seSerial } },
      );
    }
    ctx.signal.throwIfAborted();
    // The key the SE holds, as its certificate and as the device reports it, must be the manifest's.
    const certificateKey = certificateSpki(info.certificates[0]!);
    if (!certificateKey) throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${port} sent an SE certificate that is not a certificate.`, { stage: 'obtain-key' });
    const reportedKey = await ctx.client.getPublicKey();
    const listed = entry.publicKeySpki;
    for (const [what, key] of [['certificate', certificateKey], ['public key', reportedKey]] as const) {
      const k = normalisedP256(key);
      if (!k || !k.equals(listed)) {
        throw new DeviceError(
          'SE_KEY_MISMATCH',
          `The secure element ${seSerial} on ${port} reports a ${what} for another key than its manifest entry ${entry.entryId} lists. Set the device aside and call the supervisor (a swapped or counterfeit SE).`,
          { stage: 'obtain-key', details: { seSerial, entryId: entry.entryId } },
        );
      }
    }
    const facts = { seSerial, seCertificateDer: entry.certificateDer, seChainDer: entry.chainDer, manifestEntryId: entry.entryId };
    if (!this.issuesIdevid) {
      // checked before the SE is bound: a refused SE stays free
      const issuer = this.vendorCertificateIssuer(entry, port);
      registry.bind({ seSerial, deviceSerial: ctx.serial });
      ctx.signal.throwIfAborted();
      // Not for issuance: the SE proves it holds the key before its certificate is recorded, and
      // the device learns the serial it is provisioned as (protocol v1 has no other way to say it).
      const csrDer = await ctx.client.getCsr(ctx.serial);
      return { kind: 'vendor-certified', spki: listed, certificateDer: entry.certificateDer, chain: [...entry.chainDer], issuer, csrDer, facts };
    }
    registry.bind({ seSerial, deviceSerial: ctx.serial });
    ctx.signal.throwIfAborted();
    const csrDer = await ctx.client.getCsr(ctx.serial);
    return {
      kind: 'csr',
      // the key the station expects in the request is the manifest's, not what the device says
      reportedSpki: listed,
      csrDer,
      facts,
    };
  }

  /**
   * The vendor certificate as the device's IDevID: its stored path (the issuers up to the vendor
   * CA that was configured when the manifest was imported) must still verify link by link, and
   * every certificate on it but the anchor must be valid now. Returns the issuer's name.
   */
  private vendorCertificateIssuer(entry: SeManifestEntryRecord, port: string): string {
    const leaf = parseCertificate(entry.certificateDer);
    const chain = entry.chainDer.map((d) => parseCertificate(d));
    const anchor = chain[chain.length - 1];
    const result =
      leaf && anchor && chain.every((c) => c !== undefined)
        ? pathToAnchor(leaf, chain.slice(0, -1) as X509Certificate[], [anchor], this.now())
        : { ok: false as const, reason: 'the stored certificate or its chain cannot be read' };
    if (!result.ok) {
      throw new DeviceError(
        'SE_CERTIFICATE_INVALID',
        `The SE vendor's certificate of secure element ${entry.seSerial} (device on ${port}) cannot serve as the device's IDevID: ${result.reason}. Set the device aside; ask the vendor for a current certificate, or issue our IDevID for this product (sePreprovisioned.issueIdevid).`,
        { stage: 'obtain-key', details: { seSerial: entry.seSerial, entryId: entry.entryId } },
      );
    }
    return leaf!.issuer.replace(/\n/g, ', ');
  }
}
