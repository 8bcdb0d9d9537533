/**
 * Contract tests of the reference MASA and supply-chain service (src/services), the same suite
 * on SQLite and on PostgreSQL (a throwaway cluster on 127.0.0.1, started once for the file):
 * mTLS (401/403), idempotency (stored once; duplicate; conflict), signatures and unknown
 * stations, per-device sequence and void, owner retrieval and claim, 404s, the voucher endpoint
 * (issued voucher checked by openssl cms -verify; void 403; unknown 404; trust on first use),
 * and a server that commits then drops the connection.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordBatchResponse } from '../../src/core/device-record';
import { VOUCHER_KEY, parseVoucherCms, voucherBody, voucherCmsSignatureProblem } from '../../src/core/voucher-cms';
import { ensureOwnerCredential, startReferenceServices, type ReferenceServices } from '../../src/services/launcher';
import { readCertificates, readPrivateKey } from '../../src/services/pki/key-files';
import {
  VOUCHER_CMS,
  deviceIdentity,
  httpsRequest,
  issueIdentity,
  makeCa,
  payloadFor,
  pledgeVoucherRequest,
  registrarIdentity,
  registrarVoucherRequest,
  signRecord,
  startTestPostgres,
  type Ca,
  type Identity,
  type TestPostgres,
} from '../helpers/reference-services';
import { testDir } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(() => pg?.stop());

describe.each(['sqlite', 'postgres'] as const)('reference services on %s', (storageKind) => {
  const dir = testDir(`services-${storageKind}`);
  let services: ReferenceServices;
  let serverCa: Buffer;
  let stationCa: Ca;
  let station: Identity;
  let idevidCa: Ca;
  let domainCa: Ca;
  let registrar: Identity;
  const serial = (n: number) => `${storageKind.toUpperCase()}-${String(n).padStart(4, '0')}`;
  const owner = (name: string) => {
    const cred = ensureOwnerCredential(join(dir, 'services'), name);
    return { key: readPrivateKey(cred.keyPath), certificate: readCertificates(cred.certificatePath)[0]!.raw };
  };

  beforeAll(async () => {
    stationCa = makeCa(dir, 'Test station CA');
    station = issueIdentity(dir, stationCa, 'station-1');
    idevidCa = makeCa(dir, 'Test IDevID CA');
    domainCa = makeCa(dir, 'Owner domain CA');
    registrar = registrarIdentity(dir, domainCa, 'Owner registrar');
    const db = `svc_${randomBytes(4).toString('hex')}`;
    if (storageKind === 'postgres') {
      pg.createDatabase(`${db}_masa`);
      pg.createDatabase(`${db}_supply`);
    }
    services = await startReferenceServices({
      dir: join(dir, 'services'),
      stationCaCertificatePath: stationCa.path,
      allowedStations: ['station-1'],
      storage: storageKind === 'sqlite' ? { kind: 'sqlite' } : { kind: 'postgres', masaConnectionString: pg.url(`${db}_masa`), supplyChainConnectionString: pg.url(`${db}_supply`) },
    });
    serverCa = readFileSync(services.serverCaPath);
  });
  afterAll(async () => {
    await services?.stop();
  });

  /** POST a batch; `client` null = no client certificate. */
  const post = (url: string, body: object, client: { key: import('node:crypto').KeyObject; certificate: Buffer } | null = station) =>
    httpsRequest(`${url}/api/v1/records`, { ca: serverCa, client: client ?? undefined, body });
  const audit = async (s: string) => (await httpsRequest(`${services.masaUrl}/api/v1/devices/${encodeURIComponent(s)}/audit`, { ca: serverCa, client: station })).json<{ status: string; events: { event: string; detail: Record<string, unknown> }[] }>();

  it('answers 401 without or with an unknown client certificate, 403 for a known client of another role or station', async () => {
    const rec = signRecord(station, payloadFor(serial(1), deviceIdentity(dir, idevidCa, serial(1)).certificate));
    for (const url of [services.masaUrl, services.supplyChainUrl]) {
      expect((await post(url, { records: [rec] }, null)).status).toBe(401);
      const stranger = issueIdentity(dir, makeCa(dir, 'Stranger CA'), 'station-1');
      expect((await post(url, { records: [rec] }, stranger)).status).toBe(401);
      expect((await post(url, { records: [rec] }, issueIdentity(dir, stationCa, 'station-2'))).status).toBe(403);
    }
    expect((await post(services.supplyChainUrl, { records: [rec] }, owner('acme'))).status).toBe(403);
    expect((await httpsRequest(`${services.masaUrl}/api/v1/devices/${serial(1)}/audit`, { ca: serverCa })).status).toBe(401);
  });

  it('stores an idempotency key once: the same payload again is duplicate, another payload conflict', async () => {
    const dev = deviceIdentity(dir, idevidCa, serial(2));
    const rec = signRecord(station, payloadFor(serial(2), dev.certificate));
    for (const url of [services.masaUrl, services.supplyChainUrl]) {
      const first = await post(url, { records: [rec] });
      expect(first.status).toBe(200);
      expect(first.json<RecordBatchResponse>().results).toEqual([{ idempotencyKey: `station-1:${serial(2)}:1`, status: 'stored' }]);
      // a resend, re-signed (ECDSA signatures differ) but the same payload
      const again = await post(url, { records: [signRecord(station, rec.payload)] });
      expect(again.json<RecordBatchResponse>().results[0]!.status).toBe('duplicate');
      const changed = signRecord(station, { ...rec.payload, model: 'Other-1' });
      const conflict = await post(url, { records: [changed] });
      expect(conflict.json<RecordBatchResponse>().results[0]).toMatchObject({ status: 'conflict' });
    }
    const events = (await audit(serial(2))).events.filter((e) => e.event === 'record-stored');
    expect(events).toHaveLength(1);
  });

  it('rejects a bad signature, a record from a station the CA does not know, a wrong key and a bad schema, each alone', async () => {
    const dev = deviceIdentity(dir, idevidCa, serial(3));
    const good = signRecord(station, payloadFor(serial(3), dev.certificate));
    const badSig = { ...good, signature: { ...good.signature, value: Buffer.alloc(64, 1).toString('base64url') } };
    const foreign = signRecord(issueIdentity(dir, makeCa(dir, 'Rogue CA'), 'station-1'), payloadFor(serial(4), dev.certificate));
    const wrongKey = { ...good, idempotencyKey: 'station-1:nope:1' };
    const answer = await post(services.masaUrl, { records: [badSig, foreign, wrongKey, { idempotencyKey: 'x:y:1', payload: {} }, good] });
    expect(answer.status).toBe(200);
    const results = answer.json<RecordBatchResponse>().results;
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'stored']);
    expect(results[0]!.reason).toMatch(/signature does not verify/);
    expect(results[1]!.reason).toMatch(/unknown station/);
    expect(results[2]!.reason).toMatch(/idempotency key must be/);
    expect(results[3]!.reason).toMatch(/^schema: /);
    expect((await post(services.masaUrl, { records: [] })).status).toBe(400);
    expect((await httpsRequest(`${services.masaUrl}/api/v1/records`, { ca: serverCa, client: station, body: Buffer.from('{'), contentType: 'application/json' })).status).toBe(400);
  });

  it('applies a device\'s records in sequence order: a gap is rejected, a void supersedes', async () => {
    const dev = deviceIdentity(dir, idevidCa, serial(5));
    const first = signRecord(station, payloadFor(serial(5), dev.certificate));
    const voided = signRecord(station, payloadFor(serial(5), dev.certificate, { sequence: 2, status: 'void', voidReason: 'failed verify' }));
    const early = await post(services.masaUrl, { records: [voided] });
    expect(early.json<RecordBatchResponse>().results[0]).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/sequence gap/) });
    const both = await post(services.masaUrl, { records: [first, voided] });
    expect(both.json<RecordBatchResponse>().results.map((r) => r.status)).toEqual(['stored', 'stored']);
    const log = await audit(serial(5));
    expect(log.status).toBe('void');
    expect(log.events.map((e) => e.event)).toEqual(['record-stored', 'device-void']);
  });

  it('answers 404 for unknown devices', async () => {
    expect((await httpsRequest(`${services.masaUrl}/api/v1/devices/NOPE-1/audit`, { ca: serverCa, client: station })).status).toBe(404);
    expect((await httpsRequest(`${services.supplyChainUrl}/api/v1/devices/NOPE-1/claim`, { ca: serverCa, client: owner('acme'), body: {} })).status).toBe(404);
    const dev = deviceIdentity(dir, idevidCa, 'NOPE-2');
    const prior = pledgeVoucherRequest(dev, 'NOPE-2', randomBytes(8), registrar.certificate);
    const answer = await httpsRequest(`${services.masaUrl}/.well-known/brski/requestvoucher`, { ca: serverCa, body: registrarVoucherRequest(registrar, domainCa.certificate, 'NOPE-2', undefined, prior), contentType: VOUCHER_CMS });
    expect(answer.status).toBe(404);
  });

  it('gives owners their devices with their own credential, and lets them claim', async () => {
    const sold = [serial(10), serial(11)].map((s) => signRecord(station, payloadFor(s, deviceIdentity(dir, idevidCa, s).certificate, { owner: 'acme', workOrder: 'PO-77' })));
    const retail = signRecord(station, payloadFor(serial(12), deviceIdentity(dir, idevidCa, serial(12)).certificate));
    const scrapped = signRecord(station, payloadFor(serial(13), deviceIdentity(dir, idevidCa, serial(13)).certificate, { owner: 'acme' }));
    const scrappedVoid = signRecord(station, { ...scrapped.payload, sequence: 2, status: 'void', voidReason: 'scrap' });
    expect((await post(services.supplyChainUrl, { records: [...sold, retail, scrapped, scrappedVoid] })).json<RecordBatchResponse>().results.every((r) => r.status === 'stored')).toBe(true);

    const list = await httpsRequest(`${services.supplyChainUrl}/api/v1/owners/acme/devices?purchaseOrder=PO-77`, { ca: serverCa, client: owner('acme') });
    expect(list.status).toBe(200);
    const devices = list.json<{ devices: { serial: string; dppUri: string; idevid: string; purchaseOrder: string; claimed: unknown }[] }>().devices;
    expect(devices.map((d) => d.serial)).toEqual([serial(10), serial(11)]);
    expect(devices[0]).toMatchObject({ purchaseOrder: 'PO-77', dppUri: sold[0]!.payload.dppUri, idevid: sold[0]!.payload.idevid, claimed: null });
    expect((await httpsRequest(`${services.supplyChainUrl}/api/v1/owners/acme/devices`, { ca: serverCa, client: owner('globex') })).status).toBe(403);
    expect((await httpsRequest(`${services.supplyChainUrl}/api/v1/owners/acme/devices`, { ca: serverCa, client: station })).status).toBe(403);

    const claim = (s: string, who: string, body: object = {}) => httpsRequest(`${services.supplyChainUrl}/api/v1/devices/${s}/claim`, { ca: serverCa, client: owner(who), body });
    expect((await claim(serial(10), 'acme')).json()).toMatchObject({ serial: serial(10), claimed: { owner: 'acme' } });
    expect((await claim(serial(10), 'acme')).status).toBe(200); // idempotent
    expect((await claim(serial(11), 'globex')).status).toBe(403);
    expect((await claim(serial(12), 'globex')).status).toBe(403); // no owner known: needs the label's DPP URI
    expect((await claim(serial(12), 'globex', { dppUri: retail.payload.dppUri })).status).toBe(200);
    expect((await claim(serial(12), 'acme', { dppUri: retail.payload.dppUri })).status).toBe(409);
    expect((await claim(serial(13), 'acme')).status).toBe(409); // void
    const globex = (await httpsRequest(`${services.supplyChainUrl}/api/v1/owners/globex/devices`, { ca: serverCa, client: owner('globex') })).json<{ devices: { serial: string }[] }>();
    expect(globex.devices.map((d) => d.serial)).toEqual([serial(12)]);
  });

  it('issues a CMS voucher that openssl verifies against the MASA certificate; binds the first domain; refuses void devices', async () => {
    const s = serial(20);
    const dev = deviceIdentity(dir, idevidCa, s);
    await post(services.masaUrl, { records: [signRecord(station, payloadFor(s, dev.certificate))] });
    const nonce = randomBytes(16);
    const ask = (reg: Identity, ca: Buffer, pledge: Identity = dev, n: Buffer | undefined = nonce, proximity = reg.certificate) =>
      httpsRequest(`${services.masaUrl}/.well-known/brski/requestvoucher`, {
        ca: serverCa,
        client: reg,
        body: registrarVoucherRequest(reg, ca, s, n, pledgeVoucherRequest(pledge, s, n, proximity)),
        contentType: VOUCHER_CMS,
        accept: VOUCHER_CMS,
      });

    const answer = await ask(registrar, domainCa.certificate);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe(VOUCHER_CMS);
    const vPath = join(dir, `${s}.voucher`);
    writeFileSync(vPath, answer.body);
    const verified = openssl(['cms', '-verify', '-inform', 'DER', '-in', vPath, '-CAfile', services.masaCertificatePath, '-purpose', 'any']);
    expect(verified.code, verified.out).toBe(0);
    const parsed = parseVoucherCms(answer.body);
    expect(voucherCmsSignatureProblem(parsed, readCertificates(services.masaCertificatePath)[0]!.raw)).toBeNull();
    expect(voucherBody(parsed, VOUCHER_KEY)).toMatchObject({ assertion: 'proximity', 'serial-number': s, nonce: nonce.toString('base64'), 'pinned-domain-cert': domainCa.certificate.toString('base64') });

    // wrong pledge key, wrong proximity, another domain after the first (trust on first use)
    expect((await ask(registrar, domainCa.certificate, deviceIdentity(dir, idevidCa, s))).status).toBe(403);
    expect((await ask(registrar, domainCa.certificate, dev, nonce, registrarIdentity(dir, domainCa, 'Other registrar').certificate)).status).toBe(403);
    const otherCa = makeCa(dir, 'Other domain CA');
    const other = await ask(registrarIdentity(dir, otherCa, 'Other domain registrar'), otherCa.certificate);
    expect(other.status).toBe(403);
    expect(other.json<{ error: { message: string } }>().error.message).toMatch(/already owned/);
    expect((await ask(registrar, domainCa.certificate)).status).toBe(200);

    await post(services.masaUrl, { records: [signRecord(station, payloadFor(s, dev.certificate, { sequence: 2, status: 'void', voidReason: 'retired' }))] });
    const refused = await ask(registrar, domainCa.certificate);
    expect(refused.status).toBe(403);
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('DEVICE_VOID');
    const events = (await audit(s)).events.map((e) => e.event);
    expect(events).toEqual(['record-stored', 'owner-bound', 'voucher-issued', 'voucher-refused', 'voucher-refused', 'voucher-refused', 'voucher-issued', 'device-void', 'voucher-refused']);
  });
});

describe('a service that commits, then drops the connection', () => {
  it('stores one copy when the station sends the batch again', async () => {
    const dir = testDir('services-drop');
    const stationCa = makeCa(dir, 'Test station CA');
    const station = issueIdentity(dir, stationCa, 'station-1');
    const services = await startReferenceServices({ dir: join(dir, 'services'), stationCaCertificatePath: stationCa.path, faults: { masa: ['drop-after-commit:1'] } });
    try {
      const serverCa = readFileSync(services.serverCaPath);
      const dev = deviceIdentity(dir, makeCa(dir, 'IDevID CA'), 'DROP-1');
      const batch = { records: [signRecord(station, payloadFor('DROP-1', dev.certificate))] };
      await expect(httpsRequest(`${services.masaUrl}/api/v1/records`, { ca: serverCa, client: station, body: batch })).rejects.toThrow(/socket hang up|ECONNRESET/);
      const resend = await httpsRequest(`${services.masaUrl}/api/v1/records`, { ca: serverCa, client: station, body: batch });
      expect(resend.json<RecordBatchResponse>().results[0]!.status).toBe('duplicate');
      const log = (await httpsRequest(`${services.masaUrl}/api/v1/devices/DROP-1/audit`, { ca: serverCa, client: station })).json<{ events: { event: string }[] }>();
      expect(log.events.filter((e) => e.event === 'record-stored')).toHaveLength(1);
    } finally {
      await services.stop();
    }
  });
});
