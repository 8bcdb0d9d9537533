/**
 * OutboxRelay: delivers the outbox to each sync target (contracts.md §5, docs/sync-api.md,
 * docs/records-and-sync.md). One loop per target, in the background; never stops the line.
 *
 * - Bulk: up to `batchSize` due rows per request, oldest first, never a device's later record
 *   before its earlier one is delivered (OutboxStore.due).
 * - 200: stored / duplicate -> delivered; conflict / rejected -> dead-lettered with the reason; a
 *   record the answer does not mention -> retried.
 * - Network and TLS errors, timeouts, 408, 429, 5xx -> every row of the batch is retried with
 *   exponential backoff (and at least Retry-After).
 * - 400 (or a whole-request 409/422): a batch of more than one record is split and each record
 *   sent alone once, so one bad record cannot poison its neighbours; a record refused alone is
 *   dead-lettered.
 * - 401 / 403: the target is paused with an alert (OutboxStore.pauseTarget), nothing is
 *   dead-lettered; the relay probes it again every `pauseProbeMs` with one batch and resumes on
 *   success.
 *
 * At least once: a record may be sent again (a lost answer); the target stores it once by its
 * idempotency key.
 */
import type { RecordOutcome } from '../../core/device-record';
import type { SendResult, SyncTarget } from '../sync-targets/sync-target';
import type { OutboxItem, OutboxStore, SyncTargetName } from './outbox-store';

export interface RetryPolicy {
  /** First retry delay. */
  initialMs: number;
  /** Cap of the delay. */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
}

export interface OutboxRelayOptions {
  batchSize?: number;
  retry?: Partial<RetryPolicy>;
  /** While a target is paused (401/403), how often to try it again. Default 30 s. */
  pauseProbeMs?: number;
  /** Milliseconds since the epoch; tests inject a clock. */
  now?: () => number;
  onEvent?: (event: RelayEvent) => void;
}

export type RelayEvent =
  | { type: 'sent'; target: SyncTargetName; records: number; delivered: number; deadLettered: number; retried: number }
  | { type: 'retry'; target: SyncTargetName; records: number; error: string; delayMs: number }
  | { type: 'paused'; target: SyncTargetName; alert: string }
  | { type: 'resumed'; target: SyncTargetName };

export const DEFAULT_RETRY: RetryPolicy = { initialMs: 1000, maxMs: 5 * 60_000, factor: 2 };

export function backoffMs(policy: RetryPolicy, attempts: number): number {
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, attempts));
}

export interface DrainResult {
  drained: boolean;
  pending: Record<SyncTargetName, number>;
}

interface TargetLoop {
  target: SyncTarget;
  running: Promise<void> | undefined;
  wake: (() => void) | undefined;
  timer: NodeJS.Timeout | undefined;
  probeAt: number;
}

export class OutboxRelay {
  private readonly batchSize: number;
  private readonly retry: RetryPolicy;
  private readonly pauseProbeMs: number;
  private readonly now: () => number;
  private readonly onEvent: (e: RelayEvent) => void;
  private readonly loops: TargetLoop[];
  private stopped = true;

  constructor(
    private readonly outbox: OutboxStore,
    targets: readonly SyncTarget[],
    options: OutboxRelayOptions = {},
  ) {
    this.batchSize = Math.max(1, Math.min(1000, options.batchSize ?? 200));
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.pauseProbeMs = options.pauseProbeMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent ?? (() => undefined);
    this.loops = targets.map((target) => ({ target, running: undefined, wake: undefined, timer: undefined, probeAt: 0 }));
  }

  get targetNames(): SyncTargetName[] {
    return this.loops.map((l) => l.target.name);
  }

  /** Start delivering in the background. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const loop of this.loops) loop.running = this.loop(loop);
  }

  /** New rows were queued: deliver them now rather than at the next timer. */
  kick(): void {
    for (const loop of this.loops) this.wake(loop);
  }

  /** Stop the loops after their current request. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await Promise.all(this.loops.map((l) => l.running));
    for (const l of this.loops) l.running = undefined;
  }

  close(): void {
    for (const l of this.loops) l.target.close();
  }

  /**
   * Wait until nothing deliverable is pending for any target (rows held behind a dead letter of
   * the same device do not count), or `timeoutMs` has passed. Starts the loops when needed.
   */
  async drain(timeoutMs: number, signal?: AbortSignal): Promise<DrainResult> {
    const wasStopped = this.stopped;
    this.start();
    this.kick();
    const deadline = Date.now() + timeoutMs;
    const movable = () => this.loops.reduce((n, l) => n + this.outbox.movablePendingCount(l.target.name), 0);
    while (movable() > 0 && Date.now() < deadline && !signal?.aborted) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
    const pending = { masa: 0, 'supply-chain': 0 } as Record<SyncTargetName, number>;
    for (const l of this.loops) pending[l.target.name] = this.outbox.pendingCount(l.target.name);
    const drained = movable() === 0;
    if (wasStopped) await this.stop();
    return { drained, pending };
  }

  /** One delivery round for one target: one batch (or its isolation). Returns the rows sent. */
  async deliverOnce(name: SyncTargetName): Promise<number> {
    const loop = this.loops.find((l) => l.target.name === name);
    if (!loop) return 0;
    return this.round(loop);
  }

  private wake(loop: TargetLoop): void {
    if (loop.timer) {
      clearTimeout(loop.timer);
      loop.timer = undefined;
    }
    const w = loop.wake;
    loop.wake = undefined;
    w?.();
  }

  private sleep(loop: TargetLoop, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      loop.wake = resolve;
      loop.timer = setTimeout(() => {
        loop.timer = undefined;
        loop.wake = undefined;
        resolve();
      }, Math.max(1, Math.min(ms, 60_000)));
      // A relay never keeps the process alive on its own.
      loop.timer.unref();
    });
  }

  private async loop(loop: TargetLoop): Promise<void> {
    while (!this.stopped) {
      let sent = 0;
      try {
        sent = await this.round(loop);
      } catch {
        // A database error (busy, disk full): try again later; the line is not stopped for sync.
        sent = 0;
        await this.sleep(loop, this.retry.initialMs);
        continue;
      }
      if (this.stopped) break;
      if (sent > 0) continue;
      const name = loop.target.name;
      const paused = this.outbox.targetState(name).state === 'paused';
      const next = paused ? loop.probeAt : this.outbox.nextDueAt(name);
      await this.sleep(loop, next === undefined ? 60_000 : next - this.now());
    }
  }

  private async round(loop: TargetLoop): Promise<number> {
    const name = loop.target.name;
    const now = this.now();
    const paused = this.outbox.targetState(name).state === 'paused';
    if (paused && now < loop.probeAt) return 0;
    const batch = this.outbox.due(name, now, paused ? 1 : this.batchSize);
    if (batch.length === 0) return 0;
    const result = await loop.target.send(batch.map((b) => b.record));
    if (result.kind === 'unauthorized') {
      const alert = `${name} refused this station (HTTP ${result.status}) at ${loop.target.url}: check the station certificate and the service's station CA. ${result.error}`.slice(0, 600);
      this.outbox.pauseTarget(name, alert);
      loop.probeAt = this.now() + this.pauseProbeMs;
      this.onEvent({ type: 'paused', target: name, alert });
      return 0;
    }
    if (paused) {
      this.outbox.resumeTarget(name);
      this.onEvent({ type: 'resumed', target: name });
    }
    if (result.kind === 'invalid' && batch.length > 1) {
      // Isolate: each record alone, once.
      let sent = 0;
      for (const item of batch) {
        const alone = await loop.target.send([item.record]);
        this.apply(loop, [item], alone, true);
        sent++;
        if (alone.kind === 'unauthorized') break;
      }
      return sent;
    }
    this.apply(loop, batch, result, false);
    return batch.length;
  }

  private apply(loop: TargetLoop, batch: readonly OutboxItem[], result: SendResult, isolated: boolean): void {
    const name = loop.target.name;
    const now = this.now();
    const delivered: number[] = [];
    const dead: { id: number; reason: string }[] = [];
    const retry: { id: number; error: string; nextAttemptAt: number }[] = [];
    const later = (item: OutboxItem, error: string, atLeastMs = 0) => {
      const delayMs = Math.max(atLeastMs, backoffMs(this.retry, item.attempts));
      retry.push({ id: item.id, error: error.slice(0, 500), nextAttemptAt: now + delayMs });
      return delayMs;
    };
    switch (result.kind) {
      case 'ok': {
        const byKey = new Map<string, RecordOutcome>(result.results.map((r) => [r.idempotencyKey, r]));
        for (const item of batch) {
          const r = byKey.get(item.idempotencyKey);
          if (!r) later(item, 'the service did not answer for this record');
          else if (r.status === 'stored' || r.status === 'duplicate') delivered.push(item.id);
          else dead.push({ id: item.id, reason: `${r.status}${r.reason ? `: ${r.reason}` : ''}`.slice(0, 500) });
        }
        break;
      }
      case 'retry': {
        let delayMs = 0;
        for (const item of batch) delayMs = later(item, result.error, result.retryAfterMs ?? 0);
        this.onEvent({ type: 'retry', target: name, records: batch.length, error: result.error, delayMs });
        break;
      }
      case 'invalid':
        // Alone (or a batch of one): this record is what the service refuses.
        for (const item of batch) dead.push({ id: item.id, reason: `HTTP ${result.status}${isolated || batch.length === 1 ? '' : ' (batch)'}: ${result.error}`.slice(0, 500) });
        break;
      case 'unauthorized': {
        const alert = `${name} refused this station (HTTP ${result.status}) at ${loop.target.url}. ${result.error}`.slice(0, 600);
        this.outbox.pauseTarget(name, alert);
        loop.probeAt = now + this.pauseProbeMs;
        this.onEvent({ type: 'paused', target: name, alert });
        return;
      }
    }
    this.outbox.applyOutcome(name, { delivered, dead, retry });
    this.onEvent({ type: 'sent', target: name, records: batch.length, delivered: delivered.length, deadLettered: dead.length, retried: retry.length });
  }
}
