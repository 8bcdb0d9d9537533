/** The run report, schema version 1 (contracts.md §3, docs/report.md, docs/report.schema.json). */
import type { StageName } from '../../core/errors';
import type { KeyOrigin, MethodId } from '../../core/method-id';

export type SyncState = 'pending' | 'delivered' | 'dead-lettered' | 'disabled';
export type StageStatus = 'ok' | 'failed' | 'skipped';

export interface StageReport {
  name: StageName;
  status: StageStatus;
  durationMs: number;
}

export interface DeviceReport {
  serial: string | null;
  status: 'passed' | 'failed';
  method: MethodId;
  port: string;
  hardwareId: string | null;
  macs: string[];
  keyOrigin: KeyOrigin | null;
  certificatePath: string | null;
  chainPath: string | null;
  dppUri: string | null;
  labelPngPath: string | null;
  labelZplPath: string | null;
  label: { state: 'printed' | 'pending' | 'failed'; reason?: string };
  error: null | { code: string; message: string; stage: StageName | null };
  disposition?: 'rework' | 'scrap';
  stages: StageReport[];
  sync: { masa: SyncState; supplyChain: SyncState };
  /** Method-specific fields (contracts.md §3). */
  seSerial?: string;
  seCertificatePath?: string;
  seChainPath?: string;
  manifestEntryId?: string;
  chipId?: string;
  preparedKeyId?: string;
  brski?: { voucher: 'verified' | 'rejected'; reason?: string; voucherPath?: string };
}

export interface RunReport {
  schemaVersion: 1;
  runId: string;
  stationId: string;
  startedAt: string;
  finishedAt: string;
  dataDir: string;
  workOrder: string;
  method: MethodId;
  counts: { total: number; passed: number; failed: number; labelPending: number };
  devices: DeviceReport[];
}

export function countDevices(devices: readonly DeviceReport[]): RunReport['counts'] {
  return {
    total: devices.length,
    passed: devices.filter((d) => d.status === 'passed').length,
    failed: devices.filter((d) => d.status === 'failed').length,
    labelPending: devices.filter((d) => d.status === 'passed' && d.label.state !== 'printed').length,
  };
}

/** A device report before anything is known: failed, no serial, nothing written. */
export function blankDeviceReport(port: string, method: MethodId): DeviceReport {
  return {
    serial: null,
    status: 'failed',
    method,
    port,
    hardwareId: null,
    macs: [],
    keyOrigin: null,
    certificatePath: null,
    chainPath: null,
    dppUri: null,
    labelPngPath: null,
    labelZplPath: null,
    label: { state: 'pending', reason: 'device failed' },
    error: null,
    stages: [],
    sync: { masa: 'disabled', supplyChain: 'disabled' },
  };
}
