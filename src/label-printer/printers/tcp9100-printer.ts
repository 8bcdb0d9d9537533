/**
 * A ZPL printer on raw TCP ("port 9100", JetDirect-style). Raw 9100 has no acknowledgement: a job
 * counts as taken only when the connection was opened, every byte was handed to the OS, our side
 * was ended (FIN) and the printer then closed its side, with no error, inside `timeoutMs`. The
 * one timeout covers everything `print` does, including the optional `~HS` status query first.
 */
import { connect, type Socket } from 'node:net';
import { PrinterError } from '../../core/errors';
import type { PrintJob, Printer, PrinterStatus } from '../../core/ports/printer';
import { checkJob } from './check-job';
import { ZebraHostStatusFormatError, describeHostStatus, hostStatusFaults, hostStatusFrames, parseZebraHostStatus, type ZebraHostStatus } from './zebra-host-status';

export interface Tcp9100PrinterOptions {
  host: string;
  port: number;
  /** The whole of one `print` (status query, connect, send, close) or one `status`. */
  timeoutMs: number;
  /** Ask `~HS` before each job and refuse to send to a printer that reports a fault. */
  statusQuery: boolean;
}

/** What the printer was doing when it stopped answering; used in timeout and fault messages. */
type Phase = 'connect' | 'write' | 'close' | 'status';

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
/** A host status is three short strings; anything longer is not one. */
const MAX_STATUS_BYTES = 4096;

interface Attempt<T> {
  socket: Socket;
  phase: Phase;
  done(value: T): void;
  fail(err: PrinterError): void;
}

export class Tcp9100Printer implements Printer {
  readonly format = 'zpl' as const;
  readonly description: string;
  private readonly address: string;

  constructor(private readonly options: Tcp9100PrinterOptions) {
    this.address = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    this.description = `tcp9100 ${this.address}`;
  }

  async print(job: PrintJob): Promise<void> {
    checkJob(this, job);
    const deadline = performance.now() + this.options.timeoutMs;
    if (this.options.statusQuery) {
      const status = await this.queryHostStatus(deadline);
      const faults = hostStatusFaults(status);
      if (faults.length > 0) {
        throw new PrinterError(
          faults[0]!.code,
          `Printer ${this.address} is not ready: ${faults.map((f) => f.text).join('; ')}. The label for ${job.serial} was not sent; print it again once the printer is ready.`,
          { retryable: true, details: this.details({ faults: faults.map((f) => f.code).join(',') }) },
        );
      }
    }
    await this.send(job, deadline);
  }

  async status(): Promise<PrinterStatus> {
    const status = await this.queryHostStatus(performance.now() + this.options.timeoutMs);
    const faults = hostStatusFaults(status);
    return { ready: faults.length === 0, faults: faults.map((f) => f.code), detail: `${this.address}: ${describeHostStatus(status)}` };
  }

  private send(job: PrintJob, deadline: number): Promise<void> {
    return this.attempt<void>(deadline, job.bytes.length, (a) => {
      let written = false;
      let finished = false;
      let printerEnded = false;
      a.socket.once('connect', () => {
        a.phase = 'write';
        a.socket.write(job.bytes, (err) => {
          if (err) return; // reported by the 'error' event
          written = true;
          a.phase = 'close';
        });
        a.socket.end();
      });
      a.socket.on('finish', () => (finished = true));
      // Whatever a printer says on 9100 is not an answer to a job; reading keeps 'end' flowing.
      a.socket.on('data', () => undefined);
      a.socket.on('end', () => {
        if (!written) {
          a.fail(
            new PrinterError(
              'PRINTER_CONNECTION_LOST',
              `Printer ${this.address} closed the connection before the whole label job (${job.bytes.length} bytes) for ${job.serial} was sent. The label may be partly printed: check the printer, remove any partial label, and print it again.`,
              { retryable: true, details: this.details({ phase: 'write', bytes: job.bytes.length }) },
            ),
          );
          return;
        }
        printerEnded = true;
      });
      a.socket.on('close', (hadError) => {
        if (hadError) return; // the 'error' event settled it
        if (written && finished && printerEnded) {
          a.done();
          return;
        }
        a.fail(
          new PrinterError('PRINTER_CONNECTION_LOST', `The connection to printer ${this.address} closed before the label job for ${job.serial} completed; print it again.`, {
            retryable: true,
            details: this.details({ phase: a.phase, bytes: job.bytes.length }),
          }),
        );
      });
    });
  }

  private queryHostStatus(deadline: number): Promise<ZebraHostStatus> {
    return this.attempt<ZebraHostStatus>(deadline, 0, (a) => {
      let answer = Buffer.alloc(0);
      a.socket.once('connect', () => {
        a.phase = 'status';
        a.socket.write('~HS');
      });
      a.socket.on('data', (chunk: Buffer) => {
        answer = Buffer.concat([answer, chunk]);
        if (!hostStatusFrames(answer).complete) {
          if (answer.length > MAX_STATUS_BYTES) a.fail(this.notHostStatus(`more than ${MAX_STATUS_BYTES} bytes without three <STX>...<ETX> strings`));
          return;
        }
        try {
          const status = parseZebraHostStatus(answer);
          a.socket.end();
          a.done(status);
        } catch (err) {
          a.fail(this.notHostStatus(err instanceof ZebraHostStatusFormatError ? err.message : String(err)));
        }
      });
      a.socket.on('end', () =>
        a.fail(
          new PrinterError(
            'PRINTER_CONNECTION_LOST',
            `Printer ${this.address} closed the connection without answering the ~HS host status query. Check the printer; if it does not speak ZPL host status, set printer.statusQuery to false.`,
            { retryable: true, details: this.details({ phase: 'status' }) },
          ),
        ),
      );
    });
  }

  /**
   * One connection with one deadline. Every way out goes through settle(), which clears the
   * timer and destroys the socket.
   */
  private attempt<T>(deadline: number, jobBytes: number, drive: (a: Attempt<T>) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const socket = connect({ host: this.options.host, port: this.options.port, allowHalfOpen: true });
      let settled = false;
      const settle = (err: PrinterError | undefined, value?: T): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(value as T);
      };
      const a: Attempt<T> = {
        socket,
        phase: 'connect',
        done: (value) => settle(undefined, value),
        fail: (err) => settle(err),
      };
      const timer = setTimeout(() => settle(this.timeoutError(a.phase, jobBytes)), Math.max(0, deadline - performance.now()));
      socket.on('error', (err: NodeJS.ErrnoException) => settle(this.socketError(err, a.phase)));
      drive(a);
    });
  }

  private timeoutError(phase: Phase, jobBytes: number): PrinterError {
    const ms = this.options.timeoutMs;
    const scope = this.options.statusQuery && phase !== 'status' ? ' (the time allowed for the status query and the job together)' : '';
    const what: Record<Phase, string> = {
      connect: `did not accept the connection within ${ms} ms${scope}. Check that it is switched on and reachable, and that ${this.address} is its raw print port.`,
      write: `did not take the whole label job (${jobBytes} bytes) within ${ms} ms${scope}. It may be paused or out of media: check its display, remove any partial label, and print the label again.`,
      close: `took the label job but did not close the connection within ${ms} ms${scope}. The label may or may not have printed: check the printer before printing it again.`,
      status: `did not answer the ~HS host status query within ${ms} ms. Some printers stay silent while the media or ribbon is out or the head is open: check its display. If it does not speak ZPL host status, set printer.statusQuery to false.`,
    };
    return new PrinterError('PRINTER_TIMEOUT', `Printer ${this.address} ${what[phase]}`, {
      retryable: true,
      details: this.details({ phase, timeoutMs: ms }),
    });
  }

  private socketError(err: NodeJS.ErrnoException, phase: Phase): PrinterError {
    const code = err.code ?? 'UNKNOWN';
    const details = this.details({ phase, errno: code });
    if (UNREACHABLE.has(code)) {
      const why =
        code === 'ECONNREFUSED'
          ? `refused the connection: check that it is switched on and that ${this.options.port} is its raw print port`
          : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
            ? `has a host name that does not resolve (${code}): check printer.host in the configuration and the DNS`
            : `cannot be reached on the network (${code}): check its cable or Wi-Fi, and printer.host in the configuration`;
      return new PrinterError('PRINTER_UNREACHABLE', `Printer ${this.address} ${why}. Then print the pending label again.`, { retryable: true, details, cause: err });
    }
    if (LOST.has(code)) {
      const during = phase === 'status' ? 'during the ~HS host status query' : phase === 'close' ? 'after the label job was sent' : 'while the label job was being sent';
      return new PrinterError(
        'PRINTER_CONNECTION_LOST',
        `Printer ${this.address} dropped the connection ${during} (${code}). The label may be missing or partly printed: check the printer and print it again.`,
        { retryable: true, details, cause: err },
      );
    }
    return new PrinterError('PRINTER_FAILED', `Printing to ${this.address} failed (${code}: ${err.message}). Check the printer and the network, then print the label again.`, {
      details,
      cause: err,
    });
  }

  private notHostStatus(why: string): PrinterError {
    return new PrinterError(
      'PRINTER_FAILED',
      `Printer ${this.address} answered ~HS with something that is not a Zebra host status (${why}). If it does not speak ZPL host status, set printer.statusQuery to false.`,
      { details: this.details({ phase: 'status' }) },
    );
  }

  private details(extra: Record<string, string | number>): Record<string, string | number> {
    return { host: this.options.host, port: this.options.port, ...extra };
  }
}
