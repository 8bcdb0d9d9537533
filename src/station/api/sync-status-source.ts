/**
 * Where the GUI's sync panel gets its figures: the outbox's backlog and the health of each sync
 * target (MASA, supply chain). The outbox/relay layer implements it and the GUI host passes it in;
 * until then the panel says "not wired" (StationApiService uses `notWiredSyncStatus`).
 */
import type { ServiceHealth, SyncBacklog, SyncOverview } from '../contract/station-api';

export type SyncStatusChange = { kind: 'backlog'; backlog: SyncBacklog } | { kind: 'service'; service: ServiceHealth };

export interface SyncStatusSource {
  overview(): SyncOverview;
  /** Changes as they happen (a record queued or delivered, a target down or back); returns unsubscribe. */
  subscribe(listener: (change: SyncStatusChange) => void): () => void;
}

export const notWiredSyncStatus: SyncStatusSource = {
  overview: () => ({
    wired: false,
    backlog: null,
    services: [],
    detail: 'No sync targets are wired into this station yet: records are kept in the station database only.',
  }),
  subscribe: () => () => undefined,
};
