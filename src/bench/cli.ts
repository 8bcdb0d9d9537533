/**
 * `npm run bench` (node dist/bench/cli.js): runs the benchmark groups and prints one table.
 *
 *   --only GROUP    run only this group (repeatable, or a comma list)
 *   --json FILE     also write a flat JSON object of the named finite figures
 *   --list          list the groups
 *
 * Exit 0 when every figure was measured (a missed target is printed and flagged, not a
 * failure), 1 when a figure could not be measured, 2 on bad usage or an unknown group.
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BENCH_GROUPS } from './registry';
import { runBench } from './runner';
import type { BenchGroup } from './types';

export interface BenchArgs {
  only: string[];
  json?: string;
  list: boolean;
  help: boolean;
}

export class UsageError extends Error {}

export function parseBenchArgs(args: readonly string[]): BenchArgs {
  const out: BenchArgs = { only: [], list: false, help: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--only':
        out.only.push(...value().split(',').map((s) => s.trim()).filter((s) => s !== ''));
        break;
      case '--json':
        out.json = value();
        break;
      case '--list':
        out.list = true;
        break;
      case '--help':
      case '-h':
        out.help = true;
        break;
      default:
        throw new UsageError(`unknown argument ${a}`);
    }
  }
  return out;
}

function usage(groups: readonly BenchGroup[]): string {
  return [
    'usage: bench [--only GROUP[,GROUP...]]... [--json FILE] [--list]',
    'groups:',
    ...groups.map((g) => `  ${g.name.padEnd(8)} ${g.description}`),
  ].join('\n');
}

export function environmentLines(): Array<[string, string]> {
  const cpu = cpus();
  return [
    ['node', process.version],
    ['platform', `${platform()} ${release()}`],
    ['cpus', `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown'}`],
    ['memory', `${Math.round(totalmem() / 2 ** 20)} MiB`],
  ];
}

export interface BenchIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const processIo: BenchIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };

/** Runs the bench for `argv` (process.argv form: node, script, args...) and returns the exit code. */
export async function runCli(argv: readonly string[], groups: readonly BenchGroup[] = BENCH_GROUPS, io: BenchIo = processIo): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`bench: ${err.message}\n${usage(groups)}\n`);
    return 2;
  }
  if (args.help || args.list) {
    io.stdout(usage(groups) + '\n');
    return 0;
  }
  const result = await runBench(groups, {
    only: args.only,
    environment: environmentLines(),
    log: (m) => io.stderr(`bench: ${m}\n`),
  });
  if (result.exitCode === 2) {
    io.stderr(`bench: ${result.table}${usage(groups)}\n`);
    return 2;
  }
  io.stdout(result.table);
  if (args.json) {
    const path = resolve(args.json);
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, JSON.stringify(result.json, null, 2) + '\n');
    } catch (err) {
      io.stderr(`bench: could not write ${path}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  return result.exitCode;
}

/** The entry point: runs, then sets the exit code (without cutting stdout short). */
export function main(argv: readonly string[] = process.argv): Promise<number> {
  return runCli(argv).then(
    (code) => {
      process.exitCode = code;
      return code;
    },
    (err: unknown) => {
      process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
      return 1;
    },
  );
}

if (require.main === module) void main(process.argv);
