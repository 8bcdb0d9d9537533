/**
 * Electron IPC channels, `domain:verb`, one `as const` map per domain (style.md). Each command
 * of StationApi has exactly one invoke channel; events come on `station:event`.
 */
import type { CommandName } from './commands';

export const SessionChannels = { signIn: 'session:sign-in', signOut: 'session:sign-out', whoAmI: 'session:who-am-i' } as const;
export const LineChannels = {
  status: 'line:status',
  startRun: 'line:start-run',
  stopRun: 'line:stop-run',
  retryDevice: 'line:retry-device',
  setSimulatorFaults: 'line:set-simulator-faults',
} as const;
export const WorkOrderChannels = { listWorkOrders: 'work-orders:list', selectWorkOrder: 'work-orders:select' } as const;
export const DeviceChannels = { listDevices: 'devices:list', getDevice: 'devices:get', reworkDevice: 'devices:rework', retireSerial: 'devices:retire' } as const;
export const LabelChannels = { reprintLabel: 'labels:reprint', labelPreview: 'labels:preview', printerStatus: 'labels:printer-status' } as const;
export const AuditChannels = { auditEvents: 'audit:list' } as const;
export const SyncChannels = { syncStatus: 'sync:status' } as const;
export const HsmChannels = { enterHsmPin: 'hsm:enter-pin' } as const;

/** Command -> invoke channel; the type checker makes sure every command has one. */
export const COMMAND_CHANNELS: { readonly [K in CommandName]: string } = {
  ...SessionChannels,
  ...LineChannels,
  ...WorkOrderChannels,
  ...DeviceChannels,
  ...LabelChannels,
  ...AuditChannels,
  ...SyncChannels,
  ...HsmChannels,
};

/** Main -> renderer: one StationEvent per message. */
export const EVENT_CHANNEL = 'station:event' as const;

/** What an invoke handler answers over IPC (errors travel as data: Electron flattens thrown errors). */
export type IpcReply<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };
