/**
 * The bridge's WebSocket messages (JSON text frames). Inbound: `call`, validated here and then
 * by the command's own argument schema. Outbound: `result` (to one call) and `event`.
 */
import { z } from 'zod';
import type { StationEvent } from './station-api';

/** Largest inbound frame the bridge accepts (a call is small; nothing needs more). */
export const MAX_INBOUND_BYTES = 16 * 1024;

export const InboundMessageSchema = z
  .object({
    type: z.literal('call'),
    id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    command: z.string().min(1).max(64),
    args: z.unknown().optional(),
  })
  .strict();

export type InboundMessage = z.infer<typeof InboundMessageSchema>;

export type OutboundMessage =
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number | null; ok: false; error: { code: string; message: string } }
  | { type: 'event'; event: StationEvent };
