/**
 * `station export` (contracts.md §2, docs/records-and-sync.md "Exports"): the shipped devices of a
 * work order or an owner, in the formats a customer or a cloud takes. Only devices that passed
 * and whose certificate is active (never failed, never retired) are exported.
 *
 * - json: an array of { serial, workOrder, owner, model, macs, dppUri, certificateSerial, seSerial }
 * - csv: the same, RFC 4180 (a DPP URI holds `,` and `;`, so fields are quoted)
 * - pem: the IDevIDs, one PEM certificate per device, in serial order
 * - aws: AWS IoT bulk registration (StartThingRegistrationTask) input: one JSON object per line
 *   with the parameters of a provisioning template: ThingName, SerialNumber, CertificatePem
 * - jws: exports/jws-manifest.ts
 */
import { createHash } from 'node:crypto';
import { DatabaseError } from '../../core/errors';
import type { SqliteDb } from '../sqlite-database';

export interface ExportedDevice {
  serial: string;
  workOrder: string;
  owner: string | null;
  model: string;
  macs: string[];
  dppUri: string;
  certificateSerial: string;
  seSerial: string | null;
  hardwareId: string | null;
  /** The IDevID, DER. */
  certificateDer: Buffer;
  publicKeySpki: Buffer;
  passedAt: string | null;
}

export type ExportSelector = { workOrder: string } | { owner: string };

export function selectExportedDevices(db: SqliteDb, selector: ExportSelector): ExportedDevice[] {
  const where = 'workOrder' in selector ? 'd.work_order_id = ?' : 'COALESCE(d.owner, w.owner) = ?';
  const rows = db
    .prepare(
      `SELECT d.serial, d.work_order_id, COALESCE(d.owner, w.owner) AS owner, d.model, d.dpp_uri, d.certificate_serial, d.se_serial, d.hardware_id, d.public_key_spki, d.passed_at, c.der
         FROM devices d JOIN work_orders w ON w.id = d.work_order_id JOIN certificates c ON c.serial_hex = d.certificate_serial
        WHERE ${where} AND d.status = 'passed' AND c.status = 'active'
        ORDER BY d.serial`,
    )
    .all('workOrder' in selector ? selector.workOrder : selector.owner) as {
    serial: string;
    work_order_id: string;
    owner: string | null;
    model: string | null;
    dpp_uri: string | null;
    certificate_serial: string;
    se_serial: string | null;
    hardware_id: string | null;
    public_key_spki: Buffer | null;
    passed_at: string | null;
    der: Buffer;
  }[];
  const macs = db.prepare('SELECT mac FROM device_macs WHERE serial = ? ORDER BY mac');
  return rows.map((r) => {
    if (!r.dpp_uri || !r.public_key_spki || !r.model) throw new DatabaseError('EXPORT_RECORD_INCOMPLETE', `Device ${r.serial} passed but its record lacks a DPP URI or key; the database is inconsistent.`);
    return {
      serial: r.serial,
      workOrder: r.work_order_id,
      owner: r.owner,
      model: r.model,
      macs: (macs.all(r.serial) as { mac: string }[]).map((m) => m.mac),
      dppUri: r.dpp_uri,
      certificateSerial: r.certificate_serial,
      seSerial: r.se_serial,
      hardwareId: r.hardware_id,
      certificateDer: r.der,
      publicKeySpki: r.public_key_spki,
      passedAt: r.passed_at,
    };
  });
}

const toPem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

export function exportJson(devices: readonly ExportedDevice[]): string {
  return (
    JSON.stringify(
      devices.map((d) => ({ serial: d.serial, workOrder: d.workOrder, owner: d.owner, model: d.model, macs: d.macs, dppUri: d.dppUri, certificateSerial: d.certificateSerial, seSerial: d.seSerial })),
      null,
      2,
    ) + '\n'
  );
}

function csvField(v: string): string {
  return /[",;\r\n]/.test(v) || v !== v.trim() ? `"${v.replace(/"/g, '""')}"` : v;
}

export const CSV_HEADER = ['serial', 'work_order', 'owner', 'model', 'mac', 'dpp_uri', 'certificate_serial', 'se_serial'] as const;

export function exportCsv(devices: readonly ExportedDevice[]): string {
  const lines = [CSV_HEADER.join(',')];
  for (const d of devices) {
    lines.push([d.serial, d.workOrder, d.owner ?? '', d.model, d.macs.join(' '), d.dppUri, d.certificateSerial, d.seSerial ?? ''].map(csvField).join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

export function exportPem(devices: readonly ExportedDevice[]): string {
  return devices.map((d) => toPem(d.certificateDer)).join('');
}

export function exportAwsBulk(devices: readonly ExportedDevice[]): string {
  return devices.map((d) => JSON.stringify({ ThingName: d.serial, SerialNumber: d.serial, CertificatePem: toPem(d.certificateDer) }) + '\n').join('');
}

/** SHA-256 of the DER SPKI, hex: the key hash the records carry. */
export function publicKeyHash(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}
