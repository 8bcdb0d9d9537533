/**
 * Per-station serial and MAC blocks (docs/records-and-sync.md). A serial or MAC is given only from
 * a block assigned to this station, and blocks never overlap (a trigger refuses it), so two
 * stations that import the planner's assignments never give the same serial or MAC:
 *
 * - serial blocks: a work order's range becomes this station's block when the work order is
 *   registered (source `work-order`); ranges assigned to other stations are imported (source
 *   `import`) so that a local work order overlapping them is refused.
 * - MAC blocks: ranges of an OUI given to this station for products whose MAC the station
 *   allocates; `allocateMacs` hands out addresses in order, never twice (the `next` pointer only
 *   moves forward, a trigger refuses anything else), in the caller's transaction.
 */
import { DatabaseError } from '../core/errors';
import type { AuditChain } from './audit-chain';
import { inTransaction, toDatabaseError, type SqliteDb } from './sqlite-database';

export interface SerialBlock {
  id: number;
  stationId: string;
  workOrderId: string | null;
  prefix: string;
  first: number;
  last: number;
  source: 'work-order' | 'import';
}

export interface MacBlock {
  id: number;
  stationId: string;
  product: string | null;
  /** 12 lowercase hex digits. */
  first: string;
  last: string;
  next: string;
  remaining: number;
}

/** A block assignment file (`station db import-blocks FILE`). */
export interface BlockAssignment {
  kind: 'serial' | 'mac';
  stationId: string;
  /** serial blocks */
  prefix?: string;
  first: number | string;
  last: number | string;
  workOrder?: string;
  /** MAC blocks: the product whose devices take these addresses. */
  product?: string;
}

const MAC = /^[0-9a-f]{12}$/;
/** The most MACs one device takes from a block (products.<p>.macSource.count). */
export const MAX_MACS_PER_DEVICE = 8;
export const macToNumber = (mac: string): number => parseInt(mac, 16);
export const numberToMac = (n: number): string => n.toString(16).padStart(12, '0');
/** 12 hex digits as the operator reads them: 02:00:5e:10:00:01. */
export const formatMac = (mac: string): string => mac.replace(/(..)(?!$)/g, '$1:');
/** The first octet's I/G bit: set = a group (multicast) address, never a device's. */
const firstOctet = (mac: string): number => parseInt(mac.slice(0, 2), 16);
const isGroupAddress = (n: number): boolean => Math.floor(n / 2 ** 40) % 2 === 1;

function overlapError(err: unknown, what: string): DatabaseError {
  const message = err instanceof Error ? err.message : String(err);
  if (/overlaps/.test(message)) return new DatabaseError('BLOCK_OVERLAP', `${what} overlaps a block already assigned (to this station or another); refused. "station db blocks" lists them.`);
  return toDatabaseError(err, `registering ${what}`);
}

export class BlockRegistry {
  constructor(
    private readonly db: SqliteDb,
    private readonly audit: AuditChain,
    private readonly stationId: string,
  ) {}

  /** Call inside the work order's transaction: its range [first, last] becomes (or extends) this station's block. */
  claimWorkOrderRange(workOrderId: string, prefix: string, first: number, last: number): void {
    const have = this.db.prepare("SELECT MIN(first) AS lo, MAX(last) AS hi FROM serial_blocks WHERE work_order_id = ? AND station_id = ? AND source = 'work-order'").get(workOrderId, this.stationId) as {
      lo: number | null;
      hi: number | null;
    };
    const insert = (lo: number, hi: number) => {
      try {
        this.db
          .prepare("INSERT INTO serial_blocks (station_id, work_order_id, prefix, first, last, source, created_at) VALUES (?, ?, ?, ?, ?, 'work-order', ?)")
          .run(this.stationId, workOrderId, prefix, lo, hi, new Date().toISOString());
      } catch (err) {
        throw overlapError(err, `The serial range ${prefix}${lo}..${hi} of work order ${workOrderId}`);
      }
      this.audit.append({ type: 'serial-block.claimed', serial: null, data: { workOrder: workOrderId, prefix, first: lo, last: hi } });
    };
    if (have.lo === null || have.hi === null) return insert(first, last);
    if (last > have.hi) insert(have.hi + 1, last);
  }

  serialBlocks(): SerialBlock[] {
    return (this.db.prepare('SELECT * FROM serial_blocks ORDER BY prefix, first').all() as {
      id: number;
      station_id: string;
      work_order_id: string | null;
      prefix: string;
      first: number;
      last: number;
      source: 'work-order' | 'import';
    }[]).map((r) => ({ id: r.id, stationId: r.station_id, workOrderId: r.work_order_id, prefix: r.prefix, first: r.first, last: r.last, source: r.source }));
  }

  macBlocks(): MacBlock[] {
    return (this.db.prepare('SELECT * FROM mac_blocks ORDER BY first').all() as { id: number; station_id: string; product: string | null; first: number; last: number; next: number }[]).map((r) => ({
      id: r.id,
      stationId: r.station_id,
      product: r.product,
      first: numberToMac(r.first),
      last: numberToMac(r.last),
      next: numberToMac(r.next),
      remaining: Math.max(0, r.last - r.next + 1),
    }));
  }

  /** Import the planner's block assignments; one transaction: all or none. Overlaps are refused. */
  importBlocks(blocks: readonly BlockAssignment[], operator: string): { serial: number; mac: number } {
    const counts = { serial: 0, mac: 0 };
    try {
      this.db.transaction(() => {
        for (const b of blocks) {
          if (b.kind === 'serial') {
            const first = Number(b.first);
            const last = Number(b.last);
            if (typeof b.prefix !== 'string' || !Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first || first < 0) {
              throw new DatabaseError('BLOCK_INVALID', `A serial block needs a prefix and integers first <= last (got ${JSON.stringify(b)}).`);
            }
            try {
              this.db
                .prepare("INSERT INTO serial_blocks (station_id, work_order_id, prefix, first, last, source, created_at) VALUES (?, ?, ?, ?, ?, 'import', ?)")
                .run(b.stationId, b.workOrder ?? null, b.prefix, first, last, new Date().toISOString());
            } catch (err) {
              throw overlapError(err, `The serial block ${b.prefix}${first}..${last} of station ${b.stationId}`);
            }
            counts.serial++;
          } else {
            const first = String(b.first).toLowerCase().replace(/[:-]/g, '');
            const last = String(b.last).toLowerCase().replace(/[:-]/g, '');
            if (!MAC.test(first) || !MAC.test(last) || macToNumber(last) < macToNumber(first)) {
              throw new DatabaseError('BLOCK_INVALID', `A MAC block needs first <= last as 12 hex digits (got ${JSON.stringify(b)}).`);
            }
            if (isGroupAddress(macToNumber(first)) || firstOctet(first) !== firstOctet(last)) {
              throw new DatabaseError('BLOCK_INVALID', `A MAC block holds individual (unicast) addresses of one OUI: the first octet must be the same at both ends and even (got ${formatMac(first)}..${formatMac(last)}).`);
            }
            try {
              this.db
                .prepare("INSERT INTO mac_blocks (station_id, product, first, last, next, source, created_at) VALUES (?, ?, ?, ?, ?, 'import', ?)")
                .run(b.stationId, b.product ?? null, macToNumber(first), macToNumber(last), macToNumber(first), new Date().toISOString());
            } catch (err) {
              throw overlapError(err, `The MAC block ${first}..${last} of station ${b.stationId}`);
            }
            counts.mac++;
          }
          this.audit.append({ type: 'block.imported', serial: null, data: { ...b, first: String(b.first), last: String(b.last), operator } });
        }
      })();
    } catch (err) {
      if (err instanceof DatabaseError) throw err;
      throw toDatabaseError(err, 'importing blocks');
    }
    return counts;
  }

  /**
   * `count` consecutive MACs for a device of `product` from this station's blocks, in the
   * caller's transaction (the device row's). Never the same address twice: the block's pointer
   * moves forward in the same transaction that records the device, and an address some device
   * already holds (one that reported it itself) is skipped, and burned with the pointer.
   * Blocks reserved for the product are used before shared ones (no product), each in order.
   * Throws MAC_BLOCK_EXHAUSTED naming the blocks when none has `count` consecutive addresses left.
   */
  allocateMacs(product: string, count: number): string[] {
    if (!Number.isInteger(count) || count < 1 || count > MAX_MACS_PER_DEVICE) {
      throw new DatabaseError('MAC_COUNT_INVALID', `A device takes 1 to ${MAX_MACS_PER_DEVICE} MAC addresses (asked for ${count}).`, { stage: 'assign' });
    }
    const blocks = this.db
      .prepare('SELECT id, product, first, next, last FROM mac_blocks WHERE station_id = ? AND (product = ? OR product IS NULL) ORDER BY product IS NULL, first')
      .all(this.stationId, product) as { id: number; product: string | null; first: number; next: number; last: number }[];
    const used = this.db.prepare('SELECT 1 FROM device_macs WHERE mac = ?');
    for (const block of blocks) {
      let start = block.next;
      while (start + count - 1 <= block.last) {
        let taken = -1;
        for (let i = 0; i < count && taken < 0; i++) if (used.get(numberToMac(start + i))) taken = start + i;
        if (taken < 0) {
          this.db.prepare('UPDATE mac_blocks SET next = ? WHERE id = ?').run(start + count, block.id);
          return Array.from({ length: count }, (_, i) => numberToMac(start + i));
        }
        start = taken + 1;
      }
      // Fewer than `count` consecutive addresses left here: the tail is left unused (never given).
      if (start !== block.next) this.db.prepare('UPDATE mac_blocks SET next = ? WHERE id = ?').run(start, block.id);
    }
    const named = blocks.map((b) => `${formatMac(numberToMac(b.first))}..${formatMac(numberToMac(b.last))}${b.product ? ` (product ${b.product})` : ' (any product)'}`);
    const which =
      named.length === 0
        ? `no MAC block is assigned to station ${this.stationId} for product ${product}`
        : `the MAC block${named.length > 1 ? 's' : ''} ${named.slice(0, 3).join(', ')}${named.length > 3 ? ` and ${named.length - 3} more` : ''} of station ${this.stationId} ${named.length > 1 ? 'have' : 'has'} no ${count > 1 ? `${count} consecutive addresses` : 'address'} left`;
    throw new DatabaseError('MAC_BLOCK_EXHAUSTED', `No MAC address for a device of ${product}: ${which}. Import a new MAC block for this station ("station db import-blocks FILE"; "station db blocks" lists them), then run again.`, {
      stage: 'assign',
      details: { product, stationId: this.stationId, count, blocks: named.join('; ') },
    });
  }

  /** The MACs recorded for a device (device_macs), in address order. */
  macsOf(serial: string): string[] {
    return (this.db.prepare('SELECT mac FROM device_macs WHERE serial = ? ORDER BY mac').all(serial) as { mac: string }[]).map((r) => r.mac);
  }

  /**
   * In the caller's transaction: `count` MACs from the blocks become the device's (device_macs
   * and an audit event). Used when the device row was made by a method (a prepared key or a
   * prepared seed certificate claimed in its own transaction).
   */
  assignMacsTo(serial: string, product: string, count: number): string[] {
    const macs = this.allocateMacs(product, count);
    const insert = this.db.prepare('INSERT INTO device_macs (mac, serial) VALUES (?, ?)');
    for (const mac of macs) insert.run(mac, serial);
    this.audit.append({ type: 'device.macs-assigned', serial, data: { product, macs } });
    return macs;
  }

  /**
   * The device's MACs from the blocks, allocated now unless it has them already (it was
   * allocated with its serial, or it is a device resumed under the serial it had): one
   * transaction, so a crash leaves either no MACs or MACs recorded for that serial.
   */
  ensureDeviceMacs(serial: string, product: string, count: number): string[] {
    return inTransaction(this.db, `assigning MAC addresses to ${serial}`, () => {
      const have = this.macsOf(serial);
      if (have.length > 0) return have;
      return this.assignMacsTo(serial, product, count);
    });
  }
}
