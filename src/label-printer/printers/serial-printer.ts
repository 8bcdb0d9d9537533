/**
 * A ZPL printer on a serial port (serialport): open, write the job, drain (tcdrain: the bytes
 * left the UART), close. One timeout covers the whole job. Serial printers give no status here,
 * so `status()` reports ready.
 */
import { SerialPort } from 'serialport';
import { PrinterError } from '../../core/errors';
import type { PrintJob, Printer, PrinterStatus } from '../../core/ports/printer';
import { checkJob } from './check-job';

export interface SerialPrinterOptions {
  path: string;
  baudRate: number;
  timeoutMs: number;
}

type Phase = 'open' | 'write' | 'drain';

export class SerialPrinter implements Printer {
  readonly format = 'zpl' as const;
  readonly description: string;

  constructor(private readonly options: SerialPrinterOptions) {
    this.description = `serial ${options.path}`;
  }

  async print(job: PrintJob): Promise<void> {
    checkJob(this, job);
    const { path, baudRate, timeoutMs } = this.options;
    const port = new SerialPort({ path, baudRate, autoOpen: false, lock: true });
    // Errors also arrive through the callbacks below; this keeps a late one from being unhandled.
    port.on('error', () => undefined);
    return new Promise<void>((resolve, reject) => {
      let phase: Phase = 'open';
      let settled = false;
      const settle = (err?: PrinterError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          // Closing cancels a pending write; do not wait for it on a failure path.
          if (port.isOpen) port.close(() => undefined);
          reject(err);
          return;
        }
        port.close((closeErr) => {
          if (closeErr) reject(this.lost(closeErr, 'drain', job));
          else resolve();
        });
      };
      const timer = setTimeout(() => {
        const what: Record<Phase, string> = {
          open: 'open',
          write: `take the whole label job (${job.bytes.length} bytes)`,
          drain: 'finish sending the label job',
        };
        settle(
          new PrinterError(
            'PRINTER_TIMEOUT',
            `Serial printer ${path} did not ${what[phase]} within ${timeoutMs} ms. Check that it is on and not paused, the cable, and the baud rate (${baudRate}) and flow control; then print the label again.`,
            { retryable: true, details: { path, baudRate, timeoutMs, phase } },
          ),
        );
      }, timeoutMs);
      port.open((openErr) => {
        if (openErr) {
          settle(
            new PrinterError(
              'PRINTER_UNREACHABLE',
              `Cannot open serial printer ${path}: ${openErr.message}. Check that it is plugged in, that printer.path is right (prefer /dev/serial/by-id/...), that the station user may use it (group dialout), and that no other program holds it.`,
              { retryable: true, details: { path, baudRate }, cause: openErr },
            ),
          );
          return;
        }
        if (settled) {
          port.close(() => undefined);
          return;
        }
        phase = 'write';
        port.write(job.bytes, (writeErr) => {
          if (writeErr) return settle(this.lost(writeErr, 'write', job));
          phase = 'drain';
          port.drain((drainErr) => (drainErr ? settle(this.lost(drainErr, 'drain', job)) : settle()));
        });
      });
    });
  }

  status(): Promise<PrinterStatus> {
    return Promise.resolve({ ready: true, faults: [], detail: `${this.options.path}: serial printers report no status` });
  }

  private lost(err: Error, phase: Phase, job: PrintJob): PrinterError {
    return new PrinterError(
      'PRINTER_CONNECTION_LOST',
      `Serial printer ${this.options.path} failed while sending the label for ${job.serial} (${err.message}). It may have been unplugged: check the cable, then print the label again.`,
      { retryable: true, details: { path: this.options.path, phase }, cause: err },
    );
  }
}
