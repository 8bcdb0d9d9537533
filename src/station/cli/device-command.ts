/**
 * `station device retire --serial S --reason R`: a shipped device is taken out of service
 * (returned, destroyed, key compromised). Its certificate is voided, a signed void record is
 * queued for the MASA and the supply-chain service (which then refuse vouchers for it), and the
 * operator and reason are audited; one transaction. Uses the HSM (the station identity key).
 */
import type { Command } from 'commander';
import { ConfigError } from '../../core/errors';
import { withStationIdentity, createSyncTargets } from '../sync/station-sync';
import { DeviceRecorder } from '../../manufacturer-db/records/device-recorder';
import { RecordSigner } from '../../manufacturer-db/records/record-signer';
import { cliErrorLine, cliIo } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';
import { commandContext, openExistingStore, operatorName, type RecordCommandDeps } from './station-db';

export function registerDeviceCommand(program: Command, deps: RecordCommandDeps): Command {
  const { out, err, exit, env } = cliIo(deps);
  const device = program.command('device').description('one device\'s record');
  device
    .command('retire')
    .description('void the certificate of a shipped device and queue the signed void for the services (audited with operator and reason)')
    .requiredOption('--serial <S>', 'device serial')
    .requiredOption('--reason <R>', 'why (returned, destroyed, key compromised, ...)')
    .option('--operator <NAME>', 'who does this (audited)')
    .action(async (opts: { serial: string; reason: string; operator?: string }) => {
      try {
        if (opts.reason.trim() === '') throw new ConfigError('REASON_REQUIRED', 'Retiring a device needs a reason (--reason).');
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        try {
          const targets = createSyncTargets(config, dataDir);
          for (const t of targets) t.close();
          const r = await withStationIdentity(config, dataDir, env, async ({ signer, certificateDer }) => {
            const recorder = new DeviceRecorder(store, new RecordSigner(signer, certificateDer), targets.map((t) => t.name));
            return recorder.retire(opts.serial, opts.reason, opts.operator ?? operatorName(env));
          });
          out.write(
            `retired ${opts.serial}: certificate ${r.certificateSerial} is void; signed void record #${r.recordSequence}` +
              (r.queuedFor.length ? ` queued for ${r.queuedFor.join(' and ')} ("station sync drain" delivers it now)\n` : ' kept (no sync target configured)\n'),
          );
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        err.write(cliErrorLine(e));
        exit(exitCodeFor(e));
      }
    });
  return device;
}
