/**
 * `station audit verify` (contracts.md §2): checks the audit trail's numbering (1, 2, 3... with no
 * gap) and its hash chain, and the signed device records (canonical payload, key, signature);
 * names the first break and exits 4 (database) on one, 0 when everything holds.
 */
import type { Command } from 'commander';
import { verifyAuditChain } from '../../manufacturer-db/audit-chain';
import { verifyDeviceRecords } from '../../manufacturer-db/records/verify-records';
import { cliErrorLine, cliIo } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';
import { commandContext, openExistingStore, type RecordCommandDeps } from './station-db';

export function registerAuditCommand(program: Command, deps: RecordCommandDeps): Command {
  const { out, err, exit } = cliIo(deps);
  const audit = program.command('audit').description('the audit trail: append-only, numbered, hash-chained events');
  audit
    .command('verify')
    .description('check the numbering and hash chain of the audit events and the signatures of the device records; exit 4 naming the first break')
    .option('--skip-records', 'check the audit chain only (not the device record signatures)')
    .option('--json', 'print one JSON object')
    .action((opts: { skipRecords?: boolean; json?: boolean }) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        let ok: boolean;
        try {
          const chain = verifyAuditChain(store.db);
          const records = opts.skipRecords ? undefined : verifyDeviceRecords(store.db);
          ok = chain.ok && (records?.ok ?? true);
          if (opts.json) {
            out.write(JSON.stringify({ ok, audit: chain, ...(records ? { records } : {}) }, null, 2) + '\n');
          } else {
            out.write(
              chain.ok
                ? `audit chain OK: ${chain.events} event(s), numbered 1..${chain.events}, hashes chained\n`
                : `audit chain BROKEN at event ${chain.firstBreak!.seq}: ${chain.firstBreak!.reason} (${chain.events} event(s) read)\n`,
            );
            if (records) {
              out.write(
                records.ok
                  ? `device records OK: ${records.records} record(s)${records.unsigned ? `, ${records.unsigned} unsigned (no station identity when recorded)` : ', all signed'}\n`
                  : `device record BROKEN: record ${records.firstBad!.id} (${records.firstBad!.serial} #${records.firstBad!.sequence}): ${records.firstBad!.reason}\n`,
              );
            }
          }
        } finally {
          store.close();
        }
        exit(ok ? ExitCode.OK : ExitCode.DATABASE);
      } catch (e) {
        err.write(cliErrorLine(e));
        exit(exitCodeFor(e));
      }
    });
  return audit;
}
