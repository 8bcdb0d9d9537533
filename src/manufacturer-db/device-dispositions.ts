/**
 * A supervisor's decisions about a device, each with its audit event in one transaction:
 * rework (a failed device goes back for rework) and scrap (its serial is retired for good).
 */
import { DatabaseError } from '../core/errors';
import { AuditChain } from './audit-chain';
import { type SqliteDb, inTransaction } from './sqlite-database';

export class DeviceDispositions {
  private readonly audit: AuditChain;

  constructor(
    private readonly db: SqliteDb,
    stationId: string,
  ) {
    this.audit = new AuditChain(db, stationId);
  }

  private tx<T>(doing: string, fn: () => T): T {
    return inTransaction(this.db, doing, fn);
  }

  private status(serial: string): { status: string; disposition: string | null } {
    const row = this.db.prepare('SELECT status, disposition FROM devices WHERE serial = ?').get(serial) as { status: string; disposition: string | null } | undefined;
    if (!row) throw new DatabaseError('DEVICE_UNKNOWN', `No device ${serial} in the database.`);
    return row;
  }

  /** A failed device is sent to rework (it may be provisioned again under a new serial). */
  rework(serial: string, by: string, reason: string): void {
    this.tx('sending a device to rework', () => {
      const row = this.status(serial);
      if (row.status !== 'failed') throw new DatabaseError('DEVICE_NOT_FAILED', `Device ${serial} is ${row.status}; only a failed device goes to rework.`);
      if (row.disposition === 'scrap') throw new DatabaseError('DEVICE_RETIRED', `Device ${serial} was retired; it cannot go to rework.`);
      this.db.prepare("UPDATE devices SET disposition = 'rework', updated_at = ? WHERE serial = ?").run(new Date().toISOString(), serial);
      this.audit.append({ type: 'device.rework', serial, data: { by, reason } });
    });
  }

  /**
   * The serial is never used again: the device is scrapped. Its certificate is voided by the
   * caller first (DeviceRecorder.retire signs and queues the void for the services); a device
   * whose certificate is already void (a failed one) is only scrapped.
   */
  scrap(serial: string, by: string, reason: string): void {
    this.tx('retiring a serial', () => {
      const row = this.status(serial);
      if (row.disposition === 'scrap') throw new DatabaseError('DEVICE_RETIRED', `Serial ${serial} is retired already.`);
      if (row.status !== 'passed' && row.status !== 'failed') {
        throw new DatabaseError('DEVICE_IN_PROGRESS', `Device ${serial} is ${row.status}: it is being provisioned. Stop its run first.`);
      }
      const active = this.db.prepare("SELECT COUNT(*) AS n FROM certificates WHERE device_serial = ? AND status = 'active'").get(serial) as { n: number };
      if (active.n > 0) throw new DatabaseError('DEVICE_CERTIFICATE_ACTIVE', `Device ${serial} still has an active certificate; void it first.`);
      this.db.prepare("UPDATE devices SET disposition = 'scrap', updated_at = ? WHERE serial = ?").run(new Date().toISOString(), serial);
      this.audit.append({ type: 'serial.retired', serial, data: { by, reason, status: row.status } });
    });
  }
}
