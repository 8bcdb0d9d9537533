/**
 * Faults a reference service can be started with, for the station's sync tests (docs/services.md):
 * they apply to `POST /api/v1/records` only, each for the next N batches.
 *   drop-after-commit:N   commit the batch, then drop the connection without an answer
 *   status:CODE:N         answer CODE (e.g. 503, 429, 401) without reading the batch
 *   delay:MS:N            wait MS milliseconds before handling the batch
 */
export type ServiceFault =
  | { kind: 'drop-after-commit'; remaining: number }
  | { kind: 'status'; status: number; remaining: number }
  | { kind: 'delay'; ms: number; remaining: number };

export function parseServiceFault(spec: string): ServiceFault {
  const parts = spec.split(':');
  const int = (s: string | undefined, what: string, min: number, max: number) => {
    const n = s !== undefined && /^\d+$/.test(s) ? Number(s) : NaN;
    if (!(n >= min && n <= max)) throw new Error(`fault ${spec}: ${what} must be ${min}..${max}`);
    return n;
  };
  switch (parts[0]) {
    case 'drop-after-commit':
      if (parts.length !== 2) break;
      return { kind: 'drop-after-commit', remaining: int(parts[1], 'N', 1, 1_000_000) };
    case 'status':
      if (parts.length !== 3) break;
      return { kind: 'status', status: int(parts[1], 'CODE', 400, 599), remaining: int(parts[2], 'N', 1, 1_000_000) };
    case 'delay':
      if (parts.length !== 3) break;
      return { kind: 'delay', ms: int(parts[1], 'MS', 0, 600_000), remaining: int(parts[2], 'N', 1, 1_000_000) };
  }
  throw new Error(`unknown fault ${spec}: use drop-after-commit:N, status:CODE:N or delay:MS:N`);
}

/** Takes the next use of a fault of this kind, if one is left. */
export function takeFault<K extends ServiceFault['kind']>(faults: ServiceFault[], kind: K): Extract<ServiceFault, { kind: K }> | undefined {
  const f = faults.find((x) => x.kind === kind && x.remaining > 0);
  if (!f) return undefined;
  f.remaining--;
  return f as Extract<ServiceFault, { kind: K }>;
}
