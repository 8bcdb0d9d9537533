/**
 * "Prints" each label into a folder as `<serial>-<timestamp>.<format>`, atomically: the bytes go
 * to a hidden temporary file in the same folder, are flushed, and the file is renamed into place,
 * so a watcher (or a person) never sees half a label. An existing name is never overwritten.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../../core/clock';
import { PrinterError } from '../../core/errors';
import type { PrintJob, Printer, PrinterJobFormat, PrinterStatus } from '../../core/ports/printer';
import { checkJob } from './check-job';

export interface FilePrinterOptions {
  dir: string;
  format: PrinterJobFormat;
  clock?: Clock;
}

export class FilePrinter implements Printer {
  readonly format: PrinterJobFormat;
  readonly description: string;
  readonly dir: string;
  private readonly clock: Clock;

  constructor(options: FilePrinterOptions) {
    this.dir = options.dir;
    this.format = options.format;
    this.clock = options.clock ?? systemClock;
    this.description = `file ${options.dir}`;
  }

  async print(job: PrintJob): Promise<void> {
    await this.write(job);
  }

  /** As `print`, returning the path written (for hosts that want to show it). */
  async write(job: PrintJob): Promise<string> {
    checkJob(this, job);
    const stem = `${safeName(job.serial)}-${timestamp(this.clock.now())}`;
    const tmp = join(this.dir, `.${stem}.${randomBytes(6).toString('hex')}.tmp`);
    let step = 'create the folder';
    try {
      await mkdir(this.dir, { recursive: true });
      step = 'write';
      const handle = await open(tmp, 'wx', 0o644);
      try {
        await handle.writeFile(job.bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      step = 'rename';
      const target = await this.freeName(stem);
      await rename(tmp, target);
      return target;
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      const e = err as NodeJS.ErrnoException;
      throw new PrinterError(
        'PRINTER_FAILED',
        `Cannot ${step} the label for ${job.serial} in ${this.dir} (${e.code ?? 'error'}: ${e.message}). Check that the folder is writable and the disk is not full, then print the label again.`,
        { details: { dir: this.dir, errno: e.code ?? null }, cause: err },
      );
    }
  }

  status(): Promise<PrinterStatus> {
    return Promise.resolve({ ready: true, faults: [], detail: `writes ${this.format} files to ${this.dir}` });
  }

  /** `<stem>.<format>`, or `<stem>-2.<format>`... when a label of the same serial landed in the same millisecond. */
  private async freeName(stem: string): Promise<string> {
    for (let n = 1; ; n++) {
      const candidate = join(this.dir, `${stem}${n === 1 ? '' : `-${n}`}.${this.format}`);
      try {
        await access(candidate, constants.F_OK);
      } catch {
        return candidate;
      }
    }
  }
}

/** Serials are PrintableString-safe already; this keeps any other value from leaving the folder. */
function safeName(serial: string): string {
  const s = serial.replace(/[^A-Za-z0-9._:-]/g, '_');
  return s.startsWith('.') ? `_${s.slice(1)}` : s || '_';
}

/** 2025-01-31T12:05:01.123Z -> 20250131T120501123Z (sorts by time, no ':' in file names). */
function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}
