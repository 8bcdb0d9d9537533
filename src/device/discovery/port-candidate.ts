/** What discovery reports about one port, and the seam its sources implement. */
import type { UsbFilter } from '../../core/config';

/**
 * Where a candidate came from: `udev` (serialport's listing, which runs udevadm), `watch` (a
 * watched path glob such as /dev/serial/by-id/* or the simulator's link folder) or `hid`
 * (node-hid). A serial port seen by both udev and a watched link is one candidate: its path is
 * the link (the stable name), its USB ids come from udev and its source is `udev`.
 */
export type CandidateSource = 'udev' | 'watch' | 'hid';

export interface PortCandidate {
  kind: 'serial' | 'hid';
  /** What to open: the stable link when one is known, else the device node (or hidapi path). */
  path: string;
  /** The device node the path resolves to (symlinks followed); serial ports only. */
  realPath?: string;
  /** USB ids, 4 lowercase hex digits. */
  vendorId?: string;
  productId?: string;
  serialNumber?: string;
  manufacturer?: string;
  source: CandidateSource;
}

/**
 * One source of candidates. `list` returns what is there now and rejects (with a DeviceError)
 * when the source cannot be read. `watch`, when a source has one, calls `onChange` soon after
 * its ports may have changed (a hint: discovery lists again) and returns something to close.
 */
export interface PortLister {
  readonly name: string;
  list(): Promise<PortCandidate[]>;
  watch?(onChange: () => void): { close(): void };
}

/** 4 lowercase hex digits, or undefined for anything that is not a 16-bit id. */
export function normalizeUsbId(id: string | number | undefined): string | undefined {
  if (id === undefined) return undefined;
  if (typeof id === 'number') return Number.isInteger(id) && id >= 0 && id <= 0xffff ? id.toString(16).padStart(4, '0') : undefined;
  const s = id.trim().toLowerCase().replace(/^0x/, '');
  return /^[0-9a-f]{1,4}$/.test(s) ? s.padStart(4, '0') : undefined;
}

/**
 * With no filters every candidate passes. Otherwise a candidate with USB ids passes when one
 * filter names its vendor (and its product, when the filter names one); a candidate without USB
 * ids passes only when it came from a watched folder (the operator named that folder: PTY links
 * of the simulator have no USB ids).
 */
export function matchesUsbFilters(candidate: PortCandidate, filters: readonly UsbFilter[]): boolean {
  if (filters.length === 0) return true;
  if (candidate.vendorId === undefined) return candidate.source === 'watch';
  return filters.some(
    (f) => normalizeUsbId(f.vendorId) === candidate.vendorId && (f.productId === undefined || normalizeUsbId(f.productId) === candidate.productId),
  );
}

/** Identity of a candidate in the event stream: a change of path or device node is remove + add. */
export function candidateKey(c: PortCandidate): string {
  return `${c.kind}\u0000${c.path}\u0000${c.realPath ?? ''}`;
}
