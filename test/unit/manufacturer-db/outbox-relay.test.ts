/**
 * The outbox state machine and relay against a real HTTPS server on 127.0.0.1 (mutual TLS, a
 * PKI made by openssl at test time) that answers scripted statuses: per contracts.md §5 and
 * docs/sync-api.md every record is stored exactly once, retried on 408/429/5xx/timeouts/TLS
 * errors, dead-lettered on rejected/conflict/400 (after isolating), and 401/403 pause the target.
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultStationConfig, type WorkOrder } from '../../../src/core/config';
import { HttpsRecordSink, type SinkBehaviour, type SinkRequest } from '../../../src/bench/https-record-sink';
import { issueTlsCertificate, makeTlsTestPki, type TlsTestPki } from '../../../src/bench/tls-test-pki';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { OutboxRelay } from '../../../src/manufacturer-db/outbox/outbox-relay';
import type { SyncTargetName } from '../../../src/manufacturer-db/outbox/outbox-store';
import { DeviceRecorder } from '../../../src/manufacturer-db/records/device-recorder';
import { RecordSigner } from '../../../src/manufacturer-db/records/record-signer';
import { verifyDeviceRecords } from '../../../src/manufacturer-db/records/verify-records';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import { HttpsSyncTarget } from '../../../src/manufacturer-db/sync-targets/https-sync-target';
import { fromPem } from '../../../src/hsm/ca/x509-builder';

const wo: WorkOrder = { ...defaultStationConfig().workOrders[0]!, id: 'WO-T', serial: { prefix: 'R-', width: 4, first: 1, last: 9999 }, owner: 'acme' };
let pkiCache: { pki: TlsTestPki; identityKey: ReturnType<typeof createPrivateKey>; identityCert: Buffer; otherPki: TlsTestPki } | undefined;

function pki() {
  if (!pkiCache) {
    const dir = mkdtempSync(join(tmpdir(), 'sync-pki-'));
    const p = makeTlsTestPki(join(dir, 'a'));
    const id = issueTlsCertificate(p.dir, 'identity', 'station-1', 'keyUsage=critical,digitalSignature\n');
    pkiCache = { pki: p, identityKey: createPrivateKey(readFileSync(id.key)), identityCert: fromPem(readFileSync(id.cert, 'utf8'))[0]!, otherPki: makeTlsTestPki(join(dir, 'b')) };
  }
  return pkiCache;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { script?: (r: SinkRequest) => SinkBehaviour; clientPki?: TlsTestPki; serverCaPki?: TlsTestPki; timeoutMs?: number; batchSize?: number } = {}) {
  const { pki: p, identityKey, identityCert } = pki();
  const sink = new HttpsRecordSink({ caCert: p.caCert, serverCert: p.serverCert, serverKey: p.serverKey, script: opts.script });
  const url = await sink.start();
  const store = new SqliteRecordStore(openDatabase(join(mkdtempSync(join(tmpdir(), 'outbox-')), 'station.db')), 'station-1');
  store.ensureWorkOrder(wo);
  store.startRun('run-1', wo.id);
  const client = opts.clientPki ?? p;
  const target = new HttpsSyncTarget({
    name: 'masa',
    url,
    serverCaCertificatePath: (opts.serverCaPki ?? p).caCert,
    clientKeyPath: client.clientKey,
    clientCertificatePath: client.clientCert,
    requestTimeoutMs: opts.timeoutMs ?? 5000,
  });
  const spki = new X509Certificate(identityCert).publicKey.export({ format: 'der', type: 'spki' });
  const signer = { algorithm: 'ecdsa-p256-sha256' as const, publicKeySpki: spki, sign: async (d: Uint8Array) => nodeSign('sha256', d, { key: identityKey, dsaEncoding: 'der' }) };
  const targets: SyncTargetName[] = ['masa'];
  const recorder = new DeviceRecorder(store, new RecordSigner(signer, identityCert), targets);
  const relay = new OutboxRelay(store.outbox, [target], { batchSize: opts.batchSize ?? 10, retry: { initialMs: 10, maxMs: 40, factor: 2 }, pauseProbeMs: 30 });
  cleanups.push(async () => {
    await relay.stop();
    relay.close();
    await sink.stop();
    store.close();
  });
  let n = 0;
  const provision = async (count: number): Promise<string[]> => {
    const serials: string[] = [];
    for (let i = 0; i < count; i++) {
      const mac = `02aa${(n++).toString(16).padStart(8, '0')}`;
      const serial = store.allocateDevice({ runId: 'run-1', workOrder: wo, port: 'p', hardwareId: '00ff', model: 'DemoSensor-1', firmwareVersion: '1', macs: [mac], method: 'secure-element-keygen' });
      const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
      const certSerial = createHash('sha256').update(serial).digest('hex').slice(0, 16);
      store.recordIssued({ certificateSerialHex: certSerial, deviceSerial: serial, workOrderId: wo.id, certificateDer: Buffer.concat([Buffer.from('cert:'), key]), publicKeySha256Hex: createHash('sha256').update(key).digest('hex'), issuedAt: new Date() });
      await recorder.recordVerified({ serial, keyOrigin: 'secure-element', publicKeySpki: key, dppUri: `DPP:M:${mac};K:x;;`, stages: [], runId: 'run-1', facts: { seSerial: `se-${serial}` } });
      serials.push(serial);
    }
    return serials;
  };
  return { sink, store, relay, recorder, provision, target };
}

const states = (store: SqliteRecordStore) => Object.fromEntries((store.db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state').all() as { state: string; n: number }[]).map((r) => [r.state, r.n]));

describe('outbox relay over HTTPS with mutual TLS', () => {
  it('commits record + audit + outbox in one transaction and drains in bulk, each record stored once', async () => {
    const { sink, store, relay, provision } = await setup({ batchSize: 10 });
    const serials = await provision(25);
    expect(states(store)).toEqual({ pending: 25 });
    const r = await relay.drain(10_000);
    expect(r.drained).toBe(true);
    expect(states(store)).toEqual({ delivered: 25 });
    expect(sink.stored.size).toBe(25);
    expect(sink.requests.length).toBe(3); // 10 + 10 + 5
    for (const s of serials) expect(store.outbox.deviceState(s, 'masa')).toBe('delivered');
    const first = JSON.parse(sink.stored.get(`station-1:${serials[0]}:1`)!) as Record<string, unknown>;
    expect(first).toMatchObject({ schema: 'device-record-v1', serial: serials[0], sequence: 1, owner: 'acme', seSerial: `se-${serials[0]}`, status: 'active', workOrder: 'WO-T' });
    expect(verifyDeviceRecords(store.db)).toMatchObject({ ok: true, records: 25, unsigned: 0 });
    expect(verifyAuditChain(store.db).ok).toBe(true);
  });

  it('a record prepared ahead is stored and queued only when committed, and only over what is recorded', async () => {
    const { store, recorder } = await setup();
    const serial = store.allocateDevice({ runId: 'run-1', workOrder: wo, port: 'p', hardwareId: '00ff', model: 'DemoSensor-1', firmwareVersion: '1', macs: ['02bb00000001'], method: 'secure-element-keygen' });
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
    store.recordIssued({ certificateSerialHex: 'ab01', deviceSerial: serial, workOrderId: wo.id, certificateDer: Buffer.concat([Buffer.from('cert:'), key]), publicKeySha256Hex: createHash('sha256').update(key).digest('hex'), issuedAt: new Date() });
    const input = { serial, keyOrigin: 'secure-element' as const, publicKeySpki: key, dppUri: 'DPP:M:02bb00000001;K:x;;', facts: { seSerial: 'se-1' } };
    const prepared = await recorder.prepareVerified(input);
    // signed, but nothing stored or queued yet (a device failing verify drops it)
    expect(prepared.write.signature).not.toBeNull();
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM device_records').get()).toEqual({ n: 0 });
    expect(states(store)).toEqual({});
    // not over what is recorded: refused, nothing written
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
    for (const wrong of [{ ...input, publicKeySpki: other }, { ...input, dppUri: 'DPP:K:y;;' }, { ...input, facts: { seSerial: 'se-2' } }]) {
      await expect(recorder.commitVerified(prepared, { ...wrong, stages: [], runId: 'run-1' })).rejects.toMatchObject({ code: 'RECORD_INVALID' });
    }
    expect(store.getDevice(serial)?.status).toBe('issued');
    expect(states(store)).toEqual({});
    await recorder.commitVerified(prepared, { ...input, publicKeySpki: Buffer.from(key), stages: [], runId: 'run-1' });
    expect(store.getDevice(serial)?.status).toBe('verified');
    expect(states(store)).toEqual({ pending: 1 });
    expect(verifyDeviceRecords(store.db)).toMatchObject({ ok: true, records: 1, unsigned: 0 });
  });

  it('retries 408, 429 (Retry-After), 500 and a slow answer past the timeout, then stores once', async () => {
    const plan: SinkBehaviour[] = [
      { kind: 'status', status: 408 },
      { kind: 'status', status: 429, retryAfter: '0' },
      { kind: 'status', status: 503 },
      { kind: 'slow', delayMs: 600 },
    ];
    const { sink, store, relay, provision } = await setup({ script: () => plan.shift() ?? { kind: 'normal' }, timeoutMs: 250 });
    await provision(3);
    expect((await relay.drain(10_000)).drained).toBe(true);
    expect(states(store)).toEqual({ delivered: 3 });
    expect(sink.stored.size).toBe(3);
    // the slow answer was committed by the sink and sent again: a duplicate, not a second copy
    expect([...sink.received.values()].every((n) => n === 2)).toBe(true);
    const attempts = store.db.prepare('SELECT attempts FROM outbox').all() as { attempts: number }[];
    expect(attempts.every((a) => a.attempts === 5)).toBe(true);
  });

  it('a server that commits and then drops the connection gets the batch again and stores it once', async () => {
    let dropped = false;
    const { sink, store, relay, provision } = await setup({ script: () => (dropped ? { kind: 'normal' } : ((dropped = true), { kind: 'drop-after-commit' })) });
    await provision(4);
    expect((await relay.drain(10_000)).drained).toBe(true);
    expect(sink.stored.size).toBe(4);
    expect([...sink.received.values()]).toEqual([2, 2, 2, 2]);
    expect(states(store)).toEqual({ delivered: 4 });
  });

  it('dead-letters rejected and conflicting records with their reason; the rest of the batch is delivered', async () => {
    let rejectKey = '';
    const { sink, store, relay, provision } = await setup({ script: () => ({ kind: 'reject', keys: [rejectKey], reason: 'signature does not verify' }) });
    const serials = await provision(3);
    rejectKey = `station-1:${serials[0]}:1`;
    sink.stored.set(`station-1:${serials[1]}:1`, '{"other":"payload"}');
    expect((await relay.drain(10_000)).drained).toBe(true);
    expect(states(store)).toEqual({ delivered: 1, 'dead-lettered': 2 });
    const dead = store.outbox.deadLetters('masa');
    expect(dead.map((d) => [d.deviceSerial, d.lastError])).toEqual([
      [serials[0], 'rejected: signature does not verify'],
      [serials[1], 'conflict: same key, different payload'],
    ]);
    expect(store.outbox.deviceState(serials[0]!, 'masa')).toBe('dead-lettered');
    const events = (store.db.prepare("SELECT type FROM audit_events WHERE type LIKE 'sync.%'").all() as { type: string }[]).map((e) => e.type);
    expect(events).toEqual(['sync.dead-lettered', 'sync.dead-lettered']);
  });

  it('a 400 batch is split and each record sent alone once; only the bad one is dead-lettered', async () => {
    let bad = '';
    const { sink, store, relay, provision } = await setup({ script: (r) => (r.keys.includes(bad) ? { kind: 'status', status: 400, body: '{"error":"malformed record"}' } : { kind: 'normal' }) });
    const serials = await provision(3);
    bad = `station-1:${serials[1]}:1`;
    expect((await relay.drain(10_000)).drained).toBe(true);
    expect(sink.requests.map((r) => r.keys.length)).toEqual([3, 1, 1, 1]);
    expect(states(store)).toEqual({ delivered: 2, 'dead-lettered': 1 });
    expect(store.outbox.deadLetters()[0]).toMatchObject({ deviceSerial: serials[1], lastError: expect.stringContaining('HTTP 400') });
  });

  it('keeps per-device order: a void is not sent before the record it supersedes is delivered', async () => {
    let fail = 2;
    const { sink, store, relay, recorder, provision } = await setup({ script: () => (fail-- > 0 ? { kind: 'status', status: 500 } : { kind: 'normal' }) });
    const [serial] = await provision(1);
    const r = await recorder.markFailed(serial!, 'run-1', { code: 'LOCK_FAILED', message: 'x', stage: 'lock' }, [], 'rework', { keyOrigin: 'secure-element', dppUri: null });
    expect(r.voidQueued).toBe(true);
    expect((await relay.drain(10_000)).drained).toBe(true);
    const sent = sink.requests.filter((q) => q.authorized).map((q) => q.keys);
    const firstVoid = sent.findIndex((k) => k.includes(`station-1:${serial}:2`));
    const firstOk = 2; // requests 0 and 1 were answered 500
    expect(sent.slice(0, firstOk + 1).every((k) => k.length === 1 && k[0] === `station-1:${serial}:1`)).toBe(true);
    expect(firstVoid).toBeGreaterThan(firstOk);
    expect(JSON.parse(sink.stored.get(`station-1:${serial}:2`)!)).toMatchObject({ status: 'void', voidReason: 'device failed: LOCK_FAILED', sequence: 2 });
    expect(store.getDevice(serial!)).toMatchObject({ certificateStatus: 'void', recordSequence: 2 });
  });

  it('401 and 403 pause the target with an alert and dead-letter nothing; it resumes when the service accepts the station again', async () => {
    const plan: SinkBehaviour[] = [{ kind: 'status', status: 403, body: '{"error":"station not allowed"}' }, { kind: 'status', status: 401 }];
    const { store, relay, provision } = await setup({ script: () => plan.shift() ?? { kind: 'normal' } });
    await provision(2);
    expect(await relay.deliverOnce('masa')).toBe(0);
    expect(store.outbox.status('masa')).toMatchObject({ state: 'paused', pending: 2, deadLettered: 0, alert: expect.stringContaining('HTTP 403') });
    expect((await relay.drain(10_000)).drained).toBe(true);
    expect(store.outbox.status('masa')).toMatchObject({ state: 'active', alert: null, delivered: 2, deadLettered: 0 });
    const events = (store.db.prepare("SELECT type FROM audit_events WHERE type LIKE 'sync.target%'").all() as { type: string }[]).map((e) => e.type);
    expect(events).toEqual(['sync.target-paused', 'sync.target-resumed']);
  });

  it('a client certificate from an unknown CA gets 401 (paused); an untrusted server certificate is a TLS error (retried, never dead-lettered)', async () => {
    const { other } = { other: pki().otherPki };
    const unknownClient = await setup({ clientPki: other });
    await unknownClient.provision(1);
    await unknownClient.relay.deliverOnce('masa');
    expect(unknownClient.store.outbox.status('masa')).toMatchObject({ state: 'paused', pending: 1 });
    expect(unknownClient.sink.stored.size).toBe(0);

    const untrustedServer = await setup({ serverCaPki: other });
    await untrustedServer.provision(1);
    await untrustedServer.relay.deliverOnce('masa');
    const row = untrustedServer.store.db.prepare('SELECT state, attempts, last_error FROM outbox').get() as { state: string; attempts: number; last_error: string };
    expect(row).toMatchObject({ state: 'pending', attempts: 1 });
    expect(row.last_error).toMatch(/certificate|self.signed|verify/i);
    expect(untrustedServer.sink.requests.length).toBe(0);
  });

  it('dead letters can be retried or dropped (with a reason); both are audited', async () => {
    let reject = true;
    const { store, relay, provision } = await setup({ script: (r) => (reject ? { kind: 'reject', keys: r.keys, reason: 'unknown model' } : { kind: 'normal' }) });
    await provision(2);
    await relay.drain(10_000);
    const [a, b] = store.outbox.deadLetters();
    reject = false;
    expect(() => store.outbox.dropDeadLetters([b!.id], ' ', 'op')).toThrow(expect.objectContaining({ code: 'REASON_REQUIRED' }));
    expect(store.outbox.retryDeadLetters([a!.id], 'op')).toBe(1);
    expect(store.outbox.dropDeadLetters([b!.id], 'model withdrawn', 'op')).toBe(1);
    await relay.drain(10_000);
    expect(states(store)).toEqual({ delivered: 1, dropped: 1 });
    const events = store.db.prepare("SELECT type, data FROM audit_events WHERE type IN ('sync.dead-letter-retried', 'sync.dead-letter-dropped') ORDER BY seq").all() as { type: string; data: string }[];
    expect(events.map((e) => e.type)).toEqual(['sync.dead-letter-retried', 'sync.dead-letter-dropped']);
    expect(JSON.parse(events[1]!.data)).toMatchObject({ reason: 'model withdrawn', operator: 'op' });
  });
});
