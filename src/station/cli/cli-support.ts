/** What every `station` command shares: option parsing and the one-line error report. */
import { exitCodeFor } from './exit-codes';
import { InvalidArgumentError } from 'commander';
import { StationError } from '../../core/errors';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** `station: CODE: message` for station errors; the stack for anything unexpected. */
export function cliErrorLine(err: unknown): string {
  return err instanceof StationError ? `station: ${err.code}: ${err.message}\n` : `station: ${(err as Error)?.stack ?? String(err)}\n`;
}

/** The streams, exit and environment a command writes to (tests give their own), and its one way to fail. */
export interface CliIoDeps {
  env?: NodeJS.ProcessEnv;
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  exit?: (code: number) => void;
}

export function cliIo(deps: CliIoDeps): {
  out: { write(text: string): unknown };
  err: { write(text: string): unknown };
  exit: (code: number) => void;
  env: NodeJS.ProcessEnv;
  /** One error line on stderr, then the exit code of the error's family. */
  fail: (e: unknown) => void;
} {
  const err = deps.stderr ?? process.stderr;
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  return {
    out: deps.stdout ?? process.stdout,
    err,
    exit,
    env: deps.env ?? process.env,
    fail: (e: unknown) => {
      err.write(cliErrorLine(e));
      exit(exitCodeFor(e));
    },
  };
}
