/**
 * Faults the simulator can play, per port (docs/simulator.md):
 *
 *   --faults "0=silent,1=drop:GET_CSR,2=delay:IDENTIFY:4000,3=slow-se:2000+lock-refused"
 *
 * SPEC   = ENTRY ("," ENTRY)*
 * ENTRY  = PORT_INDEX "=" FAULT ("+" FAULT)*
 * FAULT  = NAME (":" ARG)*
 *
 * Two kinds. Firmware faults (no arguments) change what the device answers: they are played by
 * VirtualDevice. Link faults act on the frames of one command (or every command when none is
 * named) and are played by DeviceLink / DevicePort:
 *
 *   drop[:COMMAND]            every frame of COMMAND the station sends is lost before the device reads it
 *   corrupt[:COMMAND]         every frame the device sends for COMMAND has a bit flipped after its CRC was computed
 *   delay[:COMMAND]:MS        the device answers COMMAND MS ms late
 *   disconnect[:COMMAND]      the device goes away on COMMAND: it closes its end and the simulator ends the PTY pair
 *   wrong-seq[:COMMAND]       the device answers COMMAND with another sequence number
 *   slow-se:MS                every secure-element operation takes MS ms more
 *
 * COMMAND is a protocol v1 command name (GET_CSR, case-insensitive) or id (0x11). A fault applies
 * to every device presented on its port. The old syntax (`0=silent+readback-corrupt`) is a subset.
 */
import { Command, commandName } from '../device/protocol/commands';

/** Firmware faults: what the device answers is wrong (VirtualDevice plays them). */
export const FIRMWARE_FAULTS = [
  'silent', // never answers anything
  'csr-bad-signature', // CSR signature does not verify
  'csr-wrong-serial', // CSR subject serialNumber differs from the one asked for
  'challenge-wrong-key', // signs the challenge with a key other than its birth key
  'rekey-on-install', // buggy firmware: replaces its birth key once INSTALL_CHAIN is accepted
  'readback-corrupt', // returns a different DPP URI on read back
  'readback-corrupt-mud', // returns a different MUD URL on read back (the install step's extra items)
  'lock-refused', // LOCK fails (a flash write error)
  'mac-fixed', // the MACs are burned in (fuses): WRITE_ITEM MAC_ADDRESSES is refused with UNSUPPORTED
  'chip-unknown', // seed-derived: the chip is in no seed file the vendor kit wrote
  'chip-clone', // seed-derived: the device presents the chip of the previous device on its port again
  'seed-mismatch', // seed-derived: the chip was burned with a seed other than the one the vendor's file lists
] as const;

/** The firmware faults under their historical names (VirtualDevice takes a set of these). */
export const FAULTS = FIRMWARE_FAULTS;
export type Fault = (typeof FIRMWARE_FAULTS)[number];

/** Link faults: the frames themselves go wrong, or the device goes away or gets slow. */
export const LINK_FAULTS = ['drop', 'corrupt', 'delay', 'disconnect', 'wrong-seq', 'slow-se'] as const;
export type LinkFaultKind = (typeof LINK_FAULTS)[number];

export interface LinkFault {
  kind: LinkFaultKind;
  /** The command the fault targets; undefined = every command. */
  command?: number;
  /** delay and slow-se: milliseconds. */
  ms?: number;
}

/** The commands that run on the secure element (slow-se adds its latency to each). */
export const SE_COMMANDS: ReadonlySet<number> = new Set([
  Command.GENERATE_KEY,
  Command.GET_CSR,
  Command.SIGN_CHALLENGE,
  Command.READ_SE_INFO,
  Command.BUILD_VOUCHER_REQUEST,
]);

export interface PortFaults {
  firmware: Set<Fault>;
  link: LinkFault[];
}

export class FaultSpecError extends Error {}

const MAX_DELAY_MS = 600_000;

export function parseCommand(text: string): number {
  const upper = text.toUpperCase().replace(/-/g, '_');
  if (Object.prototype.hasOwnProperty.call(Command, upper)) return Command[upper as keyof typeof Command];
  if (/^0X[0-9A-F]{1,2}$/.test(upper)) {
    const id = Number.parseInt(upper.slice(2), 16);
    if ((Object.values(Command) as number[]).includes(id)) return id;
  }
  throw new FaultSpecError(`unknown command "${text}"; known: ${Object.keys(Command).join(', ')}`);
}

function parseMs(text: string, fault: string): number {
  if (!/^\d+$/.test(text)) throw new FaultSpecError(`bad fault "${fault}": "${text}" is not a whole number of milliseconds`);
  const ms = Number(text);
  if (ms > MAX_DELAY_MS) throw new FaultSpecError(`bad fault "${fault}": ${ms} ms is more than ${MAX_DELAY_MS} ms`);
  return ms;
}

/** One FAULT (`delay:IDENTIFY:4000`): a firmware fault name or a link fault. */
export function parseFault(text: string): Fault | LinkFault {
  const [name, ...args] = text.split(':');
  if ((FIRMWARE_FAULTS as readonly string[]).includes(name!)) {
    if (args.length > 0) throw new FaultSpecError(`bad fault "${text}": ${name} takes no arguments`);
    return name as Fault;
  }
  if (!(LINK_FAULTS as readonly string[]).includes(name!)) {
    throw new FaultSpecError(`unknown fault "${name}"; known: ${[...FIRMWARE_FAULTS, ...LINK_FAULTS].join(', ')}`);
  }
  const kind = name as LinkFaultKind;
  switch (kind) {
    case 'slow-se':
      if (args.length !== 1) throw new FaultSpecError(`bad fault "${text}": expected slow-se:MS`);
      return { kind, ms: parseMs(args[0]!, text) };
    case 'delay':
      if (args.length === 1 && /^\d+$/.test(args[0]!)) return { kind, ms: parseMs(args[0]!, text) };
      if (args.length === 2) return { kind, command: parseCommand(args[0]!), ms: parseMs(args[1]!, text) };
      throw new FaultSpecError(`bad fault "${text}": expected delay:COMMAND:MS or delay:MS`);
    default:
      if (args.length > 1) throw new FaultSpecError(`bad fault "${text}": expected ${kind}[:COMMAND]`);
      return args.length === 1 ? { kind, command: parseCommand(args[0]!) } : { kind };
  }
}

export function parseFaultSpec(spec: string | undefined): Map<number, PortFaults> {
  const out = new Map<number, PortFaults>();
  if (!spec) return out;
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)=(.+)$/.exec(part);
    if (!m) throw new FaultSpecError(`bad fault "${part}": expected PORT_INDEX=FAULT[+FAULT], e.g. 0=silent or 1=delay:IDENTIFY:4000`);
    const index = Number(m[1]);
    const faults = out.get(index) ?? { firmware: new Set<Fault>(), link: [] };
    for (const f of m[2]!.split('+').map((s) => s.trim())) {
      const parsed = parseFault(f);
      if (typeof parsed === 'string') faults.firmware.add(parsed);
      else faults.link.push(parsed);
    }
    out.set(index, faults);
  }
  return out;
}

/** The link faults of `kind` that apply to `command`. */
export function linkFaultsFor(faults: readonly LinkFault[], kind: LinkFaultKind, command: number): LinkFault[] {
  return faults.filter((f) => f.kind === kind && (f.command === undefined || f.command === command));
}

/** `delay:IDENTIFY:4000` back from a LinkFault (for logs and the ready line). */
export function formatLinkFault(f: LinkFault): string {
  return [f.kind, ...(f.command !== undefined ? [commandName(f.command)] : []), ...(f.ms !== undefined ? [String(f.ms)] : [])].join(':');
}
