/**
 * A supervisor's decisions about a device, each with its audit event in one transaction:
 * rework (a failed device goes back for rework) and retire (a serial is taken out of use for
 * good: the device is scrapped and its certificates are voided, so that the void can be synced
 * and the MASA refuses vouchers for it).
 */
import { DatabaseError, StationError } from '../core/errors';
import { AuditChain } from './audit-chain';
import { toDatabaseError, type SqliteDb } from './sqlite-database';

export const SERIAL_RETIRED = 'SERIAL_RETIRED';

export class DeviceDispositions {
  private readonly audit: AuditChain;

  constructor(
    private readonly db: SqliteDb,
    stationId: string,
  ) {
    this.audit = new AuditChain(db, stationId);
  }

  private tx<T>(doing: string, fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      if (err instanceof StationError) throw err;
      throw toDatabaseError(err, doing);
    }
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

  /** The serial is never used again: the device is scrapped and its certificates voided. */
  retire(serial: string, by: string, reason: string): { certificatesVoided: number } {
    return this.tx('retiring a serial', () => {
      const row = this.status(serial);
      if (row.disposition === 'scrap' && row.status === 'failed') throw new DatabaseError('DEVICE_RETIRED', `Serial ${serial} is retired already.`);
      if (row.status !== 'passed' && row.status !== 'failed') {
        throw new DatabaseError('DEVICE_IN_PROGRESS', `Device ${serial} is ${row.status}: it is being provisioned. Stop its run first.`);
      }
      const now = new Date().toISOString();
      this.db
        .prepare("UPDATE devices SET status = 'failed', disposition = 'scrap', error_code = ?, error_message = ?, updated_at = ? WHERE serial = ?")
        .run(SERIAL_RETIRED, `Retired by ${by}: ${reason}`, now, serial);
      const voided = this.db.prepare("UPDATE certificates SET status = 'void', void_reason = ? WHERE device_serial = ? AND status = 'active'").run(`serial retired: ${reason}`, serial);
      this.audit.append({ type: 'serial.retired', serial, data: { by, reason, previousStatus: row.status, certificatesVoided: voided.changes } });
      return { certificatesVoided: voided.changes };
    });
  }
}
