/**
 * Named operations the PKCS#11 worker runs besides signing, so that every PKCS#11 call of the
 * station stays in the one owner of the module (architecture.md; pitfalls.md 1: a second
 * C_Initialize in the same process is not a second owner, it is a shared one).
 *
 * Each feature (key injection for method 3, the seed vault of method 5, ...) lives in its own
 * file under worker-ops/ and registers its handlers with registerWorkerOps(); worker-ops/index.ts
 * imports every such file and is imported by the worker. A handler runs synchronously on one
 * pool session (one operation per session, pitfalls.md 2), validates its own arguments, and
 * returns structured-clone data. Throw HsmError (or let toHsmError wrap a PKCS#11 error): a
 * session or device error (RECOVERABLE_CKRS) re-opens the sessions and runs the op again, so a
 * handler must be safe to repeat, or find what it made the first time by label.
 *
 * Nothing secret is returned unless the op exists to return it (a wrapped blob is not secret);
 * handlers zero-fill the buffers that held key material before they return.
 */
import { HsmError } from '../../core/errors';
import type { Pkcs11Handle, pkcs11js } from './pkcs11-library';

export interface WorkerOpContext {
  api: pkcs11js.PKCS11;
  /** A logged-in R/W session from the worker's pool, exclusively this op's while it runs. */
  session: Pkcs11Handle;
  slot: Pkcs11Handle;
  tokenLabel: string;
}

export type WorkerOp = (ctx: WorkerOpContext, args: unknown) => unknown;

const OPS = new Map<string, WorkerOp>();

export function registerWorkerOps(ops: Readonly<Record<string, WorkerOp>>): void {
  for (const [name, op] of Object.entries(ops)) {
    if (OPS.has(name)) throw new Error(`PKCS#11 worker op ${name} registered twice`);
    OPS.set(name, op);
  }
}

export function findWorkerOp(name: string): WorkerOp {
  const op = OPS.get(name);
  if (!op) throw new HsmError('HSM_OP_UNKNOWN', `The PKCS#11 worker has no operation "${name}".`);
  return op;
}

export function workerOpNames(): string[] {
  return [...OPS.keys()];
}
