/**
 * Prepared device keys of method 3 (factory-injected key), as the method sees them
 * (implemented by manufacturer-db/SqlitePreparedKeyStore). Each record is (serial, key wrapped
 * under the station's KEK, certificate); the key's life is one way:
 *
 *   preparing -> available -> reserved -> consumed
 *                    |           |
 *                    +-----------+------> burned
 *
 * - preparing: made and wrapped, its certificate not yet recorded (never offered).
 * - available: certificate recorded; the next device of the work order may take it.
 * - reserved:  taken by one device (hardware id); `injectedAt` says whether the key has left the
 *              station (wrapped for that device's transport key). A reserved key is never offered
 *              to another device.
 * - consumed:  the device proved possession and its record is committed (or, coming back after a
 *              failure, it proved possession of a key whose certificate was voided); the wrapped
 *              blob is deleted.
 * - burned:    the key may be anywhere or nowhere (the device never proved possession), or it
 *              never left the station and its device failed; the wrapped blob is deleted.
 * Consumed and burned are final; nothing goes back to available (the database enforces it).
 */
import type { WrappedDeviceKey } from './key-injection';

export type PreparedKeyState = 'preparing' | 'available' | 'reserved' | 'consumed' | 'burned';

/** How the key was made: ahead with `station prepare`, or during the run (`--inject at-station`). */
export type PreparedKeyOrigin = 'prepared' | 'at-station';

export interface PreparedKey {
  id: string;
  workOrderId: string;
  serial: string;
  origin: PreparedKeyOrigin;
  /** DER SPKI of the device key. */
  spki: Buffer;
  publicKeySha256: string;
  kekLabel: string;
  /** The key wrapped under the KEK; null once consumed or burned. */
  wrappedKey: Buffer | null;
  certificateSerial: string | null;
  state: PreparedKeyState;
  /** The hardware id of the device that took the key. */
  reservedFor: string | null;
  reservedPort: string | null;
  reservedRunId: string | null;
  /** When the key left the station for its device (ISO time); null = it never did. */
  injectedAt: string | null;
  /** When the device proved possession on coming back (ISO time). */
  confirmedAt: string | null;
  burnReason: string | null;
  /** The status of the device record that holds the key's serial. */
  deviceStatus: string;
}

/** The device that takes a key: what the assign stage records for it. */
export interface DeviceAttachment {
  runId: string;
  port: string;
  hardwareId: string;
  model: string;
  firmwareVersion: string;
  macs: string[];
}

export interface PreparedKeys {
  /** The key with this id, or undefined. */
  get(id: string): PreparedKey | undefined;
  /** The key prepared for this serial (one at most), or undefined. */
  findBySerial(serial: string): PreparedKey | undefined;
  /** The key reserved for this device (hardware id) in this work order, if the device came back. */
  findReservedFor(workOrderId: string, hardwareId: string): PreparedKey | undefined;
  /** Keys of the work order that a device may take now. */
  availableCount(workOrderId: string): number;
  /**
   * Reserves the work order's next available key for this device and attaches the device to the
   * key's serial (its device record), in one transaction. Throws PREPARED_KEYS_EXHAUSTED when none is left.
   */
  claimNext(workOrderId: string, device: DeviceAttachment): PreparedKey;
  /**
   * Method 3 at the station: records a key the HSM made during the run for the device that holds
   * `serial` (already assigned), reserved for it.
   */
  recordStationKey(input: { workOrderId: string; serial: string; key: WrappedDeviceKey; kekLabel: string; hardwareId: string; port: string }): PreparedKey;
  /** The certificate (DER) recorded for the key's serial; throws when there is none. */
  certificateOf(id: string): Buffer;
  /** Durable before the key leaves the station: the key is reserved for `hardwareId` and marked as sent. */
  markInjecting(id: string, hardwareId: string): void;
  /** The device came back and proved possession while its record still waits (an interrupted run): it continues with this key. */
  resume(id: string, device: DeviceAttachment): PreparedKey;
  /** The device proved possession and its record is committed (`recorded`), or it proved possession on coming back after failing (`possession-confirmed`). Deletes the blob. */
  consume(id: string, how: 'recorded' | 'possession-confirmed'): void;
  /**
   * Deletes the blob and never offers the key again. With `failDevice`, the key's device record,
   * when it still waits for the device, is failed with that error (rework).
   */
  burn(id: string, reason: string, failDevice?: { code: string; message: string }): void;
  /** Destroys the copies that deleted blobs leave in the database files (write-ahead log, free pages). */
  scrub(): void;
}
