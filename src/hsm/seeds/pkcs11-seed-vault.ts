/**
 * The SeedVault port over the PKCS#11 worker's seed ops (worker-ops/seed-vault-ops.ts): the
 * parent side only passes the encrypted file in and sealed seeds, hashes and SPKIs out. The
 * envelope's errors (SEED_FILE_*) come back from the worker as HsmErrors and are turned into
 * ConfigErrors here: a bad file is the operator's input, not an HSM fault.
 */
import { ConfigError, HsmError } from '../../core/errors';
import type { OpenedSeedFile, SeedVault } from '../../core/ports/seed-vault';

/** Labels of the seed-vault keys on the station's token when the configuration names none. */
export const DEFAULT_SEED_IMPORT_KEY_LABEL = 'seed-import';
export const DEFAULT_SEED_VAULT_KEY_LABEL = 'seed-vault';

export interface WorkerOpRunner {
  runOp(op: string, args: unknown): Promise<unknown>;
}

export interface SeedVaultLabels {
  seedImportKeyLabel?: string;
  seedVaultKeyLabel?: string;
}

const FILE_ERRORS = new Set(['SEED_FILE_MALFORMED', 'SEED_FILE_WRONG_RECIPIENT', 'SEED_FILE_DECRYPT_FAILED']);

function asBuffer(v: unknown, what: string): Buffer {
  if (!(v instanceof Uint8Array)) throw new HsmError('HSM_OP_BAD_RESULT', `The PKCS#11 worker returned no ${what}.`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function asText(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new HsmError('HSM_OP_BAD_RESULT', `The PKCS#11 worker returned no ${what}.`);
  return v;
}

export class Pkcs11SeedVault implements SeedVault {
  private readonly importKeyLabel: string;
  private readonly vaultKeyLabel: string;

  constructor(
    private readonly worker: WorkerOpRunner,
    labels: SeedVaultLabels = {},
  ) {
    this.importKeyLabel = labels.seedImportKeyLabel ?? DEFAULT_SEED_IMPORT_KEY_LABEL;
    this.vaultKeyLabel = labels.seedVaultKeyLabel ?? DEFAULT_SEED_VAULT_KEY_LABEL;
  }

  private async run(op: string, args: unknown): Promise<Record<string, unknown>> {
    try {
      const r = await this.worker.runOp(op, args);
      if (typeof r !== 'object' || r === null) throw new HsmError('HSM_OP_BAD_RESULT', `The PKCS#11 worker returned nothing for ${op}.`);
      return r as Record<string, unknown>;
    } catch (err) {
      if (err instanceof HsmError && FILE_ERRORS.has(err.code)) throw new ConfigError(err.code, err.message);
      throw err;
    }
  }

  async recipientPublicKey(): Promise<Buffer> {
    return asBuffer((await this.run('seed.recipientKey', { importKeyLabel: this.importKeyLabel })).spki, 'recipient key');
  }

  async openSeedFile(fileBytes: Buffer): Promise<OpenedSeedFile> {
    const r = await this.run('seed.openFile', { file: fileBytes, importKeyLabel: this.importKeyLabel, vaultKeyLabel: this.vaultKeyLabel });
    if (!Array.isArray(r.chips)) throw new HsmError('HSM_OP_BAD_RESULT', 'The PKCS#11 worker returned no chips for the seed file.');
    return {
      recipientKeyId: asText(r.kid, 'key id'),
      vendor: asText(r.vendor, 'vendor'),
      lot: asText(r.lot, 'lot'),
      createdAt: asText(r.createdAt, 'creation date'),
      chips: (r.chips as Record<string, unknown>[]).map((c) => ({
        chipId: asText(c.chipId, 'chip id'),
        sealed: asBuffer(c.sealed, 'sealed seed'),
        publicKeySha256: asText(c.publicKeySha256, 'public key hash'),
      })),
    };
  }

  async derivePublicKey(chipId: string, sealed: Buffer): Promise<Buffer> {
    return asBuffer((await this.run('seed.derivePublicKey', { chipId, sealed, vaultKeyLabel: this.vaultKeyLabel })).spki, 'public key');
  }
}
