/**
 * Pkcs11WorkerSigner: a Signer whose key is used only by the PKCS#11 worker thread
 * (pkcs11-worker-main.ts), which owns the module for the run (architecture.md: "PKCS#11 in its
 * own worker"; pitfalls.md 1, 8). This side hashes (SHA-256), numbers the requests, converts
 * the raw r||s to DER (pitfalls.md 5), and supervises the worker:
 *
 * - requests carry ids and may be pipelined; the worker queues them onto its session pool
 *   (one operation per session) and answers in order;
 * - the worker itself re-opens sessions, logs in and finds the key again after session and
 *   device errors (`retries`, doubling backoff from `retryBackoffMs`);
 * - when the worker gives up or dies (exit, uncaught error, terminate), a new worker is started
 *   (`maxRestarts` within `restartWindowMs`, backoff from `restartBackoffMs`); it re-initialises
 *   the module when it has a PIN to log in again with, and every unanswered request is sent to
 *   it again;
 * - past those bounds, every pending and later sign fails with HSM_UNAVAILABLE
 *   ("HSM unavailable: ... the line is stopped"); the station treats it as a run-level stop.
 *
 * The PIN: pass a function that reads it from its source (environment variable, 0600 file)
 * and it is read at each (re)start, handed to the worker as bytes in workerData, and this
 * side's copy of the bytes is zero-filled at once. A PIN string given directly goes to the
 * first worker only; a later worker can then log in only if the process still is (login is
 * per application, pitfalls.md 3), otherwise it fails with HSM_PIN_REQUIRED. JS strings cannot
 * be zeroised: the best this side can do is hold no reference to one after the start.
 *
 * Caveat: a native crash (SIGSEGV) inside the module still ends the whole process; a worker
 * thread isolates JS faults and blocking calls, not memory corruption (a child process would).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { HsmError } from '../../core/errors';
import type { Signer } from '../../core/ports/signer';
import { rawEcdsaToDer } from './ecdsa-signature';
import { fromWireError, type FromWorker, type Pkcs11WorkerConfig, type ToWorker } from './pkcs11-worker-protocol';

export interface Pkcs11WorkerSignerOptions {
  /** Path of the PKCS#11 module (.so). */
  module: string;
  tokenLabel: string;
  keyLabel: string;
  /** CKA_ID of the key pair; absent = the label alone must name one key pair. */
  keyId?: Buffer;
  /** The user PIN, or (better) a function that reads it from its source at every (re)start. */
  pin: string | (() => string);
  /**
   * SoftHSM only: sets SOFTHSM2_CONF for the whole process before the worker starts (SoftHSM
   * reads the real environment at C_Initialize; a worker's process.env is only a copy).
   */
  softhsmConf?: string;
  /** Sessions in the worker's pool. Default 2. */
  sessions?: number;
  /** Recovery attempts inside one worker per incident. Default 3. */
  retries?: number;
  /** First recovery backoff, doubled per attempt. Default 50 ms. */
  retryBackoffMs?: number;
  /** Worker restarts allowed within restartWindowMs before the line stops. Default 3. */
  maxRestarts?: number;
  /** Default 30 s. */
  restartWindowMs?: number;
  /** Delay before the first restart of a window, doubled per restart. Default 100 ms. */
  restartBackoffMs?: number;
  /** A request the worker has not answered after this long stops the line (a hung HSM). Default 30 s. */
  requestTimeoutMs?: number;
  /** The SPKI the key must have (known from a start-up check): publicKeySpki is then available at once. */
  expectedSpki?: Buffer;
  /** CKM_* names the token must offer. Default CKM_ECDSA and CKM_EC_KEY_PAIR_GEN. */
  requiredMechanisms?: string[];
  /** Refuse a key weaker than a CA key must be (pitfalls.md 7). Default true. */
  auditCaKey?: boolean;
  /** Worker life-cycle events, for the station log. Never carries the PIN. */
  onEvent?: (event: Pkcs11WorkerEvent) => void;
  /** Tests only: allow crashWorkerForTest(). */
  testHooks?: boolean;
  /** The compiled worker script; default pkcs11-worker-main.js next to this file (or under dist/). */
  workerScript?: string;
}

export type Pkcs11WorkerEvent =
  /** `resent`: requests an earlier worker had been given but not answered, sent to this one. */
  | { type: 'started'; generation: number; sessions: number; reinitialised: boolean; resent: number }
  | { type: 'recovering'; generation: number; attempt: number; of: number; code: string; ckr: string | null }
  | { type: 'recovered'; generation: number; attempts: number }
  | { type: 'worker-exit'; generation: number; exitCode: number; reason: string }
  | { type: 'restarting'; restart: number; of: number; inMs: number }
  | { type: 'unavailable'; code: string; message: string };

export type Pkcs11WorkerState = 'starting' | 'running' | 'restarting' | 'unavailable' | 'failed' | 'closed';

interface PendingSign {
  id: number;
  /** What is sent to the worker (a sign of a digest, or a named op of pkcs11-worker-ops.ts). */
  request: { type: 'sign'; digest: Buffer } | { type: 'op'; op: string; args: unknown };
  resolve: (value: unknown) => void;
  reject: (err: HsmError) => void;
  /** Generation of the worker it was last sent to (-1: not sent yet). */
  sentTo: number;
  sentAt: number;
}

const DEFAULT_MECHANISMS = ['CKM_ECDSA', 'CKM_EC_KEY_PAIR_GEN'];
const STOP_GRACE_MS = 2000;

/**
 * The worker must run compiled JavaScript. From dist/ that is the sibling file; when this module
 * runs from its TypeScript source (vitest), the build's copy under dist/ is used, and a build
 * older than the sources is refused rather than silently tested.
 */
export function defaultWorkerScript(): string {
  const sibling = join(__dirname, 'pkcs11-worker-main.js');
  if (existsSync(sibling)) return sibling;
  const built = resolve(__dirname, '../../../dist/hsm/pkcs11/pkcs11-worker-main.js');
  if (!existsSync(built)) {
    throw new HsmError('HSM_WORKER_MISSING', `The PKCS#11 worker script ${built} does not exist; run "npm run build" first.`);
  }
  for (const name of ['pkcs11-worker-main', 'pkcs11-worker-protocol', 'pkcs11-worker-ops', 'pkcs11-objects', 'hsm-session-pool']) {
    const src = join(__dirname, `${name}.ts`);
    const js = resolve(__dirname, `../../../dist/hsm/pkcs11/${name}.js`);
    if (existsSync(src) && existsSync(js) && statSync(src).mtimeMs > statSync(js).mtimeMs) {
      throw new HsmError('HSM_WORKER_STALE', `The built PKCS#11 worker ${js} is older than ${src}; run "npm run build" first.`);
    }
  }
  const opsDir = join(__dirname, 'worker-ops');
  if (existsSync(opsDir)) {
    for (const file of readdirSync(opsDir).filter((f) => f.endsWith('.ts'))) {
      const js = resolve(__dirname, '../../../dist/hsm/pkcs11/worker-ops', file.replace(/\.ts$/, '.js'));
      if (!existsSync(js) || statSync(join(opsDir, file)).mtimeMs > statSync(js).mtimeMs) {
        throw new HsmError('HSM_WORKER_STALE', `The built PKCS#11 worker op ${js} is missing or older than its source; run "npm run build" first.`);
      }
    }
  }
  return built;
}

export class Pkcs11WorkerSigner implements Signer {
  readonly algorithm = 'ecdsa-p256-sha256' as const;

  private readonly config: Required<Omit<Pkcs11WorkerSignerOptions, 'pin' | 'keyId' | 'softhsmConf' | 'expectedSpki' | 'onEvent' | 'workerScript'>> & {
    keyIdHex?: string;
  };
  private readonly script: string;
  private readonly onEvent: (event: Pkcs11WorkerEvent) => void;
  /** Reads the PIN for a restart; absent when the caller gave a string. */
  private readonly pinSource: (() => string) | undefined;
  private spki: Buffer | undefined;
  private readonly expectedSpki: Buffer | undefined;

  private currentWorker: Worker | undefined;
  private workerReady = false;
  private generation = -1;
  private stateValue: Pkcs11WorkerState = 'starting';
  private failure: HsmError | undefined;
  private lastError: HsmError | undefined;
  /** The error that started the current incident (cleared when a worker is healthy again). */
  private firstError: HsmError | undefined;
  private staleSessions: string[] = [];
  private restartTimes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, PendingSign>();
  private nextId = 1;

  private readonly readyPromise: Promise<void>;
  private settleReady!: (err?: HsmError) => void;

  /** Start a worker and wait until it reports the key (its SPKI); a start-up failure rejects. */
  static async start(options: Pkcs11WorkerSignerOptions): Promise<Pkcs11WorkerSigner> {
    const signer = Pkcs11WorkerSigner.launch(options);
    try {
      await signer.ready();
    } catch (err) {
      await signer.close();
      throw err;
    }
    return signer;
  }

  /**
   * Start a worker without waiting: sign() waits for it, and a start-up failure rejects ready()
   * and every sign. publicKeySpki is available at once only with expectedSpki.
   */
  static launch(options: Pkcs11WorkerSignerOptions): Pkcs11WorkerSigner {
    return new Pkcs11WorkerSigner(options);
  }

  private constructor(options: Pkcs11WorkerSignerOptions) {
    this.config = {
      module: options.module,
      tokenLabel: options.tokenLabel,
      keyLabel: options.keyLabel,
      keyIdHex: options.keyId?.toString('hex'),
      sessions: options.sessions ?? 2,
      retries: options.retries ?? 3,
      retryBackoffMs: options.retryBackoffMs ?? 50,
      maxRestarts: options.maxRestarts ?? 3,
      restartWindowMs: options.restartWindowMs ?? 30_000,
      restartBackoffMs: options.restartBackoffMs ?? 100,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      requiredMechanisms: options.requiredMechanisms ?? DEFAULT_MECHANISMS,
      auditCaKey: options.auditCaKey ?? true,
      testHooks: options.testHooks ?? false,
    };
    this.onEvent = options.onEvent ?? (() => undefined);
    this.expectedSpki = options.expectedSpki;
    this.spki = options.expectedSpki;
    this.readyPromise = new Promise<void>((resolvePromise, reject) => {
      this.settleReady = (err) => (err ? reject(err) : resolvePromise());
    });
    // launch() callers may never await ready(): a start-up failure then surfaces through sign().
    this.readyPromise.catch(() => undefined);
    this.script = options.workerScript ?? defaultWorkerScript();
    if (options.softhsmConf) process.env.SOFTHSM2_CONF = options.softhsmConf;

    let pin: string | undefined;
    if (typeof options.pin === 'function') {
      this.pinSource = options.pin;
      pin = options.pin();
    } else {
      pin = options.pin;
    }
    this.spawn(pin);
    // The only reference this object had to the PIN string. (JS strings cannot be zeroised.)
    pin = undefined;
  }

  /** Resolves once the first worker reported its key; rejects with the start-up error. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  get state(): Pkcs11WorkerState {
    return this.stateValue;
  }

  /** Restarts within the current window. */
  get restarts(): number {
    return this.restartTimes.length;
  }

  /** The current worker thread (diagnostics and tests: `signer.worker?.terminate()`). */
  get worker(): Worker | undefined {
    return this.currentWorker;
  }

  get publicKeySpki(): Buffer {
    if (!this.spki) throw new HsmError('HSM_NOT_READY', 'The PKCS#11 worker has not reported the signing key yet; await Pkcs11WorkerSigner.start().');
    return this.spki;
  }

  async sign(data: Uint8Array): Promise<Buffer> {
    this.throwIfUnusable();
    const digest = createHash('sha256').update(data).digest();
    return new Promise<Buffer>((resolvePromise, reject) => {
      const p: PendingSign = { id: this.nextId++, request: { type: 'sign', digest }, resolve: (v) => resolvePromise(v as Buffer), reject, sentTo: -1, sentAt: 0 };
      this.pending.set(p.id, p);
      this.send(p);
      this.updateRef();
      this.armWatchdog();
    });
  }

  /**
   * Run a named op in the worker (pkcs11-worker-ops.ts), with the same queueing, recovery,
   * restart and line-stop rules as a signature. The caller validates the result's shape.
   */
  async runOp(op: string, args: unknown): Promise<unknown> {
    this.throwIfUnusable();
    return new Promise<unknown>((resolvePromise, reject) => {
      const p: PendingSign = { id: this.nextId++, request: { type: 'op', op, args }, resolve: resolvePromise, reject, sentTo: -1, sentAt: 0 };
      this.pending.set(p.id, p);
      this.send(p);
      this.updateRef();
      this.armWatchdog();
    });
  }

  /** Tests only (testHooks): make the worker throw an uncaught error. */
  crashWorkerForTest(): void {
    if (!this.config.testHooks) throw new Error('crashWorkerForTest needs testHooks: true');
    this.currentWorker?.postMessage({ type: 'crash' } satisfies ToWorker);
  }

  /** Stop the worker (its sessions are closed; the module stays initialised) and fail what is pending. */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    const wasStarting = this.stateValue === 'starting';
    this.stateValue = 'closed';
    this.clearTimers();
    if (wasStarting) this.settleReady(new HsmError('HSM_CLOSED', 'The HSM signer was closed before its worker was ready.'));
    this.rejectAll(() => new HsmError('HSM_CLOSED', 'The HSM signer was closed before the signature was made.'));
    const w = this.currentWorker;
    this.currentWorker = undefined;
    this.workerReady = false;
    if (!w) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.ref();
    w.postMessage({ type: 'stop' } satisfies ToWorker);
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_GRACE_MS)))]);
    clearTimeout(timer);
    if (!graceful) await w.terminate();
  }

  private throwIfUnusable(): void {
    switch (this.stateValue) {
      case 'unavailable':
        throw this.unavailableError();
      case 'failed':
        throw this.copyOf(this.failure!);
      case 'closed':
        throw new HsmError('HSM_CLOSED', 'The HSM signer is closed.');
      default:
    }
  }

  private copyOf(err: HsmError): HsmError {
    return new HsmError(err.code, err.message, { details: { ...err.details }, retryable: err.retryable });
  }

  private spawn(pin: string | undefined): void {
    const restart = this.generation >= 0;
    const generation = ++this.generation;
    let pinBytes = pin !== undefined ? new TextEncoder().encode(pin) : undefined;
    const reinitialise = restart && pinBytes !== undefined;
    const workerData: Pkcs11WorkerConfig = {
      module: this.config.module,
      tokenLabel: this.config.tokenLabel,
      keyLabel: this.config.keyLabel,
      keyIdHex: this.config.keyIdHex,
      sessions: this.config.sessions,
      retries: this.config.retries,
      retryBackoffMs: this.config.retryBackoffMs,
      reinitialise,
      staleSessionsHex: restart && !reinitialise ? this.staleSessions : [],
      requiredMechanisms: this.config.requiredMechanisms,
      auditCaKey: this.config.auditCaKey,
      testHooks: this.config.testHooks,
      generation,
      pin: pinBytes,
    };
    let worker: Worker;
    try {
      // workerData is serialised here, synchronously; our copy of the PIN bytes is wiped right after.
      worker = new Worker(this.script, { workerData, stdout: false, stderr: false });
    } finally {
      pinBytes?.fill(0);
      pinBytes = undefined;
      workerData.pin = undefined;
    }
    this.currentWorker = worker;
    this.workerReady = false;
    this.staleSessions = [];
    worker.on('message', (msg: FromWorker) => this.onMessage(generation, msg));
    worker.on('error', (err) => {
      if (generation !== this.generation) return;
      // An uncaught error in the worker: its text, never workerData, is kept for the operator.
      this.lastError = new HsmError('HSM_WORKER_FAILED', `The PKCS#11 worker failed: ${err.message}`);
    });
    worker.on('exit', (code) => this.onExit(generation, code));
    this.updateRef();
  }

  private onMessage(generation: number, msg: FromWorker): void {
    if (generation !== this.generation || this.stateValue === 'closed') return;
    switch (msg.type) {
      case 'results':
        for (const r of msg.results) this.onMessage(generation, r);
        return;
      case 'ready': {
        const spki = Buffer.from(msg.spki);
        if (this.expectedSpki && !spki.equals(this.expectedSpki)) {
          this.lastError = new HsmError('HSM_KEY_CHANGED', `The key "${this.config.keyLabel}" on token ${this.config.tokenLabel} is not the key the station checked at start.`);
          if (this.stateValue === 'starting') this.fail(this.lastError);
          void this.currentWorker?.terminate();
          return;
        }
        this.spki = spki;
        this.firstError = undefined;
        this.staleSessions = msg.sessionsHex;
        this.workerReady = true;
        const first = this.stateValue === 'starting';
        this.stateValue = 'running';
        const resent = [...this.pending.values()].filter((p) => p.sentTo >= 0).length;
        this.onEvent({ type: 'started', generation, sessions: msg.sessionsHex.length, reinitialised: msg.reinitialised, resent });
        if (first) this.settleReady();
        for (const p of this.pending.values()) this.send(p);
        this.updateRef();
        return;
      }
      case 'start-failed': {
        this.lastError = fromWireError(msg.error);
        if (this.stateValue === 'starting') this.fail(this.lastError);
        return;
      }
      case 'signed':
      case 'sign-failed': {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.type === 'signed') p.resolve(rawEcdsaToDer(msg.raw));
        else p.reject(fromWireError(msg.error));
        this.updateRef();
        return;
      }
      case 'op-done':
      case 'op-failed': {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.type === 'op-done') p.resolve(msg.result);
        else p.reject(fromWireError(msg.error));
        this.updateRef();
        return;
      }
      case 'recovering': {
        this.firstError ??= fromWireError(msg.error);
        const ckr = msg.error.details.ckr;
        this.onEvent({ type: 'recovering', generation, attempt: msg.attempt, of: msg.of, code: msg.error.code, ckr: typeof ckr === 'string' ? ckr : null });
        return;
      }
      case 'recovered':
        this.firstError = undefined;
        this.staleSessions = msg.sessionsHex;
        this.onEvent({ type: 'recovered', generation, attempts: msg.attempts });
        return;
      case 'gave-up':
        this.lastError = fromWireError(msg.error);
        this.staleSessions = []; // it closed them before exiting
        return;
      case 'stopped':
        return;
    }
  }

  private onExit(generation: number, exitCode: number): void {
    if (generation !== this.generation) return;
    this.currentWorker = undefined;
    this.workerReady = false;
    if (this.stateValue === 'closed' || this.stateValue === 'failed' || this.stateValue === 'unavailable') return;
    const reason = this.lastError?.message ?? `the worker thread ended with exit code ${exitCode}`;
    this.firstError ??= this.lastError ?? new HsmError('HSM_WORKER_FAILED', `The PKCS#11 worker thread ended (exit code ${exitCode}).`);
    this.onEvent({ type: 'worker-exit', generation, exitCode, reason });
    if (this.stateValue === 'starting') {
      this.fail(this.lastError ?? new HsmError('HSM_WORKER_FAILED', `The PKCS#11 worker stopped while starting (exit code ${exitCode}).`));
      return;
    }
    this.scheduleRestart();
  }

  /** The first start failed: no restarts, everything waiting fails with that error. */
  private fail(err: HsmError): void {
    this.stateValue = 'failed';
    this.failure = err;
    this.clearTimers();
    this.settleReady(err);
    this.rejectAll(() => this.copyOf(err));
  }

  private scheduleRestart(): void {
    const now = Date.now();
    this.restartTimes = this.restartTimes.filter((t) => now - t < this.config.restartWindowMs);
    if (this.restartTimes.length >= this.config.maxRestarts) {
      this.goUnavailable();
      return;
    }
    this.restartTimes.push(now);
    const n = this.restartTimes.length;
    const delay = this.config.restartBackoffMs * 2 ** (n - 1);
    this.stateValue = 'restarting';
    this.onEvent({ type: 'restarting', restart: n, of: this.config.maxRestarts, inMs: delay });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stateValue !== 'restarting') return;
      let pin: string | undefined;
      try {
        pin = this.pinSource?.();
        this.spawn(pin);
      } catch (err) {
        this.lastError = err instanceof HsmError ? err : new HsmError('HSM_WORKER_FAILED', `The PKCS#11 worker could not be restarted: ${(err as Error).message}`);
        this.scheduleRestart();
      } finally {
        pin = undefined;
      }
    }, delay);
  }

  private unavailableError(): HsmError {
    const last = this.failure ?? this.lastError;
    const first = this.firstError;
    const text = (e: HsmError | undefined) => (e?.message ?? 'the PKCS#11 worker stopped').replace(/\.$/, '');
    const ckrOf = (e: HsmError | undefined) => (typeof e?.details.ckr === 'string' ? e.details.ckr : null);
    const errors = first && first.message !== last?.message ? `First error: ${text(first)}. Last error: ${text(last)}.` : `Error: ${text(last)}.`;
    return new HsmError(
      'HSM_UNAVAILABLE',
      `HSM unavailable: the PKCS#11 worker did not recover (${this.config.retries} retries per incident, ` +
        `${this.config.maxRestarts} restarts within ${Math.round(this.config.restartWindowMs / 1000)} s); the line is stopped. ${errors} ` +
        `Check the HSM and token "${this.config.tokenLabel}", then start the run again.`,
      { details: { token: this.config.tokenLabel, cause: last?.code ?? null, ckr: ckrOf(last), firstCkr: ckrOf(first ?? last) } },
    );
  }

  private goUnavailable(): void {
    this.stateValue = 'unavailable';
    this.failure = this.lastError;
    this.firstError ??= this.lastError;
    this.clearTimers();
    const err = this.unavailableError();
    this.onEvent({ type: 'unavailable', code: err.code, message: err.message });
    // A new error per request: the station's stage runner sets the stage on the error it gets.
    this.rejectAll(() => this.unavailableError());
    const w = this.currentWorker;
    this.currentWorker = undefined;
    void w?.terminate();
  }

  private send(p: PendingSign): void {
    if (!this.currentWorker || !this.workerReady || p.sentTo === this.generation) return;
    p.sentTo = this.generation;
    p.sentAt = Date.now();
    const r = p.request;
    // Requests of one turn of the event loop go to the worker in one message (protocol: 'batch').
    this.outgoing.push({ generation: this.generation, request: r.type === 'sign' ? { type: 'sign', id: p.id, digest: r.digest } : { type: 'op', id: p.id, op: r.op, args: r.args } });
    if (this.outgoing.length === 1) setImmediate(() => this.flushOutgoing());
  }

  /** Requests waiting for the end of this turn of the event loop (see send), with the worker generation they were meant for. */
  private outgoing: Array<{ generation: number; request: Extract<ToWorker, { type: 'batch' }>['requests'][number] }> = [];

  private flushOutgoing(): void {
    const waiting = this.outgoing;
    this.outgoing = [];
    // Requests meant for a worker that was replaced in between are dropped here: the new worker
    // is sent every unanswered request when it is ready (they are re-queued with its generation).
    const requests = waiting.filter((w) => w.generation === this.generation).map((w) => w.request);
    if (requests.length === 0 || !this.currentWorker) return;
    this.currentWorker.postMessage((requests.length === 1 ? requests[0]! : { type: 'batch', requests }) satisfies ToWorker);
  }

  private rejectAll(make: () => HsmError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(make());
  }

  /** Keep the process alive while the worker starts or has work; an idle worker does not hold it open. */
  private updateRef(): void {
    const w = this.currentWorker;
    if (!w) return;
    if (this.stateValue === 'starting' || this.pending.size > 0) w.ref();
    else w.unref();
  }

  private armWatchdog(): void {
    if (this.watchdog) return;
    const period = Math.max(50, Math.min(1000, this.config.requestTimeoutMs / 4));
    this.watchdog = setInterval(() => {
      if (this.pending.size === 0) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
        return;
      }
      if (this.stateValue !== 'running') return;
      const now = Date.now();
      for (const p of this.pending.values()) {
        if (p.sentTo === this.generation && now - p.sentAt > this.config.requestTimeoutMs) {
          // A call that never returns cannot be interrupted from JS (not even by terminate()).
          this.lastError = new HsmError('HSM_TIMEOUT', `The HSM did not answer a signing request within ${Math.round(this.config.requestTimeoutMs / 1000)} s.`);
          this.goUnavailable();
          return;
        }
      }
    }, period);
    this.watchdog.unref();
  }

  private clearTimers(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}
