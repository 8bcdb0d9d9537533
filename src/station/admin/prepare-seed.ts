/**
 * Method 5 prepared ahead: `station prepare --work-order <seed-derived work order> --count N`
 * issues certificates for chips that were imported (`station import seeds`) and are bound to no
 * device yet, so that the line only hands them on (KeyMaterial `pre-issued`; the device still
 * derives its key on first boot and must match, as always).
 *
 * Per chunk of chips:
 *   1. one transaction allocates a device record per chip (the record store's serial allocation,
 *      port `prepare`) and binds the chip to it (SqlitePreparedSeedStore.addPreparing);
 *   2. per chip, in the PKCS#11 worker, the sealed seed is opened and the birth key's public key
 *      derived (seed.derivePublicKey); its hash must equal the one recorded at import;
 *   3. the station's own IdevidIssuer issues the certificate (intent before the signature,
 *      certificate row committed before it counts), the whole chunk in flight through a
 *      GroupCommitJournal, as method 3's prepare does (prepare.ts);
 *   4. a chip whose derivation or issuance failed has its device record failed (rework), which
 *      frees the chip for the usual path at the line.
 * A stop half-way: resolveDanglingIntents fails the records with a pending intent, and
 * SqlitePreparedSeedStore.resolveInterrupted the ones allocated but never issued.
 */
import { createHash } from 'node:crypto';
import type { ProductProfile, StationConfig, WorkOrder } from '../../core/config';
import { ConfigError, HsmError, asStationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { SeedVault } from '../../core/ports/seed-vault';
import { Pkcs11SeedVault } from '../../hsm/seeds/pkcs11-seed-vault';
import { withPrepareContext } from './prepare';
import { openPrepareRun, type PrepareCa } from './prepare-run';
import { PREPARE_PORT, SqlitePreparedSeedStore } from '../../manufacturer-db/prepared-seed-store';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';


export interface PrepareSeedsInput {
  store: SqliteRecordStore;
  seeds: SqlitePreparedSeedStore;
  seedVault: SeedVault;
  ca: PrepareCa;
  workOrder: WorkOrder;
  product: ProductProfile;
  count: number;
  log: Logger;
  chunk?: number;
}

export interface PrepareSeedsResult {
  runId: string;
  prepared: number;
  failed: number;
  /** Fewer unbound chips than asked for were imported. */
  short: number;
  firstSerial: string | null;
  lastSerial: string | null;
  /** Prepared chips of the work order waiting for their device (after this prepare). */
  waiting: number;
}

function checkWorkOrder(wo: WorkOrder): void {
  if (wo.method !== 'seed-derived') {
    throw new ConfigError('METHOD_MISMATCH', `Work order ${wo.id} uses method ${wo.method}; certificates are prepared from seeds only for method seed-derived.`);
  }
}

/** Issues certificates ahead for up to `count` imported, unbound chips. */
export async function prepareSeedCertificates(input: PrepareSeedsInput): Promise<PrepareSeedsResult> {
  const { store, seeds, workOrder: wo, product, log } = input;
  checkWorkOrder(wo);
  const run = openPrepareRun(store, input.ca, wo.id, input.chunk);
  const { runId, chunk, journal, issuer } = run;
  let prepared = 0;
  let failed = 0;
  let short = 0;
  let firstSerial: string | null = null;
  let lastSerial: string | null = null;
  try {
    for (let done = 0; done < input.count; ) {
      const chips = seeds.unprepared(Math.min(chunk, input.count - done));
      if (chips.length === 0) {
        short = input.count - done;
        break;
      }
      const serials = seeds.addPreparing({
        workOrderId: wo.id,
        runId,
        chips,
        allocate: () => store.allocateDevice({ runId, workOrder: wo, port: PREPARE_PORT, hardwareId: '', model: product.model, firmwareVersion: '', macs: [], method: wo.method }),
      });
      type Outcome = { serial: string; error?: undefined } | { serial: string; chipId: string; error: ReturnType<typeof asStationError> };
      const outcomes = await Promise.all(
        chips.map(async (chip, i): Promise<Outcome> => {
          const serial = serials[i]!;
          try {
            const spki = await input.seedVault.derivePublicKey(chip.chipId, chip.sealed);
            if (createHash('sha256').update(spki).digest('hex') !== chip.publicKeySha256) {
              throw new HsmError('SEED_VAULT_INTEGRITY', `The key derived for chip ${chip.chipId} differs from the one derived when its seed file was imported. Stop and call the supervisor.`);
            }
            await issuer.issue({ spki, serial, model: product.model, workOrderId: wo.id, profile: product.idevid });
            return { serial };
          } catch (err) {
            return { serial, chipId: chip.chipId, error: asStationError(err, 'CA_ISSUE_FAILED', 'issue') };
          }
        }),
      );
      journal.flush();
      for (const o of outcomes) {
        if (o.error) {
          log.error({ serial: o.serial, chipId: o.chipId, code: o.error.code, reason: o.error.message }, 'a chip\'s certificate was not prepared; its record is failed and the chip goes the usual way');
          store.markFailed(o.serial, runId, { code: o.error.code, message: o.error.message, stage: 'issue' }, [], 'rework');
          failed++;
        } else {
          firstSerial ??= o.serial;
          lastSerial = o.serial;
          prepared++;
        }
      }
      done += chips.length;
      log.info({ workOrder: wo.id, runId, prepared, failed, of: input.count }, 'prepared seed-derived certificates');
    }
  } finally {
    run.finish({ prepared, failed });
  }
  return { runId, prepared, failed, short, firstSerial, lastSerial, waiting: seeds.waitingCount(wo.id) };
}

/** `station prepare` on a seed-derived work order: opens the CA and the database, prepares, closes. */
export function runPrepareSeeds(
  config: StationConfig,
  deps: { dataDir: string; env?: NodeJS.ProcessEnv; log: Logger },
  request: { workOrderId: string; count: number },
): Promise<PrepareSeedsResult & { workOrderId: string; resolved: { serial: string; chipId: string }[] }> {
  return withPrepareContext(config, deps, request.workOrderId, checkWorkOrder, async ({ wo, product, ca, store }) => {
    const seeds = new SqlitePreparedSeedStore(store);
    const resolved = seeds.resolveInterrupted();
    for (const r of resolved) deps.log.warn({ ...r, code: 'PREPARE_INTERRUPTED' }, 'a prepared chip an earlier stop left without a certificate goes the usual way');
    const result = await prepareSeedCertificates({ store, seeds, seedVault: new Pkcs11SeedVault(ca.signer, config.hsm), ca, workOrder: wo, product, count: request.count, log: deps.log });
    return { ...result, workOrderId: wo.id, resolved };
  });
}
