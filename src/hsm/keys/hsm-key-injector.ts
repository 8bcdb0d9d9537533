/**
 * The HSM side of method 3 as a KeyInjector (core/ports/key-injection.ts): every call is a named
 * op of the PKCS#11 worker (worker-ops/key-injection-ops.ts), so that all run-time PKCS#11 work
 * stays in its one owner. This side checks the shapes of what the worker answers and splits big
 * batches into ops of at most MAX_KEYS_PER_OP keys (a 100,000-key prepare is ~100 ops).
 */
import { HsmError } from '../../core/errors';
import type { KeyInjector, TransportWrappedKey, WrappedDeviceKey } from '../../core/ports/key-injection';
import type { KeyInjectionSetupResult } from '../pkcs11/worker-ops/key-injection-ops';

/** The default label of the KEK on the station's token (hsm.kekLabel overrides it). */
export const DEFAULT_KEK_LABEL = 'station-kek';
/** Keys per worker op (the worker refuses more). */
const KEYS_PER_OP = 1024;
/** Ops of one generateWrapped call queued in the worker at once (see there). */
const OPS_IN_FLIGHT = 4;

/** What runs a named worker op: Pkcs11WorkerSigner (IdevidCa.signer). */
export interface WorkerOpRunner {
  runOp(op: string, args: unknown): Promise<unknown>;
}

function bad(op: string): HsmError {
  return new HsmError('HSM_BAD_RESPONSE', `The PKCS#11 worker answered ${op} with something other than what it promises.`);
}

function buffer(v: unknown, op: string): Buffer {
  if (!(v instanceof Uint8Array)) throw bad(op);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export class HsmKeyInjector implements KeyInjector {
  private constructor(
    private readonly runner: WorkerOpRunner,
    readonly kekLabel: string,
    /** What the start-up check found (KEK made now or before; the device-key self-check). */
    readonly setup: KeyInjectionSetupResult,
  ) {}

  /**
   * Checks the mechanisms method 3 needs, finds the KEK by label (makes it once when `createKek`,
   * e.g. for `station prepare` and `--simulate`), audits it, and runs the self-check that a device
   * key cannot be read in clear. Any failure refuses method 3 before a device is touched.
   */
  static async open(runner: WorkerOpRunner, options: { kekLabel?: string; createKek: boolean }): Promise<HsmKeyInjector> {
    const kekLabel = options.kekLabel ?? DEFAULT_KEK_LABEL;
    const result = (await runner.runOp('inject.setup', { kekLabel, create: options.createKek })) as KeyInjectionSetupResult | undefined;
    if (!result || result.kekLabel !== kekLabel || typeof result.kekCreated !== 'boolean' || !result.deviceKey) throw bad('inject.setup');
    return new HsmKeyInjector(runner, kekLabel, result);
  }

  /**
   * `keysPerOp` (at most 1,024) sizes the worker ops; all are asked for at once and served in
   * order. Smaller ops let signatures asked for meanwhile go between them (the worker serves
   * signatures before ops that have not started): prepare makes the next chunk's keys in ops of
   * 128 while this chunk's certificates are signed.
   */
  async generateWrapped(count: number, options: { keysPerOp?: number } = {}): Promise<WrappedDeviceKey[]> {
    if (!Number.isInteger(count) || count < 0) throw new HsmError('HSM_BAD_REQUEST', `Cannot make ${count} keys.`);
    const perOp = Math.max(1, Math.min(KEYS_PER_OP, Math.floor(options.keysPerOp ?? KEYS_PER_OP)));
    const sizes: number[] = [];
    for (let left = count; left > 0; left -= perOp) sizes.push(Math.min(perOp, left));
    const results: WrappedDeviceKey[][] = new Array(sizes.length);
    // At most OPS_IN_FLIGHT ops queued in the worker at once: the worker's watchdog counts each
    // request's time from when it was sent, so a long queue of ops must not be sent all at once.
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < sizes.length) {
        const i = next++;
        const n = sizes[i]!;
        const result = (await this.runner.runOp('inject.generate-wrapped', { kekLabel: this.kekLabel, count: n })) as { keys?: unknown };
        if (!Array.isArray(result?.keys) || result.keys.length !== n) throw bad('inject.generate-wrapped');
        results[i] = (result.keys as { spki?: unknown; wrappedKey?: unknown }[]).map((k) => ({ spki: buffer(k.spki, 'inject.generate-wrapped'), wrappedKey: buffer(k.wrappedKey, 'inject.generate-wrapped') }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(OPS_IN_FLIGHT, sizes.length) }, lane));
    return results.flat();
  }

  async wrapForTransport(input: { kekWrappedKey: Buffer; transportSpki: Buffer; serial: string }): Promise<TransportWrappedKey> {
    const result = (await this.runner.runOp('inject.wrap-for-transport', {
      kekLabel: this.kekLabel,
      kekWrappedKey: input.kekWrappedKey,
      transportSpki: input.transportSpki,
      serial: input.serial,
    })) as { hsmPublicKey?: unknown; wrappedKey?: unknown } | undefined;
    return { hsmPublicKey: buffer(result?.hsmPublicKey, 'inject.wrap-for-transport'), wrappedKey: buffer(result?.wrappedKey, 'inject.wrap-for-transport') };
  }
}
