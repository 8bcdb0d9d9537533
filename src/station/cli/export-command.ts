/**
 * `station export --work-order ID | --owner X --format json|csv|pem|aws|jws [--out FILE]`
 * (contracts.md §2; docs/records-and-sync.md "Exports"): the passed devices with an active
 * certificate. jws signs each entry with the station identity key (HSM).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../core/errors';
import { exportAwsBulk, exportCsv, exportJson, exportPem, selectExportedDevices } from '../../manufacturer-db/exports/export-devices';
import { exportJwsManifest } from '../../manufacturer-db/exports/jws-manifest';
import { withStationIdentity } from '../sync/station-sync';
import { cliErrorLine, cliIo } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';
import { commandContext, openExistingStore, type RecordCommandDeps } from './station-db';

const FORMATS = ['json', 'csv', 'pem', 'aws', 'jws'] as const;
type ExportFormat = (typeof FORMATS)[number];

export function registerExportCommand(program: Command, deps: RecordCommandDeps): Command {
  const { out, err, exit, env } = cliIo(deps);
  return program
    .command('export')
    .description('the shipped devices of a work order or an owner: DPP URIs (json, csv), IDevIDs (pem), AWS IoT bulk registration (aws), signed manifest (jws)')
    .option('--work-order <ID>', 'devices of this work order')
    .option('--owner <X>', 'devices of this owner')
    .requiredOption('--format <F>', FORMATS.join(' | '))
    .option('--out <FILE>', 'write to FILE instead of standard output')
    .action(async (opts: { workOrder?: string; owner?: string; format: string; out?: string }) => {
      try {
        if ((opts.workOrder === undefined) === (opts.owner === undefined)) throw new ConfigError('EXPORT_SELECTOR', 'Give exactly one of --work-order ID and --owner X.');
        if (!(FORMATS as readonly string[]).includes(opts.format)) throw new ConfigError('EXPORT_FORMAT', `Unknown format "${opts.format}"; formats: ${FORMATS.join(', ')}.`);
        const format = opts.format as ExportFormat;
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        let text: string;
        let count: number;
        try {
          const devices = selectExportedDevices(store.db, opts.workOrder !== undefined ? { workOrder: opts.workOrder } : { owner: opts.owner! });
          count = devices.length;
          if (format === 'jws') {
            const wo = config.workOrders.find((w) => w.id === (opts.workOrder ?? devices[0]?.workOrder)) ?? config.workOrders[0]!;
            const profile = config.products[wo.product]!.idevid;
            text = await withStationIdentity(config, dataDir, env, ({ signer, certificateDer, idevidChain }) =>
              exportJwsManifest(devices, {
                signer,
                stationCertificateDer: certificateDer,
                idevidIssuersDer: idevidChain.slice(0, 1),
                manufacturer: { organizationName: profile.organization, organizationalUnitName: profile.organizationalUnit ?? 'IDevID' },
              }),
            );
          } else {
            text = { json: exportJson, csv: exportCsv, pem: exportPem, aws: exportAwsBulk }[format](devices);
          }
        } finally {
          store.close();
        }
        if (opts.out) {
          writeFileSync(resolve(opts.out), text);
          err.write(`exported ${count} device(s) as ${format} to ${resolve(opts.out)}\n`);
        } else {
          out.write(text);
        }
        exit(ExitCode.OK);
      } catch (e) {
        err.write(cliErrorLine(e));
        exit(exitCodeFor(e));
      }
    });
}
