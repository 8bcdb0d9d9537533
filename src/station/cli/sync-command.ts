/**
 * `station sync status | drain | dead-letters list|retry|drop` (contracts.md §2, §5;
 * docs/records-and-sync.md). status: per target its state (a paused target's alert), the backlog
 * and the age of the oldest pending record. drain: delivers now and waits (exit 0 when nothing
 * deliverable is left, 1 otherwise). dead-letters: list them; retry sends them again; drop gives
 * them up with a reason (audited).
 */
import type { Command } from 'commander';
import { ConfigError } from '../../core/errors';
import { SYNC_TARGET_NAMES, type SyncTargetName, type TargetStatus } from '../../manufacturer-db/outbox/outbox-store';
import { createRelay, createSyncTargets } from '../sync/station-sync';
import { positiveInt, cliIo } from './cli-support';
import { ExitCode } from './exit-codes';
import { commandContext, openExistingStore, operatorName, type RecordCommandDeps } from './station-db';

function age(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

export function formatSyncStatus(rows: readonly (TargetStatus & { configured: boolean })[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const state = !r.configured ? 'disabled' : r.state === 'paused' ? 'PAUSED' : 'active';
    out.push(
      `${r.target.padEnd(13)} ${state.padEnd(8)} pending ${r.pending}, delivered ${r.delivered}, dead-lettered ${r.deadLettered}, dropped ${r.dropped}; oldest pending ${age(r.oldestPendingAgeMs)}` +
        (r.lastSuccessAt ? `; last delivery ${r.lastSuccessAt}` : ''),
    );
    if (r.state === 'paused' && r.alert) out.push(`  ALERT since ${r.pausedSince}: ${r.alert}`);
  }
  return out.join('\n') + '\n';
}

function parseTarget(value: string | undefined): SyncTargetName | undefined {
  if (value === undefined) return undefined;
  const t = value === 'supplyChain' ? 'supply-chain' : value;
  if (!(SYNC_TARGET_NAMES as readonly string[]).includes(t)) throw new ConfigError('SYNC_TARGET_UNKNOWN', `No sync target "${value}"; targets: ${SYNC_TARGET_NAMES.join(', ')}.`);
  return t as SyncTargetName;
}

function parseIds(ids: string[] | undefined, all: boolean | undefined): number[] | 'all' {
  if (all) return 'all';
  if (!ids || ids.length === 0) throw new ConfigError('DEAD_LETTER_NONE_CHOSEN', 'Name the dead letters with --id N... or --all ("station sync dead-letters list" shows them).');
  return ids.map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError('DEAD_LETTER_UNKNOWN', `"${v}" is not a dead-letter id.`);
    return n;
  });
}

export function registerSyncCommand(program: Command, deps: RecordCommandDeps): Command {
  const { out, err, exit, env, fail } = cliIo(deps);

  const sync = program.command('sync').description('the outbox of signed device records and its delivery to the MASA and the supply-chain service');

  sync
    .command('status')
    .description('per target: state (and the alert of a paused target), backlog, dead letters, age of the oldest pending record')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        try {
          const configured = new Set(createSyncTargetNames(config));
          const rows = SYNC_TARGET_NAMES.map((t) => ({ ...store.outbox.status(t), configured: configured.has(t) }));
          out.write(opts.json ? JSON.stringify({ targets: rows }, null, 2) + '\n' : formatSyncStatus(rows));
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });

  sync
    .command('drain')
    .description('deliver the outbox now and wait until nothing deliverable is left (exit 1 when time runs out first)')
    .option('--timeout <SECONDS>', 'give up after this long', positiveInt, 60)
    .action(async (opts: { timeout: number }) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        const targets = createSyncTargets(config, dataDir);
        if (targets.length === 0) throw new ConfigError('SYNC_NOT_CONFIGURED', 'No sync target is configured ("sync" in the configuration); every record is "disabled".');
        const store = openExistingStore(dataDir, config.stationId);
        const relay = createRelay(config, store, targets, (e) => {
          if (e.type === 'paused' || e.type === 'retry') err.write(`${e.target}: ${e.type === 'paused' ? `PAUSED: ${e.alert}` : `retry in ${e.delayMs} ms: ${e.error}`}\n`);
        });
        try {
          // a paused target is tried again at once: the operator asked for it
          for (const t of targets) store.outbox.resumeTarget(t.name);
          const result = await relay.drain(opts.timeout * 1000);
          const rows = SYNC_TARGET_NAMES.map((t) => ({ ...store.outbox.status(t), configured: targets.some((x) => x.name === t) }));
          out.write(formatSyncStatus(rows));
          err.write(result.drained ? 'outbox drained\n' : `outbox not drained within ${opts.timeout} s\n`);
          exit(result.drained ? ExitCode.OK : ExitCode.DEVICE_FAILED);
        } finally {
          await relay.stop();
          relay.close();
          store.close();
        }
      } catch (e) {
        fail(e);
      }
    });

  const dead = sync.command('dead-letters').description('records a service refused (rejected, conflict, 400): list, retry or drop them');
  dead
    .command('list')
    .option('--target <T>', 'masa or supply-chain')
    .option('--json', 'print JSON')
    .action((opts: { target?: string; json?: boolean }) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        try {
          const list = store.outbox.deadLetters(parseTarget(opts.target));
          if (opts.json) out.write(JSON.stringify({ deadLetters: list }, null, 2) + '\n');
          else if (list.length === 0) out.write('no dead letters\n');
          else for (const d of list) out.write(`${String(d.id).padStart(6)}  ${d.target.padEnd(12)} ${d.idempotencyKey}  after ${d.attempts} attempt(s), ${d.updatedAt}: ${d.lastError ?? ''}\n`);
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });
  dead
    .command('retry')
    .description('send dead letters again (after the cause was fixed); audited')
    .option('--id <N...>', 'dead-letter ids')
    .option('--all', 'every dead letter (of --target)')
    .option('--target <T>', 'masa or supply-chain')
    .option('--operator <NAME>', 'who does this (audited)')
    .action((opts: { id?: string[]; all?: boolean; target?: string; operator?: string }) => {
      try {
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        try {
          const n = store.outbox.retryDeadLetters(parseIds(opts.id, opts.all), opts.operator ?? operatorName(env), parseTarget(opts.target));
          out.write(`${n} dead letter(s) queued again; "station sync drain" delivers them now\n`);
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });
  dead
    .command('drop')
    .description('give dead letters up for good, with a reason; audited')
    .option('--id <N...>', 'dead-letter ids')
    .option('--all', 'every dead letter (of --target)')
    .option('--target <T>', 'masa or supply-chain')
    .requiredOption('--reason <R>', 'why (recorded in the audit trail)')
    .option('--operator <NAME>', 'who does this (audited)')
    .action((opts: { id?: string[]; all?: boolean; target?: string; reason: string; operator?: string }) => {
      try {
        if (opts.reason.trim() === '') throw new ConfigError('REASON_REQUIRED', 'Dropping a dead letter needs a reason (--reason).');
        const { config, dataDir } = commandContext(program, deps);
        const store = openExistingStore(dataDir, config.stationId);
        try {
          const n = store.outbox.dropDeadLetters(parseIds(opts.id, opts.all), opts.reason, opts.operator ?? operatorName(env), parseTarget(opts.target));
          out.write(`${n} dead letter(s) dropped\n`);
        } finally {
          store.close();
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });
  return sync;
}

function createSyncTargetNames(config: { sync?: { masa?: unknown; supplyChain?: unknown } }): SyncTargetName[] {
  const names: SyncTargetName[] = [];
  if (config.sync?.masa) names.push('masa');
  if (config.sync?.supplyChain) names.push('supply-chain');
  return names;
}
