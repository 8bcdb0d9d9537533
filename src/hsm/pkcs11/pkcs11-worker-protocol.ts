/**
 * Messages between Pkcs11WorkerSigner (the parent thread) and pkcs11-worker-main (the worker
 * thread that owns the PKCS#11 module at run time). Plain structured-clone data only: errors
 * cross the boundary as {code, message, details, retryable} and are re-created as HsmError on
 * the other side; details never hold a PIN (they are built by toHsmError, which only keeps the
 * CKR name and the PKCS#11 function).
 */
import { HsmError } from '../../core/errors';

export type WireDetails = Record<string, string | number | boolean | null>;

export interface WireError {
  code: string;
  message: string;
  details: WireDetails;
  retryable: boolean;
}

/** workerData of one worker incarnation. */
export interface Pkcs11WorkerConfig {
  module: string;
  tokenLabel: string;
  keyLabel: string;
  /** CKA_ID of the key pair, hex; absent = by label only. */
  keyIdHex?: string;
  sessions: number;
  /** In-worker recovery attempts per incident (re-open sessions, log in, find keys, retry). */
  retries: number;
  /** First backoff before a recovery attempt; doubled on each further attempt. */
  retryBackoffMs: number;
  /** C_Finalize then C_Initialize before anything else (a restart, so that the module re-reads its tokens). */
  reinitialise: boolean;
  /** Sessions a dead predecessor left open (hex handles): closed once this worker's own are open. */
  staleSessionsHex: string[];
  /** CKM_* names the token must offer. */
  requiredMechanisms: string[];
  /** Refuse a key weaker than a CA key must be (assertStrongCaKey). */
  auditCaKey: boolean;
  /** Accept the `crash` message (tests only). */
  testHooks: boolean;
  /** Which incarnation this is (0 = first start), for messages and logs. */
  generation: number;
  /**
   * The user PIN as UTF-8 bytes, or absent: then the worker relies on the process being logged
   * in already (login is per application, pitfalls.md 3) and fails with HSM_PIN_REQUIRED if not.
   * The parent zero-fills its copy as soon as the Worker is constructed.
   */
  pin?: Uint8Array;
}

export type ToWorker =
  | { type: 'sign'; id: number; digest: Uint8Array }
  /**
   * A named operation of pkcs11-worker-ops.ts (key injection, seed vault, ...). `args` and the
   * result are structured-clone data; the op validates its arguments.
   */
  | { type: 'op'; id: number; op: string; args: unknown }
  /** Close the sessions and exit (the parent's close()). */
  | { type: 'stop' }
  /** Tests only (testHooks): throw an uncaught error in the worker. */
  | { type: 'crash' }
  /**
   * Requests made in one turn of the parent's event loop, in order, in one message: a message
   * (and the worker wake-up it causes, ~100 µs of CPU on the reference VM) per signature would
   * cost more than the signature.
   */
  | { type: 'batch'; requests: Array<Extract<ToWorker, { type: 'sign' | 'op' }>> };

export type FromWorker =
  | { type: 'ready'; generation: number; spki: Uint8Array; sessionsHex: string[]; reinitialised: boolean }
  | { type: 'start-failed'; generation: number; error: WireError }
  | { type: 'signed'; id: number; raw: Uint8Array }
  | { type: 'sign-failed'; id: number; error: WireError }
  | { type: 'op-done'; id: number; result: unknown }
  | { type: 'op-failed'; id: number; error: WireError }
  | { type: 'recovering'; generation: number; attempt: number; of: number; error: WireError }
  | { type: 'recovered'; generation: number; attempts: number; sessionsHex: string[] }
  /** Recovery exhausted: the worker exits next and the parent decides whether to restart it. */
  | { type: 'gave-up'; generation: number; error: WireError }
  | { type: 'stopped'; generation: number }
  /** Results (signed, sign-failed, op-done, op-failed) of one pass over the worker's queue, in order. */
  | { type: 'results'; results: Array<Extract<FromWorker, { type: 'signed' | 'sign-failed' | 'op-done' | 'op-failed' }>> };

export function toWireError(err: HsmError): WireError {
  return { code: err.code, message: err.message, details: { ...err.details }, retryable: err.retryable };
}

export function fromWireError(w: WireError): HsmError {
  return new HsmError(w.code, w.message, { details: w.details, retryable: w.retryable });
}
