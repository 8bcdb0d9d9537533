/**
 * ECDSA P-256 / SHA-256 signature checks, off the event loop and in batches.
 *
 * Two checks cost most of an issuance's CPU on the station's main thread: the CSR's proof of
 * possession (import of the device's public key, ~90 µs with OpenSSL 3.0, and its verification,
 * ~90 µs) and the check of every signature the HSM returns against the CA public key before the
 * certificate is released (~90 µs). Neither is ever skipped. With many issuances in flight
 * (prepare, the `ca` bench, 32 ports) they are handed to one worker thread in batches: the
 * checks asked for in the same turn of the event loop go in messages of up to MAX_BATCH, so a
 * wake-up of the worker (~100 µs of CPU on the reference VM) is shared by several checks instead
 * of paid per signature, and the main thread keeps only the copying.
 *
 * If the worker cannot start or dies, the checks it held and every later one are done in
 * process (InProcessSignatureChecker): slower, never skipped.
 *
 * The worker's source is inline (eval) so that it runs the same from dist/ and from the
 * TypeScript sources under vitest; it uses node:crypto only.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** A key registered once (the CA's), or a device's uncompressed P-256 point (0x04 || X || Y). */
export type SignatureKeyRef = { registered: number } | { p256Point: Buffer };

export interface SignatureCheck {
  key: SignatureKeyRef;
  /** The signed bytes (SHA-256 is applied here). */
  data: Buffer;
  /** DER ECDSA-Sig-Value. */
  signature: Buffer;
}

/**
 * `valid`: verifies; `invalid`: does not; `bad-key`: the key could not be imported (a point off
 * the curve, or an unknown registration).
 */
export type SignatureVerdict = 'valid' | 'invalid' | 'bad-key';

export interface SignatureChecker {
  /** Registers a public key (DER SPKI) used by many checks; returns its reference (the same one for the same key). */
  registerKey(spki: Buffer): SignatureKeyRef;
  check(c: SignatureCheck): Promise<SignatureVerdict>;
  close(): Promise<void>;
}

function importPoint(point: Uint8Array): KeyObject {
  const p = Buffer.from(point.buffer, point.byteOffset, point.byteLength);
  if (p.length !== 65 || p[0] !== 0x04) throw new Error('not an uncompressed P-256 point');
  // A JWK import costs ~90 µs against ~160 µs for DER SPKI (OpenSSL 3.0 decoders); both refuse
  // a point that is not on the curve.
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: p.toString('base64url', 1, 33), y: p.toString('base64url', 33, 65) }, format: 'jwk' });
}

/** Synchronous checks on the calling thread: the fallback, and what single checks use. */
export class InProcessSignatureChecker implements SignatureChecker {
  private readonly keys: KeyObject[] = [];
  /** Registration number by SPKI (hex): every issuer of a run registers the CA key; it is kept once. */
  private readonly known = new Map<string, number>();

  registerKey(spki: Buffer): { registered: number } {
    const hex = spki.toString('hex');
    let n = this.known.get(hex);
    if (n === undefined) {
      n = this.keys.push(createPublicKey({ key: spki, format: 'der', type: 'spki' })) - 1;
      this.known.set(hex, n);
    }
    return { registered: n };
  }

  checkNow(c: SignatureCheck): SignatureVerdict {
    let key: KeyObject | undefined;
    try {
      key = 'registered' in c.key ? this.keys[c.key.registered] : importPoint(c.key.p256Point);
    } catch {
      return 'bad-key';
    }
    if (!key) return 'bad-key';
    try {
      return verify('sha256', c.data, { key, dsaEncoding: 'der' }, c.signature) ? 'valid' : 'invalid';
    } catch {
      return 'invalid';
    }
  }

  check(c: SignatureCheck): Promise<SignatureVerdict> {
    return Promise.resolve(this.checkNow(c));
  }

  async close(): Promise<void> {}
}

const VERDICTS: readonly SignatureVerdict[] = ['valid', 'invalid', 'bad-key'];

/** Checks per message to the worker (see send). */
const MAX_BATCH = 8;

/** The worker: keys by registration number; one reply per batch, one byte per check. */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const keys = new Map();
function importPoint(u) {
  const p = Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  if (p.length !== 65 || p[0] !== 4) throw new Error('not an uncompressed P-256 point');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: p.toString('base64url', 1, 33), y: p.toString('base64url', 33, 65) }, format: 'jwk' });
}
parentPort.on('message', (m) => {
  if (m.type === 'key') {
    keys.set(m.id, createPublicKey({ key: Buffer.from(m.spki), format: 'der', type: 'spki' }));
    return;
  }
  const out = new Uint8Array(m.keys.length);
  for (let i = 0; i < m.keys.length; i++) {
    let key;
    try {
      key = typeof m.keys[i] === 'number' ? keys.get(m.keys[i]) : importPoint(m.keys[i]);
    } catch (e) {
      key = undefined;
    }
    if (!key) { out[i] = 2; continue; }
    try {
      out[i] = verify('sha256', m.data[i], { key, dsaEncoding: 'der' }, m.sigs[i]) ? 0 : 1;
    } catch (e) {
      out[i] = 1;
    }
  }
  parentPort.postMessage({ batch: m.batch, out }, [out.buffer]);
});
`;

interface PendingCheck {
  check: SignatureCheck;
  resolve: (v: SignatureVerdict) => void;
}

export interface WorkerSignatureCheckerOptions {
  /** Called once if the worker fails and the checks fall back to this thread. */
  onFallback?: (reason: string) => void;
}

/** Batches checks to one worker thread (see the file comment). */
export class WorkerSignatureChecker implements SignatureChecker {
  private worker: Worker | undefined;
  private readonly local = new InProcessSignatureChecker();
  private readonly registered: Buffer[] = [];
  private queue: PendingCheck[] = [];
  private scheduled = false;
  private nextBatch = 1;
  private readonly inFlight = new Map<number, PendingCheck[]>();
  private failed = false;
  private closed = false;
  /** Batches sent and checks they held (benches, tests). */
  readonly stats = { batches: 0, checks: 0, inProcess: 0 };

  constructor(private readonly options: WorkerSignatureCheckerOptions = {}) {
    try {
      this.worker = new Worker(WORKER_SOURCE, { eval: true, stdout: false, stderr: false });
    } catch (err) {
      this.fallBack(`the signature-check worker could not start: ${(err as Error).message}`);
      return;
    }
    this.worker.unref();
    this.worker.on('message', (m: { batch: number; out: Uint8Array }) => this.onReply(m));
    this.worker.on('error', (err) => this.fallBack(`the signature-check worker failed: ${err.message}`));
    this.worker.on('exit', (code) => {
      if (this.closed) this.answerInFlightHere();
      else this.fallBack(`the signature-check worker exited (code ${code})`);
    });
  }

  registerKey(spki: Buffer): SignatureKeyRef {
    const ref = this.local.registerKey(spki);
    if (ref.registered < this.registered.length) return ref; // known already
    this.registered.push(spki);
    this.worker?.postMessage({ type: 'key', id: ref.registered, spki });
    return ref;
  }

  check(c: SignatureCheck): Promise<SignatureVerdict> {
    if (this.failed || this.closing) {
      this.stats.inProcess++;
      return Promise.resolve(this.local.checkNow(c));
    }
    return new Promise<SignatureVerdict>((resolve) => {
      this.queue.push({ check: c, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.send());
      }
    });
  }

  /**
   * Checks asked for from now on (even by the callbacks of earlier ones) are answered in process,
   * queued ones too; the batches the worker holds are awaited; then the worker stops.
   */
  close(): Promise<void> {
    if (!this.closingPromise) {
      this.closing = true;
      this.closingPromise = (async () => {
        this.send();
        if (this.inFlight.size > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
        this.closed = true;
        const w = this.worker;
        this.worker = undefined;
        await w?.terminate();
      })();
    }
    return this.closingPromise;
  }

  private closing = false;
  private closingPromise: Promise<void> | undefined;
  /** Called when the last batch the worker holds is answered (close waits for it). */
  private onIdle: (() => void) | undefined;

  /** Fault drill (tests): the worker dies as if it had crashed; checks go on in process. */
  async killWorker(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    await w.terminate();
    await exited;
  }

  private send(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    if (this.failed || this.closing || !this.worker) {
      for (const p of batch) {
        this.stats.inProcess++;
        p.resolve(this.local.checkNow(p.check));
      }
      return;
    }
    // Keep the process alive while a batch is out (the worker is unref'd when idle).
    this.worker.ref();
    // In messages of at most MAX_BATCH checks, each answered on its own: the first checks' callers
    // go on (to the journal, the HSM) while the worker does the rest, instead of every issuance
    // in flight waiting for the whole batch and moving through the stages in one convoy.
    for (let from = 0; from < batch.length; from += MAX_BATCH) {
      const part = batch.slice(from, from + MAX_BATCH);
      const id = this.nextBatch++;
      this.inFlight.set(id, part);
      this.stats.batches++;
      this.stats.checks += part.length;
      const keys = part.map((p) => ('registered' in p.check.key ? p.check.key.registered : p.check.key.p256Point));
      this.worker.postMessage({ type: 'batch', batch: id, keys, data: part.map((p) => p.check.data), sigs: part.map((p) => p.check.signature) });
    }
  }

  private onReply(m: { batch: number; out: Uint8Array }): void {
    const batch = this.inFlight.get(m.batch);
    if (!batch) return;
    this.inFlight.delete(m.batch);
    if (this.inFlight.size === 0) this.worker?.unref();
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(VERDICTS[m.out[i]!] ?? 'invalid');
    if (this.inFlight.size === 0) this.idle();
  }

  private idle(): void {
    const resolve = this.onIdle;
    this.onIdle = undefined;
    resolve?.();
  }

  /** What the worker held is checked here; nothing is answered without a check. */
  private answerInFlightHere(): void {
    for (const [, batch] of this.inFlight) {
      for (const p of batch) {
        this.stats.inProcess++;
        p.resolve(this.local.checkNow(p.check));
      }
    }
    this.inFlight.clear();
    this.idle();
  }

  private fallBack(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    this.options.onFallback?.(reason);
    this.answerInFlightHere();
    this.send();
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate().catch(() => undefined);
  }
}
