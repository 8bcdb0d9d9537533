/**
 * The supply-chain service's endpoints (docs/services.md): records in (from stations), the
 * owner's bootstrapping information out (DPP URIs, IDevIDs, per purchase order = work order),
 * and the claim step. Owners authenticate with a client certificate from the owner CA whose
 * subject CN is the owner's name.
 */
import type { Route } from '../http/https-service';
import { HttpError, jsonBody, requireRole } from '../http/https-service';
import { recordsRoute } from '../records/records-route';
import type { StationTrust } from '../records/station-trust';
import type { SqlDatabase } from '../storage/sql-database';
import { ServiceRepository, type ClaimRow, type DeviceRow } from '../storage/service-repository';

export interface OwnerDevice {
  serial: string;
  model: string;
  purchaseOrder: string;
  status: 'active' | 'void';
  dppUri: string;
  /** DER, standard base64. */
  idevid: string;
  macs: string[];
  recordedAt: string;
  claimed: { owner: string; at: string } | null;
}

function ownerDevice(d: DeviceRow, claim: ClaimRow | undefined): OwnerDevice {
  const p = d.payload;
  return {
    serial: d.serial,
    model: p.model,
    purchaseOrder: p.workOrder,
    status: d.status,
    dppUri: p.dppUri,
    idevid: p.idevid,
    macs: p.macs,
    recordedAt: p.recordedAt,
    claimed: claim ? { owner: claim.owner, at: claim.claimedAt } : null,
  };
}

export function supplyChainRoutes(db: SqlDatabase, trust: StationTrust): Route[] {
  return [
    recordsRoute(db, trust),
    {
      method: 'GET',
      pattern: '/api/v1/owners/:owner/devices',
      async handle(ctx) {
        const caller = requireRole(ctx, 'owner');
        const owner = ctx.params.owner!;
        if (caller !== owner) throw new HttpError(403, 'NOT_THIS_OWNER', `this credential belongs to ${caller}, not ${owner}`);
        const purchaseOrder = ctx.query.get('purchaseOrder') ?? undefined;
        const devices = await db.transaction(async (tx) => {
          const repo = new ServiceRepository(tx);
          const rows = await repo.devicesOfOwner(owner, purchaseOrder);
          return Promise.all(rows.map(async (d) => ownerDevice(d, await repo.claim(d.serial))));
        });
        return { status: 200, json: { owner, devices } };
      },
    },
    {
      method: 'POST',
      pattern: '/api/v1/devices/:serial/claim',
      async handle(ctx) {
        const caller = requireRole(ctx, 'owner');
        const serial = ctx.params.serial!;
        const body = ctx.body.length === 0 ? {} : jsonBody(ctx);
        const dppUri = body !== null && typeof body === 'object' && typeof (body as { dppUri?: unknown }).dppUri === 'string' ? (body as { dppUri: string }).dppUri : undefined;
        const at = new Date().toISOString();
        const result = await db.transaction(async (tx) => {
          const repo = new ServiceRepository(tx);
          const device = await repo.device(serial);
          if (!device) return new HttpError(404, 'DEVICE_UNKNOWN', `no device ${serial} is known to this service`);
          if (device.status === 'void') return new HttpError(409, 'DEVICE_VOID', `${serial} is void and cannot be claimed`);
          const existing = await repo.claim(serial);
          if (existing) {
            return existing.owner === caller ? ownerDevice(device, existing) : new HttpError(409, 'ALREADY_CLAIMED', `${serial} is already claimed by another owner`);
          }
          let via: 'purchase-order' | 'label';
          if (device.owner === caller) via = 'purchase-order';
          else if (device.owner === null) {
            // a device sold without a known owner: the DPP URI from its label proves possession
            if (dppUri === undefined || dppUri !== device.payload.dppUri) return new HttpError(403, 'PROOF_REQUIRED', `claiming ${serial} needs the DPP URI from its label ("dppUri")`);
            via = 'label';
          } else return new HttpError(403, 'NOT_OWNER', `${serial} was sold to another owner`);
          await repo.putClaim(serial, caller, at);
          await repo.appendAudit(serial, 'claimed', { owner: caller, via }, at);
          return ownerDevice(device, { owner: caller, claimedAt: at });
        }, [serial]);
        if (result instanceof HttpError) throw result;
        return { status: 200, json: result };
      },
    },
  ];
}
