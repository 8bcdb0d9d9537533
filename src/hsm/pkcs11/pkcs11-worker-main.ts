/**
 * The PKCS#11 worker thread: the one owner of the station's run-time PKCS#11 work. Started by
 * Pkcs11WorkerSigner (pkcs11-worker-client.ts) with a Pkcs11WorkerConfig in workerData.
 *
 * - Loads the module and calls C_Initialize once with CKF_OS_LOCKING_OK (pitfalls.md 1; an
 *   already initialised module is fine). A restart with a PIN first calls C_Finalize, so that
 *   the module re-reads its tokens (SoftHSM does not see a token folder that went away and came
 *   back without it).
 * - Checks the mechanism list, opens a pool of sessions (one operation in flight per session,
 *   pitfalls.md 2), logs in once (pitfalls.md 3), finds the key pair by label (and CKA_ID when
 *   given), audits the private key (assertStrongCaKey) and reports its SPKI.
 * - Serves sign requests with synchronous pkcs11js calls (pitfalls.md 8): CKM_ECDSA over the
 *   SHA-256 digest the parent computed (pitfalls.md 4), answering with the raw r||s (the parent
 *   converts it to DER, pitfalls.md 5). Requests queue in arrival order.
 * - Sessions die (pitfalls.md 9): on a session, device or handle error it re-opens the sessions,
 *   logs in, finds the keys again and retries, a bounded number of times with a doubling
 *   backoff; then it tells the parent it gave up and exits, and the parent decides whether to
 *   start a new worker (which re-initialises the module) or to stop the line.
 *
 * The PIN arrives once, as bytes in workerData, and is kept only here (a restarted worker gets
 * it again from the parent's PIN source). It is never logged, sent back or put in an error.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { HsmError } from '../../core/errors';
import { assertStrongCaKey } from '../ca/ca-key-audit';
import { ckrName, isPkcs11Error, toHsmError } from './ckr-names';
import { HsmSessionPool } from './hsm-session-pool';
import { Pkcs11Library, pkcs11js, type Pkcs11Handle } from './pkcs11-library';
import type { PrivateKeyAudit } from './pkcs11-token';
import { toWireError, type FromWorker, type Pkcs11WorkerConfig, type ToWorker } from './pkcs11-worker-protocol';
import { findWorkerOp } from './pkcs11-worker-ops';
import { findObjects as findObjectsOn, readP256PublicKeySpki, readPrivateKeyAudit } from './pkcs11-objects';
import './worker-ops/index';

/**
 * Return values after which the sessions, the login or the key handles are not to be trusted:
 * re-open, log in, find the keys again, retry. The first five are the classic "sessions die"
 * set (pitfalls.md 9). The rest were measured on SoftHSM 2.6.1 with its token folder moved
 * away: signing with the old key handle gives CKR_OBJECT_HANDLE_INVALID and C_GetSlotList
 * gives CKR_GENERAL_ERROR; CKR_USER_NOT_LOGGED_IN follows a lost login state, and
 * CKR_CRYPTOKI_NOT_INITIALIZED a module that someone else in the process finalised.
 */
export const RECOVERABLE_CKRS: ReadonlySet<string> = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_DEVICE_ERROR',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_DEVICE_REMOVED',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_GENERAL_ERROR',
]);

export function isRecoverable(err: HsmError): boolean {
  const ckr = err.details.ckr;
  return typeof ckr === 'string' && RECOVERABLE_CKRS.has(ckr);
}

interface KeyPair {
  privateKey: Pkcs11Handle;
  publicKey: Pkcs11Handle;
}

type WorkerRequest = { kind: 'sign'; id: number; digest: Buffer } | { kind: 'op'; id: number; op: string; args: unknown };

/** Results per message to the parent at most (see post). */
const RESULTS_PER_MESSAGE = 8;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function findObjects(api: pkcs11js.PKCS11, session: Pkcs11Handle, template: pkcs11js.Template, max: number): Pkcs11Handle[] {
  try {
    return findObjectsOn(api, session, template, max);
  } catch (err) {
    throw toHsmError(err, 'searching for keys');
  }
}

/** The attributes assertStrongCaKey judges (the same reading as Pkcs11Token.auditPrivateKey, on a pool session). */
function readAudit(api: pkcs11js.PKCS11, session: Pkcs11Handle, privateKey: Pkcs11Handle): PrivateKeyAudit {
  try {
    return readPrivateKeyAudit(api, session, privateKey);
  } catch (err) {
    throw toHsmError(err, 'reading key attributes');
  }
}

export class Pkcs11WorkerService {
  private library: Pkcs11Library | undefined;
  private slot: Pkcs11Handle | undefined;
  private pool: HsmSessionPool | undefined;
  private keys: KeyPair | undefined;
  private spki: Buffer | undefined;
  private readonly queue: WorkerRequest[] = [];
  private recovering = false;
  private stopping = false;
  /** UTF-8 PIN bytes; only this thread holds them. */
  private readonly pinBytes: Uint8Array | undefined;

  constructor(
    private readonly config: Pkcs11WorkerConfig,
    private readonly port: Pick<MessagePort, 'postMessage'>,
    private readonly exit: (code: number) => void,
  ) {
    this.pinBytes = config.pin;
  }

  /** Results waiting to go to the parent in one message (see flushResults). */
  private results: Array<Extract<FromWorker, { type: 'results' }>['results'][number]> = [];

  /**
   * Results are collected while the queue is served and sent in one message at the end of the
   * pass (and after each named op, which may be long, so that signatures done before it are not
   * held back); any other message first sends what was collected, so the order is kept.
   */
  private post(msg: FromWorker): void {
    if (msg.type === 'signed' || msg.type === 'sign-failed' || msg.type === 'op-done' || msg.type === 'op-failed') {
      this.results.push(msg);
      // Sent in groups, so that the first signatures' issuances go on while the rest are made
      // (not the whole queue's worth at the end of the pass).
      if (this.results.length >= RESULTS_PER_MESSAGE) this.flushResults();
      return;
    }
    this.flushResults();
    this.port.postMessage(msg);
  }

  private flushResults(): void {
    if (this.results.length === 0) return;
    const results = this.results;
    this.results = [];
    this.port.postMessage(results.length === 1 ? results[0]! : ({ type: 'results', results } satisfies FromWorker));
  }

  /** The PIN as the string pkcs11js wants. JS strings cannot be zeroised: this one is used for one C_Login and dropped. */
  private pin(): string | undefined {
    return this.pinBytes ? new TextDecoder().decode(this.pinBytes) : undefined;
  }

  start(): void {
    const c = this.config;
    try {
      const library = Pkcs11Library.open(c.module);
      this.library = library;
      if (c.reinitialise) this.reinitialise();
      this.slot = this.findSlot();
      const have = new Set(library.mechanisms(this.slot));
      const missing = c.requiredMechanisms.filter((name) => {
        const value = (pkcs11js as unknown as Record<string, unknown>)[name];
        return typeof value !== 'number' || !have.has(value);
      });
      if (missing.length > 0) {
        throw new HsmError('HSM_MECHANISM_MISSING', `The HSM token ${c.tokenLabel} lacks mechanisms the station needs: ${missing.join(', ')}.`, {
          details: { token: c.tokenLabel, missing: missing.join(',') },
        });
      }
      this.pool = this.openPool();
      if (!c.reinitialise) this.closeStaleSessions();
      this.findKeys();
      this.post({
        type: 'ready',
        generation: c.generation,
        spki: this.spki!,
        sessionsHex: this.pool.handles().map((h) => h.toString('hex')),
        reinitialised: c.reinitialise,
      });
    } catch (err) {
      this.post({ type: 'start-failed', generation: c.generation, error: toWireError(toHsmError(err, 'starting the PKCS#11 worker')) });
      this.pool?.closeAll();
      this.exit(1);
    }
  }

  private reinitialise(): void {
    const api = this.library!.api;
    try {
      api.C_Finalize();
    } catch {
      // not initialised (a failed earlier re-initialisation): nothing to finalise
    }
    try {
      api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (!(isPkcs11Error(err) && ckrName(err.code) === 'CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw toHsmError(err, `re-initialising ${this.config.module}`);
    }
  }

  private findSlot(): Pkcs11Handle {
    const token = this.library!.findToken(this.config.tokenLabel);
    if (!token) {
      throw new HsmError('HSM_TOKEN_ABSENT', `No HSM token labelled "${this.config.tokenLabel}" was found in ${this.config.module}.`, {
        retryable: true,
        details: { token: this.config.tokenLabel },
      });
    }
    return token.slot;
  }

  private openPool(): HsmSessionPool {
    const pool = new HsmSessionPool(this.library!.api, this.config.sessions);
    pool.open(this.slot!, this.config.tokenLabel, this.pin());
    return pool;
  }

  /** Sessions a killed predecessor left open; closed after ours are open, so the login survives. */
  private closeStaleSessions(): void {
    const own = new Set(this.pool!.handles().map((h) => h.toString('hex')));
    for (const hex of this.config.staleSessionsHex) {
      if (!own.has(hex)) this.pool!.closeQuietly(Buffer.from(hex, 'hex'));
    }
  }

  private findKeys(): void {
    const c = this.config;
    const api = this.library!.api;
    this.pool!.withSession((session) => {
      const by: pkcs11js.Template = [{ type: pkcs11js.CKA_LABEL, value: c.keyLabel }];
      if (c.keyIdHex !== undefined) by.push({ type: pkcs11js.CKA_ID, value: Buffer.from(c.keyIdHex, 'hex') });
      const what = `"${c.keyLabel}"${c.keyIdHex !== undefined ? ` (id ${c.keyIdHex})` : ''}`;
      const privs = findObjects(api, session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, ...by], 2);
      if (privs.length > 1) throw new HsmError('HSM_KEY_AMBIGUOUS', `Token ${c.tokenLabel} holds more than one private key ${what}.`);
      const pubs = findObjects(api, session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY }, ...by], 2);
      if (privs.length === 0 || pubs.length === 0) {
        throw new HsmError('HSM_KEY_NOT_FOUND', `The key ${what} is not on token ${c.tokenLabel}.`, { details: { token: c.tokenLabel, key: c.keyLabel } });
      }
      if (c.auditCaKey) assertStrongCaKey(c.keyLabel, readAudit(api, session, privs[0]!));
      const spki = readP256PublicKeySpki(api, session, pubs[0]!);
      if (this.spki && !spki.equals(this.spki)) {
        throw new HsmError('HSM_KEY_CHANGED', `The key ${what} on token ${c.tokenLabel} is not the key this run started with.`, { details: { token: c.tokenLabel } });
      }
      this.spki = spki;
      this.keys = { privateKey: privs[0]!, publicKey: pubs[0]! };
    });
  }

  onMessage(msg: ToWorker): void {
    switch (msg.type) {
      case 'batch':
        for (const r of msg.requests) {
          if (r.type === 'sign') this.enqueueSign({ kind: 'sign', id: r.id, digest: Buffer.from(r.digest) });
          else this.queue.push({ kind: 'op', id: r.id, op: r.op, args: r.args });
        }
        if (!this.recovering) this.pumpOrRecover();
        return;
      case 'sign':
        this.enqueueSign({ kind: 'sign', id: msg.id, digest: Buffer.from(msg.digest) });
        if (!this.recovering) this.pumpOrRecover();
        return;
      case 'op':
        this.queue.push({ kind: 'op', id: msg.id, op: msg.op, args: msg.args });
        if (!this.recovering) this.pumpOrRecover();
        return;
      case 'stop':
        this.stop();
        return;
      case 'crash':
        if (this.config.testHooks) {
          setImmediate(() => {
            throw new Error('PKCS#11 worker crash requested by a test hook');
          });
        }
        return;
    }
  }

  private stop(): void {
    this.stopping = true;
    this.pool?.closeAll();
    this.post({ type: 'stopped', generation: this.config.generation });
    this.exit(0);
  }

  private signOne(digest: Buffer): Buffer {
    const api = this.library!.api;
    const key = this.keys!.privateKey;
    return this.pool!.withSession((session) => {
      try {
        api.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, key);
        return api.C_Sign(session, digest, Buffer.alloc(132));
      } catch (err) {
        throw toHsmError(err, 'signing');
      }
    });
  }

  private runOp(op: string, args: unknown): unknown {
    const handler = findWorkerOp(op);
    return this.pool!.withSession((session) => handler({ api: this.library!.api, session, slot: this.slot!, tokenLabel: this.config.tokenLabel }, args));
  }

  /**
   * Serve the queue in order. Returns the error that calls for recovery (its request stays at
   * the head of the queue), or undefined when the queue is empty.
   */
  private pump(): HsmError | undefined {
    try {
      return this.serveQueue();
    } finally {
      this.flushResults();
    }
  }

  /**
   * Signatures go ahead of named ops that have not started (signs stay in order among
   * themselves, ops among themselves): a signature takes ~60 µs, an op may take hundreds of ms
   * (a chunk of prepared keys), and a device on the line or a certificate in flight waits for
   * its signature. Callers never rely on order between a signature and an op: each awaits what
   * it depends on. During recovery the head (the request that failed) keeps its place.
   */
  private enqueueSign(req: Extract<WorkerRequest, { kind: 'sign' }>): void {
    const from = this.recovering ? 1 : 0;
    let at = this.queue.length;
    for (let i = from; i < this.queue.length; i++) {
      if (this.queue[i]!.kind === 'op') {
        at = i;
        break;
      }
    }
    this.queue.splice(at, 0, req);
  }

  /** A pass over the queue stopped after a named op, to let requests that came meanwhile in. */
  private continuationScheduled = false;

  private serveQueue(): HsmError | undefined {
    while (this.queue.length > 0 && !this.stopping) {
      const req = this.queue[0]!;
      try {
        if (req.kind === 'sign') {
          const raw = this.signOne(req.digest);
          this.queue.shift();
          this.post({ type: 'signed', id: req.id, raw });
        } else {
          const result = this.runOp(req.op, req.args);
          this.queue.shift();
          this.post({ type: 'op-done', id: req.id, result });
          this.flushResults();
          // Let the messages that came during the op in (signatures go first), then go on.
          if (this.queue.length > 0 && !this.continuationScheduled) {
            this.continuationScheduled = true;
            setImmediate(() => {
              this.continuationScheduled = false;
              if (!this.recovering && !this.stopping) this.pumpOrRecover();
            });
          }
          return undefined;
        }
      } catch (err) {
        const e = toHsmError(err, req.kind === 'sign' ? 'signing' : `running ${req.op}`);
        if (isRecoverable(e)) return e;
        this.queue.shift();
        this.post(req.kind === 'sign' ? { type: 'sign-failed', id: req.id, error: toWireError(e) } : { type: 'op-failed', id: req.id, error: toWireError(e) });
      }
    }
    return undefined;
  }

  private pumpOrRecover(): void {
    const failure = this.pump();
    if (failure) void this.recover(failure);
  }

  /**
   * Open a new pool and log in, then close the old one (in that order, so that a login state
   * held by the old sessions is not lost in between), then find the keys again: old handles
   * are invalid after a token reset.
   */
  private reconnect(): void {
    const old = this.pool;
    this.slot = this.findSlot();
    this.pool = this.openPool();
    old?.closeAll();
    this.findKeys();
  }

  private async recover(trigger: HsmError): Promise<void> {
    this.recovering = true;
    const c = this.config;
    let last = trigger;
    for (let attempt = 1; attempt <= c.retries; attempt++) {
      this.post({ type: 'recovering', generation: c.generation, attempt, of: c.retries, error: toWireError(last) });
      await sleep(c.retryBackoffMs * 2 ** (attempt - 1));
      if (this.stopping) return;
      try {
        this.reconnect();
      } catch (err) {
        last = toHsmError(err, 're-opening the HSM sessions');
        continue;
      }
      const failure = this.pump();
      if (!failure) {
        this.recovering = false;
        this.post({ type: 'recovered', generation: c.generation, attempts: attempt, sessionsHex: this.pool!.handles().map((h) => h.toString('hex')) });
        // requests that arrived during the last backoff are already in the queue and were served by pump()
        return;
      }
      last = failure;
    }
    this.post({ type: 'gave-up', generation: c.generation, error: toWireError(last) });
    this.pool?.closeAll();
    this.exit(1);
  }
}

function main(port: MessagePort): void {
  const service = new Pkcs11WorkerService(workerData as Pkcs11WorkerConfig, port, (code) => process.exit(code));
  port.on('message', (msg: ToWorker) => service.onMessage(msg));
  service.start();
}

if (!isMainThread && parentPort && workerData && typeof (workerData as Partial<Pkcs11WorkerConfig>).module === 'string') {
  main(parentPort);
}
