/**
 * The GUI's sync panel over the station's outbox (docs/records-and-sync.md): the backlog across
 * the configured targets and each target's health, read from the database, polled every few
 * seconds so that the relay of a run (or of another process, `station sync drain`) shows up;
 * a change is pushed to subscribers only when the figures differ.
 */
import { existsSync } from 'node:fs';
import type { StationConfig } from '../../core/config';
import { SYNC_TARGET_NAMES, type SyncTargetName, type TargetStatus } from '../../manufacturer-db/outbox/outbox-store';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import type { ServiceHealth, SyncBacklog, SyncOverview } from '../contract/station-api';
import type { SyncStatusChange, SyncStatusSource } from '../api/sync-status-source';

export interface OutboxSyncStatusOptions {
  config: StationConfig;
  /** The station database (DATA/station.db). */
  databasePath: string;
  pollMs?: number;
  now?: () => Date;
}

function configuredTargets(config: StationConfig): SyncTargetName[] {
  const out: SyncTargetName[] = [];
  if (config.sync?.masa) out.push('masa');
  if (config.sync?.supplyChain) out.push('supply-chain');
  return out;
}

function health(t: TargetStatus, now: Date): ServiceHealth {
  if (t.state === 'paused') return { name: t.target, state: 'paused', detail: t.alert ?? 'the service refused the station (401/403); paused', checkedAt: now.toISOString() };
  if (t.pending > 0 && t.oldestPendingAgeMs !== null && t.oldestPendingAgeMs > 60_000) {
    return { name: t.target, state: 'down', detail: `${t.pending} record(s) waiting, the oldest for ${Math.round(t.oldestPendingAgeMs / 1000)} s`, checkedAt: now.toISOString() };
  }
  return {
    name: t.target,
    state: t.lastSuccessAt || t.delivered > 0 ? 'up' : 'unknown',
    detail: t.lastSuccessAt ? `last delivery ${t.lastSuccessAt}` : t.delivered > 0 ? `${t.delivered} record(s) delivered` : 'nothing delivered yet',
    checkedAt: now.toISOString(),
  };
}

export class OutboxSyncStatus implements SyncStatusSource {
  private readonly targets: SyncTargetName[];
  private readonly listeners = new Set<(change: SyncStatusChange) => void>();
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  private readonly now: () => Date;

  constructor(private readonly opts: OutboxSyncStatusOptions) {
    this.targets = configuredTargets(opts.config);
    this.now = opts.now ?? (() => new Date());
  }

  private read(): TargetStatus[] {
    if (!existsSync(this.opts.databasePath)) return [];
    const store = new SqliteRecordStore(openDatabase(this.opts.databasePath), this.opts.config.stationId);
    try {
      const now = this.now();
      return SYNC_TARGET_NAMES.filter((t) => this.targets.includes(t)).map((t) => store.outbox.status(t, now));
    } finally {
      store.close();
    }
  }

  overview(): SyncOverview {
    if (this.targets.length === 0) {
      return { wired: true, backlog: null, services: [], detail: 'No sync target is configured (sync.masa, sync.supplyChain): records stay in the station database.' };
    }
    const rows = this.read();
    const now = this.now();
    const ages = rows.map((r) => r.oldestPendingAgeMs).filter((a): a is number => a !== null);
    const backlog: SyncBacklog = {
      pending: rows.reduce((n, r) => n + r.pending, 0),
      deadLettered: rows.reduce((n, r) => n + r.deadLettered, 0),
      oldestPendingAgeS: ages.length > 0 ? Math.round(Math.max(...ages) / 1000) : null,
    };
    return { wired: true, backlog, services: rows.map((r) => health(r, now)), detail: `outbox of ${this.opts.databasePath}` };
  }

  subscribe(listener: (change: SyncStatusChange) => void): () => void {
    this.listeners.add(listener);
    if (!this.timer && this.targets.length > 0) {
      this.timer = setInterval(() => this.poll(), this.opts.pollMs ?? 3000);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** Reads the figures and tells subscribers what changed (public for tests). */
  poll(): void {
    let o: SyncOverview;
    try {
      o = this.overview();
    } catch {
      return; // a busy or missing database: the next poll tries again
    }
    const key = JSON.stringify({ b: o.backlog, s: o.services.map((s) => [s.name, s.state, s.detail]) });
    if (key === this.last) return;
    this.last = key;
    for (const l of this.listeners) {
      if (o.backlog) l({ kind: 'backlog', backlog: o.backlog });
      for (const s of o.services) l({ kind: 'service', service: s });
    }
  }
}
