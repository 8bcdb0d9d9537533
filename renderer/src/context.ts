/** What every view gets from the app shell. */
import type { SessionInfo, StationApi, StationStatus } from '../../src/station/contract/station-api';

export type ViewName = 'line' | 'work-order' | 'devices' | 'audit' | 'status';

export interface AppContext {
  api: StationApi;
  session(): SessionInfo | null;
  status(): StationStatus | null;
  /** A one-line message in the status area (announced to screen readers). */
  notify(text: string, kind?: 'info' | 'error' | 'ok'): void;
  /** Runs a command; a refusal or error goes to the message area and resolves undefined. */
  attempt<T>(fn: () => Promise<T>, success?: (value: T) => string): Promise<T | undefined>;
  show(view: ViewName, focus?: boolean): void;
  refreshStatus(): Promise<void>;
}
