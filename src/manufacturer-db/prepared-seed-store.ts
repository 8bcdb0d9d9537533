/**
 * Method 5's certificates prepared ahead (`station prepare` on a seed-derived work order;
 * src/station/admin/prepare-seed.ts), on the record store's connection. No table of its own: a
 * prepared chip is a seed row bound to a device record that was allocated by a prepare run
 * (port `prepare`, empty hardware id) and whose certificate is recorded (status `issued`), the
 * same shape as method 3's prepared records. The device that presents the chip takes that
 * record at the assign stage (claim); a prepared record that fails (void certificate) frees the
 * chip for the usual path (bind, derive, issue at the line).
 */
import { DatabaseError } from '../core/errors';
import type { DeviceAttachment } from '../core/ports/prepared-keys';
import type { PreparedSeedCertificate, PreparedSeedCertificates } from '../core/ports/prepared-seed-certificates';
import { toDatabaseError, type SqliteDb, inTransaction } from './sqlite-database';
import type { SqliteRecordStore } from './sqlite-record-store';

/** The port a prepare run gives the device records it allocates (method 3 uses the same). */
export const PREPARE_PORT = 'prepare';
export const PREPARE_INTERRUPTED = 'PREPARE_INTERRUPTED';

/** An imported chip with no device yet: what a prepare takes. */
export interface UnpreparedChip {
  chipId: string;
  sealed: Buffer;
  publicKeySha256: string;
}

export class SqlitePreparedSeedStore implements PreparedSeedCertificates {
  private readonly db: SqliteDb;

  constructor(private readonly records: SqliteRecordStore) {
    this.db = records.db;
  }

  private tx<T>(doing: string, fn: () => T): T {
    return inTransaction(this.db, doing, fn);
  }

  /** Up to `limit` imported chips that are available and bound to no device, in chip id order. */
  unprepared(limit: number): UnpreparedChip[] {
    try {
      return (
        this.db
          .prepare("SELECT chip_id, seed_sealed, public_key_sha256 FROM seeds WHERE state = 'available' AND bound_serial IS NULL ORDER BY chip_id LIMIT ?")
          .all(limit) as { chip_id: string; seed_sealed: Buffer; public_key_sha256: string }[]
      ).map((r) => ({ chipId: r.chip_id, sealed: r.seed_sealed, publicKeySha256: r.public_key_sha256 }));
    } catch (err) {
      throw toDatabaseError(err, 'reading unprepared chips');
    }
  }

  /** Chips prepared and waiting for their device, for a work order. */
  waitingCount(workOrderId: string): number {
    return Number(
      this.db
        .prepare("SELECT COUNT(*) FROM seeds s JOIN devices d ON d.serial = s.bound_serial WHERE s.state = 'available' AND d.status = 'issued' AND d.port = ? AND d.work_order_id = ?")
        .pluck()
        .get(PREPARE_PORT, workOrderId),
    );
  }

  /**
   * One transaction: a device record per chip (through `allocate`, the record store's serial
   * allocation) and the chip bound to it. One audit event for the chunk (each device record
   * has its own `device.assigned` event from the allocation, and each certificate its own
   * `certificate.issued`).
   */
  addPreparing(input: { workOrderId: string; runId: string; chips: readonly UnpreparedChip[]; allocate: () => string }): string[] {
    return this.tx('binding chips to prepared device records', () => {
      const bind = this.db.prepare("UPDATE seeds SET bound_serial = ?, bound_at = ? WHERE chip_id = ? AND bound_serial IS NULL AND state = 'available'");
      const now = new Date().toISOString();
      const serials: string[] = [];
      for (const chip of input.chips) {
        const serial = input.allocate();
        if (bind.run(serial, now, chip.chipId).changes !== 1) {
          throw new DatabaseError('SEED_STATE_CONFLICT', `Chip ${chip.chipId} was bound to a device meanwhile; it is not prepared.`);
        }
        serials.push(serial);
      }
      if (serials.length > 0) {
        this.records.audit.append({
          type: 'seed-certificates.preparing',
          serial: null,
          data: { workOrder: input.workOrderId, runId: input.runId, count: serials.length, first: serials[0]!, last: serials[serials.length - 1]!, firstChip: input.chips[0]!.chipId },
        });
      }
      return serials;
    });
  }

  /**
   * Prepared device records an earlier stop left without a certificate (allocated and bound,
   * never issued; resolveDanglingIntents already failed the ones with a pending intent): marked
   * failed (rework), which frees their chips for the usual path.
   */
  resolveInterrupted(): { serial: string; chipId: string }[] {
    const open = this.db
      .prepare("SELECT s.chip_id, d.serial, d.run_id FROM seeds s JOIN devices d ON d.serial = s.bound_serial WHERE s.state = 'available' AND d.status = 'assigned' AND d.port = ?")
      .all(PREPARE_PORT) as { chip_id: string; serial: string; run_id: string }[];
    for (const r of open) {
      this.records.markFailed(r.serial, r.run_id, { code: PREPARE_INTERRUPTED, message: `The station stopped while preparing the certificate of chip ${r.chip_id}; the chip goes the usual way.`, stage: 'issue' }, [], 'rework');
    }
    return open.map((r) => ({ serial: r.serial, chipId: r.chip_id }));
  }

  claim(chipId: string, workOrderId: string, device: DeviceAttachment): PreparedSeedCertificate | undefined {
    return this.tx('taking a prepared certificate', () => {
      const row = this.db
        .prepare(
          "SELECT d.serial, c.der FROM seeds s JOIN devices d ON d.serial = s.bound_serial JOIN certificates c ON c.device_serial = d.serial AND c.status = 'active' " +
            "WHERE s.chip_id = ? AND s.state = 'available' AND d.status = 'issued' AND d.port = ? AND d.hardware_id = '' AND d.work_order_id = ?",
        )
        .get(chipId, PREPARE_PORT, workOrderId) as { serial: string; der: Buffer } | undefined;
      if (!row) return undefined;
      for (const mac of device.macs) {
        const used = this.db.prepare('SELECT serial FROM device_macs WHERE mac = ?').get(mac) as { serial: string } | undefined;
        if (used) {
          throw new DatabaseError('MAC_ALREADY_USED', `The device reports MAC ${mac}, which already belongs to device ${used.serial}; a MAC is never given twice.`, {
            stage: 'assign',
            details: { mac, serial: used.serial },
          });
        }
      }
      const changed = this.db
        .prepare("UPDATE devices SET run_id = ?, port = ?, hardware_id = ?, model = ?, firmware_version = ?, updated_at = ? WHERE serial = ? AND status = 'issued' AND port = ?")
        .run(device.runId, device.port, device.hardwareId, device.model, device.firmwareVersion, new Date().toISOString(), row.serial, PREPARE_PORT);
      if (changed.changes !== 1) return undefined;
      const insertMac = this.db.prepare('INSERT INTO device_macs (mac, serial) VALUES (?, ?)');
      for (const mac of device.macs) insertMac.run(mac, row.serial);
      this.records.audit.append({ type: 'device.assigned', serial: row.serial, data: { runId: device.runId, port: device.port, hardwareId: device.hardwareId, macs: device.macs, preparedChip: chipId } });
      return { serial: row.serial, certificateDer: row.der };
    });
  }
}
