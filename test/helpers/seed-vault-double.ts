/**
 * ScriptedSeedVault: method 5's seed vault (core/ports/seed-vault.ts SeedVault) for the
 * seed-derived device transcript. The real vault opens the chip vendor's seed file and derives
 * public keys inside the HSM's PKCS#11 worker; the transcript tests the link (DERIVE_SEED_KEY and
 * how the station compares the key the device derives), so the vault answers the public key
 * recorded for each chip (`@input derived-public-key`, derived from the chip's seed while
 * recording; the seed itself is never recorded). The real vault is tested by
 * test/integration/seed-vault.test.ts and batch-seed-derived.test.ts.
 */
import type { OpenedSeedFile, SeedVault } from '../../src/core/ports/seed-vault';

export class ScriptedSeedVault implements SeedVault {
  /** `keys`: DER SPKI of the derived birth key by chip id (lowercase hex). */
  constructor(private readonly keys: ReadonlyMap<string, Buffer>) {}

  async recipientPublicKey(): Promise<Buffer> {
    throw new Error('ScriptedSeedVault: a transcript imports no seed file (its seed records are made from @inputs)');
  }

  async openSeedFile(_fileBytes: Buffer): Promise<OpenedSeedFile> {
    throw new Error('ScriptedSeedVault: a transcript imports no seed file (its seed records are made from @inputs)');
  }

  async derivePublicKey(chipId: string, _sealed: Buffer): Promise<Buffer> {
    const key = this.keys.get(chipId);
    if (!key) throw new Error(`ScriptedSeedVault: no key was recorded for chip ${chipId}`);
    return Buffer.from(key);
  }
}
