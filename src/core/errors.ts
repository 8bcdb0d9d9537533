/**
 * One error family for the whole station. Every error carries a stable `code`
 * (what scripts and the GUI switch on), the run `stage` where it happened when
 * known, whether a retry could help, and `details` that must already be free of
 * secrets (PINs, seeds and keys are never put here).
 */
export type StageName =
  | 'connect'
  | 'identify'
  | 'assign'
  | 'obtain-key'
  | 'issue'
  | 'install'
  | 'verify'
  | 'record'
  | 'lock'
  | 'label'
  | 'queue-sync';

export type ErrorFamily = 'usage' | 'config' | 'device' | 'hsm' | 'ca' | 'database' | 'label' | 'printer' | 'interrupted';

export interface StationErrorOptions {
  stage?: StageName;
  retryable?: boolean;
  details?: Record<string, string | number | boolean | null>;
  cause?: unknown;
}

export class StationError extends Error {
  readonly code: string;
  readonly family: ErrorFamily;
  stage: StageName | undefined;
  readonly retryable: boolean;
  readonly details: Record<string, string | number | boolean | null>;

  constructor(family: ErrorFamily, code: string, message: string, options: StationErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.family = family;
    this.code = code;
    this.stage = options.stage;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  toJSON(): { code: string; message: string; stage: StageName | null } {
    return { code: this.code, message: this.message, stage: this.stage ?? null };
  }
}

export class ConfigError extends StationError {
  constructor(code: string, message: string, options?: StationErrorOptions) {
    super('config', code, message, options);
  }
}

export class DeviceError extends StationError {
  constructor(code: string, message: string, options?: StationErrorOptions) {
    super('device', code, message, options);
  }
}

export class HsmError extends StationError {
  constructor(code: string, message: string, options?: StationErrorOptions) {
    super('hsm', code, message, options);
  }
}

export class CaError extends StationError {
  constructor(code: string, message: string, options?: StationErrorOptions) {
    super('ca', code, message, options);
  }
}

export class DatabaseError extends StationError {
  constructor(code: string, message: string, options?: StationErrorOptions) {
    super('database', code, message, options);
  }
}

export class LabelError extends StationError {
  constructor(code: string, message: string, options?: StationErrorOptions) {
    super('label', code, message, options);
  }
}

/** A printer fault. Never fails a device: the device stays passed with its label pending. */
export class PrinterError extends StationError {
  constructor(code: string, message: string, options?: StationErrorOptions) {
    super('printer', code, message, { stage: 'label', ...options });
  }
}

export class InterruptedError extends StationError {
  constructor(message = 'The run was interrupted by the operator.', options?: StationErrorOptions) {
    super('interrupted', 'RUN_INTERRUPTED', message, options);
  }
}

/** Wrap anything thrown by foreign code so that only StationErrors reach the station. */
export function asStationError(err: unknown, fallbackCode = 'INTERNAL_ERROR', stage?: StageName): StationError {
  if (err instanceof StationError) {
    if (stage && !err.stage) err.stage = stage;
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new StationError('device', fallbackCode, `Unexpected error: ${message}`, { stage, cause: err });
}
