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
import { toDatabaseError, type SqliteDb } from './sqlite-database';

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
export const macToNumber = (mac: string): number => parseInt(mac, 16);
export const numberToMac = (n: number): string => n.toString(16).padStart(12, '0');

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
   * `count` MACs for a device of `product` from this station's blocks, in the caller's
   * transaction (the device row's). Never the same address twice: the block's pointer moves
   * forward in the same transaction that records the device.
   */
  allocateMacs(product: string, count: number): string[] {
    const out: string[] = [];
    while (out.length < count) {
      const block = this.db
        .prepare('SELECT id, next, last FROM mac_blocks WHERE station_id = ? AND (product = ? OR product IS NULL) AND next <= last ORDER BY product IS NULL, first LIMIT 1')
        .get(this.stationId, product) as { id: number; next: number; last: number } | undefined;
      if (!block) throw new DatabaseError('MAC_BLOCK_EXHAUSTED', `No MAC addresses left for ${product} on station ${this.stationId}; import a MAC block ("station db import-blocks").`, { stage: 'assign' });
      const take = Math.min(count - out.length, block.last - block.next + 1);
      for (let i = 0; i < take; i++) out.push(numberToMac(block.next + i));
      this.db.prepare('UPDATE mac_blocks SET next = ? WHERE id = ?').run(block.next + take, block.id);
    }
    return out;
  }
}
