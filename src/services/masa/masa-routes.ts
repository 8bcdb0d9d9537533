/** The MASA's endpoints (docs/services.md, docs/sync-api.md). */
import type { Route } from '../http/https-service';
import { HttpError, requireRole } from '../http/https-service';
import { recordsRoute } from '../records/records-route';
import type { StationTrust } from '../records/station-trust';
import type { SqlDatabase } from '../storage/sql-database';
import { ServiceRepository } from '../storage/service-repository';
import type { VoucherIssuer } from './voucher-request-handler';

export function masaRoutes(db: SqlDatabase, trust: StationTrust, vouchers: VoucherIssuer): Route[] {
  return [
    recordsRoute(db, trust),
    { method: 'POST', pattern: '/.well-known/brski/requestvoucher', handle: (ctx) => vouchers.handle(ctx) },
    {
      method: 'GET',
      pattern: '/api/v1/devices/:serial/audit',
      async handle(ctx) {
        requireRole(ctx, 'station');
        const serial = ctx.params.serial!;
        const found = await db.transaction(async (tx) => {
          const repo = new ServiceRepository(tx);
          const device = await repo.device(serial);
          return device ? { device, events: await repo.audit(serial), ownerDomainSha256: (await repo.ownerBinding(serial)) ?? null } : undefined;
        });
        if (!found) throw new HttpError(404, 'DEVICE_UNKNOWN', `no device ${serial} is registered with this MASA`);
        return {
          status: 200,
          json: { serial, status: found.device.status, sequence: found.device.sequence, owner: found.device.owner, ownerDomainSha256: found.ownerDomainSha256, events: found.events },
        };
      },
    },
  ];
}
