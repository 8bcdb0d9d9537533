/** `POST /api/v1/records`, the same on both services (docs/sync-api.md). */
import type { HttpResponse, RequestContext, Route } from '../http/https-service';
import { HttpError, jsonBody, requireRole } from '../http/https-service';
import type { SqlDatabase } from '../storage/sql-database';
import { MalformedBatchError, ingestRecordBatch } from './record-ingest';
import type { StationTrust } from './station-trust';

/** A station client certificate (401/403 otherwise), then the batch. */
export function recordsRoute(db: SqlDatabase, trust: StationTrust): Route {
  return {
    method: 'POST',
    pattern: '/api/v1/records',
    faultable: true,
    async handle(ctx: RequestContext): Promise<HttpResponse> {
      const station = requireRole(ctx, 'station');
      if (!trust.isAllowed(station)) throw new HttpError(403, 'STATION_NOT_ALLOWED', `station ${station} may not deliver to this service`);
      const body = jsonBody(ctx);
      try {
        return { status: 200, json: await ingestRecordBatch(body, { db, trust }) };
      } catch (err) {
        if (err instanceof MalformedBatchError) throw new HttpError(400, 'MALFORMED_BATCH', err.message);
        throw err;
      }
    },
  };
}

