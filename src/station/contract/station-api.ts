/**
 * StationApi: the one contract between the operator GUI (renderer) and the station. Two hosts
 * carry it: Electron IPC through the preload (`window.station`) and the local HTTP + WebSocket
 * bridge (`station gui`). The renderer imports only these types (`import type`).
 *
 * Every command takes one argument object and answers a promise; a refused or failed command
 * rejects with an `ApiError` (a stable code and a message an operator can act on). Events flow
 * the other way, one stream per connection (docs/gui.md).
 */
import type { StageName } from '../../core/errors';
import type { MethodId } from '../../core/method-id';
import type { CommandArgs, CommandName } from './commands';

export type Role = 'operator' | 'supervisor';

export interface SessionInfo {
  username: string;
  displayName: string;
  role: Role;
  /** The session ends after this many seconds without a command. */
  idleTimeoutS: number;
}

export interface ApiErrorInfo {
  code: string;
  message: string;
}

export interface WorkOrderSummary {
  id: string;
  product: string;
  model: string;
  method: MethodId;
  /** First and last serial of the block, formatted. */
  serialFirst: string;
  serialLast: string;
  /** The next serial the station will give, or null when the block is not in the database yet. */
  nextSerial: string | null;
  /** Serials left in the block, or null when not known yet. */
  remaining: number | null;
  owner: string | null;
}

/** What a failed device's tile says: the code, the stage and what to do about it. */
export interface FailureInfo {
  code: string;
  stage: StageName | null;
  /** The station's message (names the port and what went wrong). */
  message: string;
  /** What the operator does next, in words (operator-advice.ts). */
  action: string;
  /** Whether Retry on this port can help. */
  retryable: boolean;
}

export type TileState = 'idle' | 'running' | 'passed' | 'failed';

/** One port on the operator's screen. */
export interface PortTile {
  port: string;
  /** Short name for the screen ("Port 1"). */
  name: string;
  state: TileState;
  serial: string | null;
  hardwareId: string | null;
  stage: StageName | null;
  stagesDone: number;
  stagesTotal: number;
  failure: FailureInfo | null;
  label: 'printed' | 'pending' | null;
}

export interface ThroughputBucket {
  /** Start of the bucket (ISO time). */
  at: string;
  passed: number;
  failed: number;
}

export interface ShiftStats {
  startedAt: string;
  passed: number;
  failed: number;
  /** passed / (passed + failed), or null before the first device. */
  yield: number | null;
  bucketMinutes: number;
  buckets: ThroughputBucket[];
}

export type HsmState = 'ready' | 'pin-required' | 'starting' | 'unavailable';

export interface HsmStatus {
  state: HsmState;
  detail: string;
}

export type RunState = 'idle' | 'running' | 'stopping';

export interface StationStatus {
  stationId: string;
  /** The ports are simulated devices (`station gui --simulate N`). */
  simulated: boolean;
  /** The simulator's fault spec in force (simulated lines only). */
  simulatorFaults: string | null;
  workOrder: WorkOrderSummary | null;
  run: { state: RunState; runId: string | null };
  hsm: HsmStatus;
  tiles: PortTile[];
  shift: ShiftStats;
}

export type DeviceStatus = 'assigned' | 'issued' | 'verified' | 'passed' | 'failed';

export interface DeviceSummary {
  serial: string;
  status: DeviceStatus;
  workOrderId: string;
  model: string | null;
  hardwareId: string | null;
  port: string | null;
  labelState: 'none' | 'pending' | 'printed' | 'failed';
  errorCode: string | null;
  disposition: 'rework' | 'scrap' | null;
  updatedAt: string;
}

export interface DeviceStageRow {
  runId: string;
  name: string;
  status: string;
  durationMs: number;
}

export interface LabelPrintRow {
  at: string;
  kind: 'first' | 'retry' | 'reprint';
  operator: string | null;
  reason: string | null;
  printer: string;
  result: 'printed' | 'failed';
  errorCode: string | null;
}

export interface DeviceDetail extends DeviceSummary {
  runId: string;
  method: MethodId;
  macs: string[];
  firmwareVersion: string | null;
  keyOrigin: string | null;
  dppUri: string | null;
  certificateSerial: string | null;
  certificateStatus: 'active' | 'void' | null;
  certificatePem: string | null;
  error: { code: string; message: string; stage: string | null } | null;
  labelReason: string | null;
  stages: DeviceStageRow[];
  labelPrints: LabelPrintRow[];
  audit: AuditEntry[];
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface AuditEntry {
  seq: number;
  at: string;
  type: string;
  serial: string | null;
  data: { [key: string]: JsonValue };
}

export interface AuditView {
  entries: AuditEntry[];
  /** The hash chain checked end to end when the view was made. */
  chain: { ok: boolean; events: number; firstBreak: { seq: number; reason: string } | null };
}

export interface PrinterStatusInfo {
  description: string;
  ready: boolean;
  faults: string[];
  detail: string;
  checkedAt: string;
}

export interface LabelPreview {
  serial: string;
  /** The label as SVG, rendered from the committed record. */
  svg: string;
}

export interface SyncBacklog {
  pending: number;
  deadLettered: number;
  /** The oldest undelivered record's age in seconds (pitfalls 20: show record age). */
  oldestPendingAgeS: number | null;
}

export interface ServiceHealth {
  /** "masa", "supply-chain", ... */
  name: string;
  state: 'up' | 'down' | 'paused' | 'unknown';
  detail: string;
  checkedAt: string | null;
}

export interface SyncOverview {
  /** False while no outbox is wired into this station: backlog is null and services empty. */
  wired: boolean;
  backlog: SyncBacklog | null;
  services: ServiceHealth[];
  detail: string;
}

export interface ReprintResult {
  serial: string;
  state: 'printed' | 'pending';
  reason: string | null;
}

/** What each command answers. */
export interface CommandResults {
  signIn: SessionInfo;
  signOut: { signedOut: true };
  whoAmI: SessionInfo | null;
  status: StationStatus;
  listWorkOrders: WorkOrderSummary[];
  selectWorkOrder: StationStatus;
  startRun: { runId: string | null; ports: string[] };
  stopRun: { stopping: boolean };
  retryDevice: { port: string };
  setSimulatorFaults: StationStatus;
  listDevices: DeviceSummary[];
  getDevice: DeviceDetail;
  reworkDevice: DeviceSummary;
  retireSerial: DeviceSummary;
  reprintLabel: ReprintResult;
  labelPreview: LabelPreview;
  printerStatus: PrinterStatusInfo;
  auditEvents: AuditView;
  syncStatus: SyncOverview;
  enterHsmPin: HsmStatus;
}

/** The event stream. Tile-bearing events carry the tile's new state whole (fixed-size tiles). */
export type StationEvent =
  | { type: 'port.appeared'; port: string; tile: PortTile }
  | { type: 'port.gone'; port: string }
  /** A tile changed outside a stage or device event (waiting for a device, back to idle). */
  | { type: 'tile.changed'; port: string; tile: PortTile }
  | { type: 'run.started'; runId: string; ports: string[]; total: number }
  | { type: 'run.finished'; runId: string | null; counts: { total: number; passed: number; failed: number; labelPending: number }; stopReason: string | null }
  | { type: 'stage.started'; port: string; serial: string | null; stage: StageName; tile: PortTile }
  | { type: 'stage.finished'; port: string; serial: string | null; stage: StageName; status: 'ok' | 'failed' | 'skipped'; durationMs: number; tile: PortTile }
  | { type: 'device.passed'; port: string; serial: string; tile: PortTile; shift: ShiftStats }
  | { type: 'device.failed'; port: string; serial: string | null; failure: FailureInfo; tile: PortTile; shift: ShiftStats }
  | { type: 'label.printed'; serial: string; state: 'printed' | 'pending'; kind: 'first' | 'retry' | 'reprint'; reason: string | null }
  | { type: 'sync.backlog-changed'; backlog: SyncBacklog }
  | { type: 'service.health-changed'; service: ServiceHealth }
  | { type: 'hsm.changed'; hsm: HsmStatus }
  | { type: 'work-order.selected'; workOrder: WorkOrderSummary }
  | { type: 'session.ended'; reason: 'signed-out' | 'inactivity' };

export type StationEventType = StationEvent['type'];

/** The API as the renderer sees it (window.station, or the bridge client). */
export type StationApi = {
  [K in CommandName]: (args: CommandArgs[K]) => Promise<CommandResults[K]>;
} & {
  /** Subscribe to the event stream; returns the unsubscribe function. */
  onEvent(listener: (event: StationEvent) => void): () => void;
};
