/**
 * A real crash between the issuance intent and the certificate record: a child process (the
 * built station code, real SQLite WAL) is killed with SIGKILL while the "HSM" signs. The intent
 * survives; resolveDanglingIntents fails the device with ISSUANCE_INTERRUPTED, rework.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../src/manufacturer-db/sqlite-record-store';
import { REPO, testDir } from '../helpers/station-cli';

const DIST = join(REPO, 'dist');

const CHILD = `
const { generateKeyPairSync, sign } = require('node:crypto');
const DIST = process.argv[1], DB = process.argv[2];
const { defaultStationConfig } = require(DIST + '/core/config');
const { openDatabase } = require(DIST + '/manufacturer-db/sqlite-database');
const { SqliteRecordStore } = require(DIST + '/manufacturer-db/sqlite-record-store');
const { IdevidIssuer } = require(DIST + '/hsm/ca/idevid-issuer');
const { buildRootCaCertificate } = require(DIST + '/hsm/ca/ca-certificates');
const { buildName } = require(DIST + '/hsm/ca/x509-builder');
(async () => {
  const cfg = defaultStationConfig();
  const wo = cfg.workOrders[0];
  const product = cfg.products[wo.product];
  const ca = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signer = { algorithm: 'ecdsa-p256-sha256', publicKeySpki: ca.publicKey.export({ format: 'der', type: 'spki' }),
    sign: async (d) => sign('sha256', d, { key: ca.privateKey, dsaEncoding: 'der' }) };
  const caCert = await buildRootCaCertificate(buildName([{ oid: '2.5.4.3', value: 'Crash CA' }]), signer);
  const store = new SqliteRecordStore(openDatabase(DB), cfg.stationId);
  store.ensureWorkOrder(wo);
  store.startRun('run-crash', wo.id);
  const serial = store.allocateDevice({ runId: 'run-crash', workOrder: wo, port: '/dev/sim0', hardwareId: 'hw-crash', model: product.model,
    firmwareVersion: '1', macs: ['020000c0ffee'], method: wo.method });
  const dying = { ...signer, sign: async () => { process.stdout.write(serial + '\\n'); process.kill(process.pid, 'SIGKILL'); return new Promise(() => {}); } };
  const device = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
  await new IdevidIssuer(dying, [caCert], store).issue({ spki: device, serial, model: product.model, workOrderId: wo.id, profile: product.idevid });
  process.stdout.write('not killed\\n');
})();
`;

describe('issuance interrupted by a crash', () => {
  it('keeps the intent through SIGKILL, and the next start fails the device for rework', () => {
    expect(existsSync(join(DIST, 'hsm/ca/idevid-issuer.js')), 'build first: npx tsc -p tsconfig.json').toBe(true);
    const db = join(testDir('crash'), 'station.db');
    const child = spawnSync(process.execPath, ['-e', CHILD, DIST, db], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    const serial = child.stdout.trim();
    expect(serial).toBe('DEMO-000001');

    const store = new SqliteRecordStore(openDatabase(db), 'station-1');
    try {
      expect(store.getDevice(serial)?.status).toBe('assigned');
      const resolved = store.resolveDanglingIntents();
      expect(resolved).toEqual([expect.objectContaining({ deviceSerial: serial, deviceMarkedFailed: true })]);
      expect(store.getDevice(serial)).toMatchObject({ status: 'failed', disposition: 'rework', error: expect.objectContaining({ code: 'ISSUANCE_INTERRUPTED', stage: 'issue' }) });
      expect((store.db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'issuance.interrupted' AND serial = ?").get(serial) as { n: number }).n).toBe(1);
    } finally {
      store.close();
    }
  });
});
