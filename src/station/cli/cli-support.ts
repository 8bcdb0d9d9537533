/** What every `station` command shares: option parsing and the one-line error report. */
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
