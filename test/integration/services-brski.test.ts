/**
 * The BRSKI confirmation end to end (docs/brski.md): simulated devices with their birth keys in
 * their SEs on PTYs, the `station` CLI provisioning them (the MASA's certificate installed as
 * their trust anchor) and syncing their records to the reference services, then
 * `station qa brski` on a device: pledge voucher-request from the device, QA registrar, MASA,
 * voucher verified by the device; the voucher also verified by `openssl cms -verify` against the
 * MASA certificate; the run's report.json updated (and still valid). A retired (void) device is
 * refused with 403; a MASA that does not know the device answers 404; --with-services works.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_KEY, parseVoucherCms, voucherBody } from '../../src/core/voucher-cms';
import { startReferenceServices, type ReferenceServices } from '../../src/services/launcher';
import { pemCertificates } from '../../src/services/pki/software-certificates';
import { loadConfig } from '../../src/station/cli/load-config';
import { startServicesForRun } from '../../src/station/reference-services';
import { SOFTHSM_DEFAULT_MODULE } from '../../src/hsm/pkcs11/softhsm-config';
import { SimLine } from '../../src/simulator/sim-line';
import { httpsRequest } from '../helpers/reference-services';
import { validateReport } from '../helpers/report-schema';
import { runStation, testDir } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

const dir = testDir('services-brski');
const data = join(dir, 'data');
const out = join(dir, 'out');
const cfgPath = join(dir, 'station.json');
const station = (args: string[]) => runStation(['--config', cfgPath, '--data-dir', data, ...args]);
let line: SimLine;
let services: ReferenceServices;
let serials: string[];

beforeAll(async () => {
  const init = await runStation(['--data-dir', data, 'pki', 'init']);
  expect(init.code, init.stderr).toBe(0);
  services = await startReferenceServices({ dir: join(dir, 'services'), stationCaCertificatePath: join(data, 'pki', 'station-ca.pem') });
  writeFileSync(
    cfgPath,
    JSON.stringify({
      sync: {
        masa: { url: services.masaUrl, serverCaCertificate: services.serverCaPath },
        supplyChain: { url: services.supplyChainUrl, serverCaCertificate: services.serverCaPath },
        retry: { initialMs: 50, maxMs: 500 },
      },
      products: { 'demo-sensor': { install: { masaTrustAnchor: services.masaCertificatePath } } },
    }),
  );
  line = await SimLine.start({ dir: join(dir, 'sim'), ports: 2, model: 'DemoSensor-1', firmwareVersion: '1.0.0', method: 'secure-element-keygen', faults: new Map(), softhsmModule: process.env.SOFTHSM_MODULE ?? SOFTHSM_DEFAULT_MODULE, keepDevices: true });
  const batch = await station(['batch', ...line.ports.flatMap((p) => ['--port', p.stationPath]), '--count', '2', '--out', out, '--wait-sync', '60']);
  expect(batch.code, batch.stderr).toBe(0);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { devices: { serial: string; port: string; sync: Record<string, string> }[] };
  for (const d of report.devices) expect(d.sync).toEqual({ masa: 'delivered', supplyChain: 'delivered' });
  serials = line.ports.map((p) => report.devices.find((d) => d.port === p.stationPath)!.serial);
}, 180_000);

afterAll(async () => {
  await line?.stop();
  await services?.stop();
});

describe('station qa brski', () => {
  it('gets a voucher the device verifies with its factory trust anchor; openssl verifies it against the MASA certificate; the report says verified', async () => {
    const qa = await station(['qa', 'brski', '--serial', serials[0]!, '--port', line.ports[0]!.stationPath, '--report', join(out, 'report.json')]);
    expect(qa.code, qa.stderr).toBe(0);
    const printed = JSON.parse(qa.stdout) as { serial: string; brski: { voucher: string; voucherPath: string } };
    expect(printed).toEqual({ serial: serials[0], brski: { voucher: 'verified', voucherPath: `brski/${serials[0]}-voucher.cms` } });

    const report = validateReport(join(out, 'report.json')) as { devices: { serial: string; brski?: unknown }[] };
    expect(report.devices.find((d) => d.serial === serials[0])!.brski).toEqual({ voucher: 'verified', voucherPath: `brski/${serials[0]}-voucher.cms` });
    expect(report.devices.find((d) => d.serial === serials[1])!.brski).toBeUndefined();

    const voucherPath = join(out, printed.brski.voucherPath);
    const checked = openssl(['cms', '-verify', '-inform', 'DER', '-in', voucherPath, '-CAfile', services.masaCertificatePath, '-purpose', 'any']);
    expect(checked.code, checked.out).toBe(0);
    expect(JSON.parse(checked.out.slice(0, checked.out.lastIndexOf('}') + 1))).toMatchObject({ [VOUCHER_KEY]: { 'serial-number': serials[0], assertion: 'proximity' } });
    // the device really signed the pledge request with the IDevID the station issued over its SE key
    const pledgePath = join(out, 'brski', `${serials[0]}-pledge-voucher-request.cms`);
    const pledgeChecked = openssl(['cms', '-verify', '-inform', 'DER', '-in', pledgePath, '-CAfile', join(out, 'certs', 'idevid-chain.pem'), '-purpose', 'any']);
    expect(pledgeChecked.code, pledgeChecked.out).toBe(0);
    const pledge = parseVoucherCms(readFileSync(pledgePath));
    const idevid = readFileSync(join(out, 'certs', `${serials[0]}.pem`), 'utf8');
    expect(pledge.signerCertificate!.toString('base64')).toBe(idevid.replace(/-----[^-]+-----|\s/g, ''));
    expect(voucherBody(parseVoucherCms(readFileSync(voucherPath)), VOUCHER_KEY)!['pinned-domain-cert']).toBe(readFileSync(join(data, 'brski-qa', 'domain-ca.pem'), 'utf8').replace(/-----[^-]+-----|\s/g, ''));
  }, 60_000);

  it('a retired (void) device gets no voucher: the MASA answers 403', async () => {
    const retire = await station(['device', 'retire', '--serial', serials[1]!, '--reason', 'returned', '--operator', 'qa']);
    expect(retire.code, retire.stderr).toBe(0);
    expect((await station(['sync', 'drain', '--timeout', '30'])).code).toBe(0);
    const qa = await station(['qa', 'brski', '--serial', serials[1]!, '--port', line.ports[1]!.stationPath, '--out', out]);
    expect(qa.code, qa.stderr).toBe(1);
    const printed = JSON.parse(qa.stdout) as { brski: { voucher: string; reason: string } };
    expect(printed.brski.voucher).toBe('rejected');
    expect(printed.brski.reason).toMatch(/^MASA answered 403: .* is void/);
  }, 60_000);

  it('a MASA that does not know the device answers 404', async () => {
    const empty = await startReferenceServices({ dir: join(dir, 'other-services'), stationCaCertificatePath: join(data, 'pki', 'station-ca.pem') });
    try {
      const qa = await station(['qa', 'brski', '--serial', serials[0]!, '--port', line.ports[0]!.stationPath, '--masa-url', empty.masaUrl, '--masa-ca', empty.serverCaPath, '--out', join(dir, 'out-404')]);
      expect(qa.code, qa.stderr).toBe(1);
      expect((JSON.parse(qa.stdout) as { brski: { reason: string } }).brski.reason).toMatch(/^MASA answered 404: no device/);
    } finally {
      await empty.stop();
    }
  }, 60_000);
});

describe('station batch --with-services', () => {
  it('starts the reference services for the run and delivers every record; they keep it under DATA/services; the MASA certificate is the trust anchor', async () => {
    const batch = await station(['batch', '--simulate', '1', '--count', '1', '--with-services', '--wait-sync', '60', '--out', join(dir, 'out-with')]);
    expect(batch.code, batch.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'out-with', 'report.json'), 'utf8')) as { devices: { serial: string; sync: Record<string, string> }[] };
    expect(report.devices[0]!.sync).toEqual({ masa: 'delivered', supplyChain: 'delivered' });
    // what --with-services does, again: the same services dir, so the MASA knows the device
    const run = await startServicesForRun(loadConfig(undefined), data);
    try {
      expect(run.config.products['demo-sensor']!.install.masaTrustAnchor).toBe(join(data, 'services', 'masa', 'masa-signing.pem'));
      expect(run.config.sync?.masa?.url).toBe(run.services.masaUrl);
      const tlsCert = readFileSync(join(data, 'sync', 'client-cert.pem'), 'utf8');
      const client = { key: createPrivateKey(readFileSync(join(data, 'sync', 'client-key.pem'))), certificate: pemCertificates(tlsCert)[0]! };
      const audit = await httpsRequest(`${run.services.masaUrl}/api/v1/devices/${report.devices[0]!.serial}/audit`, { ca: readFileSync(run.services.serverCaPath), client });
      expect(audit.status).toBe(200);
      expect(audit.json<{ status: string; events: { event: string }[] }>()).toMatchObject({ status: 'active', events: [{ event: 'record-stored' }] });
    } finally {
      await run.services.stop();
    }
  }, 120_000);
});
