import { PrinterError } from '../../core/errors';
import type { PrintJob, Printer } from '../../core/ports/printer';

/**
 * Refuse a job the printer cannot take before any I/O: a format other than the printer's, or
 * no bytes. Both are station bugs, not printer faults, so they are not retryable.
 */
export function checkJob(printer: Printer, job: PrintJob): void {
  if (job.format !== printer.format) {
    throw new PrinterError(
      'PRINTER_FAILED',
      `The label for ${job.serial} is ${job.format}, but the printer ${printer.description} takes ${printer.format}: the station rendered the wrong format (report it).`,
      { details: { printer: printer.description, jobFormat: job.format, printerFormat: printer.format } },
    );
  }
  if (job.bytes.length === 0) {
    throw new PrinterError('PRINTER_FAILED', `The label for ${job.serial} is empty; nothing was sent to ${printer.description} (report it).`, {
      details: { printer: printer.description },
    });
  }
}
