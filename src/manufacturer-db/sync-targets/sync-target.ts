/**
 * A service the station's outbox delivers signed device records to (docs/sync-api.md): the MASA
 * or the supply-chain service. `send` posts one bulk batch and classifies the answer the way
 * contracts.md §5 needs it; it never throws for a network, TLS or HTTP failure (those are
 * results), only for a programming error.
 */
import type { RecordOutcome, SignedDeviceRecord } from '../../core/device-record';
import type { SyncTargetName } from '../outbox/outbox-store';

export type SendResult =
  /** 200: the batch was read; one outcome per record (stored, duplicate, conflict, rejected). */
  | { kind: 'ok'; results: RecordOutcome[] }
  /** Network or TLS error, timeout, 408, 429, 5xx, or an unreadable answer: send again later. */
  | { kind: 'retry'; error: string; retryAfterMs?: number }
  /** 400 (or a whole-request 409/422): the request itself is refused; the relay isolates the bad record. */
  | { kind: 'invalid'; status: number; error: string }
  /** 401 / 403: this station is not (or no longer) allowed; the relay pauses the target. */
  | { kind: 'unauthorized'; status: number; error: string };

export interface SyncTarget {
  readonly name: SyncTargetName;
  /** For messages: where it sends (no credentials in it). */
  readonly url: string;
  send(records: readonly SignedDeviceRecord[], signal?: AbortSignal): Promise<SendResult>;
  close(): void;
}
