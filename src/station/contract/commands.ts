/**
 * The commands of StationApi: the argument schema of each (zod; every inbound message is
 * validated against it by both hosts before anything runs) and the role it needs.
 * `none` = allowed before sign-in; `operator` = any signed-in user; `supervisor` = supervisors only.
 */
import { z } from 'zod';

export const USERNAME = /^[a-z][a-z0-9_.-]{0,31}$/;
export const SERIAL = /^[A-Za-z0-9\-.:]{1,64}$/;
export const WORK_ORDER_ID = /^[A-Za-z0-9_.\-]{1,64}$/;
export const PIN_MIN = 4;
export const PIN_MAX = 64;

const NoArgs = z.object({}).strict();
const Port = z.string().min(1).max(512).refine((p) => !p.includes('\0'), 'no NUL characters');
const Reason = z.string().trim().min(3, 'give a reason of at least 3 characters').max(200);
const Pin = z.string().min(PIN_MIN, `at least ${PIN_MIN} characters`).max(PIN_MAX);

export const CommandSchemas = {
  signIn: z.object({ username: z.string().regex(USERNAME, 'lower-case letters, digits, ".", "_" or "-"'), pin: Pin }).strict(),
  signOut: NoArgs,
  whoAmI: NoArgs,
  status: NoArgs,
  listWorkOrders: NoArgs,
  selectWorkOrder: z.object({ workOrderId: z.string().regex(WORK_ORDER_ID) }).strict(),
  startRun: z
    .object({
      /** Devices in total; default one per port. */
      count: z.number().int().min(1).max(100_000).optional(),
      /** A subset of the line's ports; default all. */
      ports: z.array(Port).min(1).max(256).optional(),
    })
    .strict(),
  stopRun: NoArgs,
  retryDevice: z.object({ port: Port }).strict(),
  /** Simulated lines only: the fault spec (docs/simulator.md); "" clears every fault. */
  setSimulatorFaults: z.object({ spec: z.string().max(400).regex(/^[0-9A-Za-z=,:+_\- ]*$/, 'a fault spec such as 1=csr-wrong-serial') }).strict(),
  listDevices: z
    .object({
      /** Part of a serial, hardware id or work order; empty = the most recent devices. */
      query: z.string().max(64).regex(/^[A-Za-z0-9\-.:_ ]*$/, 'letters, digits, "-", ".", ":" and "_" only').optional(),
      limit: z.number().int().min(1).max(500).optional(),
    })
    .strict(),
  getDevice: z.object({ serial: z.string().regex(SERIAL) }).strict(),
  reworkDevice: z.object({ serial: z.string().regex(SERIAL), reason: Reason }).strict(),
  retireSerial: z.object({ serial: z.string().regex(SERIAL), reason: Reason }).strict(),
  reprintLabel: z.object({ serial: z.string().regex(SERIAL), reason: Reason }).strict(),
  labelPreview: z.object({ serial: z.string().regex(SERIAL) }).strict(),
  printerStatus: NoArgs,
  auditEvents: z
    .object({
      serial: z.string().regex(SERIAL).optional(),
      /** Only events with seq below this (paging back). */
      beforeSeq: z.number().int().min(1).optional(),
      limit: z.number().int().min(1).max(500).optional(),
    })
    .strict(),
  syncStatus: NoArgs,
  enterHsmPin: z.object({ pin: Pin }).strict(),
} as const;

export type CommandName = keyof typeof CommandSchemas;
export type CommandArgs = { [K in CommandName]: z.infer<(typeof CommandSchemas)[K]> };

export type RequiredRole = 'none' | 'operator' | 'supervisor';

export const COMMAND_ROLES: { readonly [K in CommandName]: RequiredRole } = {
  signIn: 'none',
  signOut: 'none',
  whoAmI: 'none',
  status: 'operator',
  listWorkOrders: 'operator',
  // an operator picks the shift's first work order; changing it afterwards is a supervisor's
  // action (checked by the service, which knows whether one is selected)
  selectWorkOrder: 'operator',
  startRun: 'operator',
  stopRun: 'operator',
  retryDevice: 'operator',
  setSimulatorFaults: 'operator',
  listDevices: 'operator',
  getDevice: 'operator',
  reworkDevice: 'supervisor',
  retireSerial: 'supervisor',
  reprintLabel: 'supervisor',
  labelPreview: 'operator',
  printerStatus: 'operator',
  auditEvents: 'operator',
  syncStatus: 'operator',
  enterHsmPin: 'operator',
};

export const COMMAND_NAMES = Object.keys(CommandSchemas) as CommandName[];

export function isCommandName(value: string): value is CommandName {
  return Object.prototype.hasOwnProperty.call(CommandSchemas, value);
}

export type ParsedArgs = { ok: true; command: CommandName; args: CommandArgs[CommandName] } | { ok: false; code: 'BAD_REQUEST'; message: string };

/** Validates one command's arguments; the message names the field, never echoes a PIN. */
export function parseCommandArgs(command: string, args: unknown): ParsedArgs {
  if (!isCommandName(command)) return { ok: false, code: 'BAD_REQUEST', message: `Unknown command "${command.slice(0, 64)}".` };
  const parsed = CommandSchemas[command].safeParse(args ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'arguments';
    return { ok: false, code: 'BAD_REQUEST', message: `Invalid ${command} request: ${where}: ${issue?.message ?? 'invalid'}.` };
  }
  return { ok: true, command, args: parsed.data as CommandArgs[CommandName] };
}
