/**
 * The signed device record a station syncs to the MASA and the supply-chain service
 * (docs/sync-api.md). One zod schema, shared by the station (which builds and signs records)
 * and the reference services (which verify and store them): the wire format has one owner.
 */
import { z } from 'zod';
import { METHOD_IDS } from './method-id';

const KEY_ORIGINS = ['device-rng', 'secure-element', 'hsm', 'se-vendor', 'seed-derived'] as const;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** What a station asserts about one device at one moment. A later record for the same serial (a void) supersedes it. */
export const DeviceRecordPayloadSchema = z
  .object({
    schema: z.literal('device-record-v1'),
    stationId: z.string().min(1).max(64),
    /** Per-device sequence number, from 1: the order a service applies a device's records in. */
    sequence: z.number().int().min(1),
    serial: z.string().min(1).max(64),
    workOrder: z.string().min(1).max(64),
    /** The device's owner when known in advance (sales integration); null = not known yet. */
    owner: z.string().min(1).max(128).nullable(),
    model: z.string().min(1).max(128),
    method: z.enum(METHOD_IDS),
    keyOrigin: z.enum(KEY_ORIGINS),
    macs: z.array(z.string().regex(/^[0-9a-f]{12}$/)),
    seSerial: z.string().min(1).nullable(),
    chipId: z.string().regex(/^[0-9a-f]+$/).nullable(),
    /** Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of the birth key. */
    publicKeySha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The IDevID, DER in standard base64. */
    idevid: z.string().regex(B64),
    /** Certificate serial, lowercase hex without leading zeros. */
    certificateSerial: z.string().regex(/^[0-9a-f]+$/),
    dppUri: z.string().startsWith('DPP:'),
    /** active: the device shipped with this credential; void: never trust it (failed after issue, or retired). */
    status: z.enum(['active', 'void']),
    voidReason: z.string().min(1).nullable(),
    recordedAt: z.string().datetime(),
  })
  .strict();

export type DeviceRecordPayload = z.infer<typeof DeviceRecordPayloadSchema>;

/** One record on the wire: payload, its idempotency key, and the station's signature over canonicalJson(payload). */
export const SignedDeviceRecordSchema = z
  .object({
    /** `${stationId}:${serial}:${sequence}`: the same key always carries the same payload. */
    idempotencyKey: z.string().min(3).max(200),
    payload: DeviceRecordPayloadSchema,
    signature: z
      .object({
        alg: z.literal('ES256'),
        /** The station's certificate (DER, standard base64), issued by the station CA the service trusts. */
        stationCertificate: z.string().regex(B64),
        /** base64url of the raw r||s (64 bytes) ECDSA P-256 SHA-256 signature over canonicalJson(payload). */
        value: z.string().regex(B64URL),
      })
      .strict(),
  })
  .strict();

export type SignedDeviceRecord = z.infer<typeof SignedDeviceRecordSchema>;

export const RecordBatchSchema = z.object({ records: z.array(SignedDeviceRecordSchema).min(1).max(1000) }).strict();
export type RecordBatch = z.infer<typeof RecordBatchSchema>;

/** Per-record outcome of a bulk upload. */
export type RecordOutcomeStatus = 'stored' | 'duplicate' | 'rejected' | 'conflict';
export interface RecordOutcome {
  idempotencyKey: string;
  status: RecordOutcomeStatus;
  /** Why a record was rejected or conflicts (never echoes secrets: records hold none). */
  reason?: string;
}
export interface RecordBatchResponse {
  results: RecordOutcome[];
}

export function idempotencyKeyOf(p: Pick<DeviceRecordPayload, 'stationId' | 'serial' | 'sequence'>): string {
  return `${p.stationId}:${p.serial}:${p.sequence}`;
}
