import { StationError } from '../../core/errors';

/** contracts.md §2. */
export const ExitCode = { OK: 0, DEVICE_FAILED: 1, USAGE: 2, HSM: 3, DATABASE: 4, INTERRUPTED: 5 } as const;

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof StationError)) return ExitCode.USAGE;
  switch (err.family) {
    case 'usage':
    case 'config':
      return ExitCode.USAGE;
    case 'hsm':
    case 'ca':
      return ExitCode.HSM;
    case 'database':
      return ExitCode.DATABASE;
    case 'interrupted':
      return ExitCode.INTERRUPTED;
    default:
      return ExitCode.DEVICE_FAILED;
  }
}
