/**
 * A CUPS queue through the `lp` client: `lp -d QUEUE [-o raw] -t SERIAL -` with the job on
 * stdin, spawned with an argument array (never a shell). Success means CUPS accepted the job
 * into the queue, not that it printed: CUPS owns delivery from there. `status()` asks
 * `lpstat -p QUEUE`. Both run in the C locale so their output can be read.
 */
import { spawn } from 'node:child_process';
import { PrinterError } from '../../core/errors';
import type { PrintJob, Printer, PrinterStatus } from '../../core/ports/printer';
import { checkJob } from './check-job';

export interface CupsPrinterOptions {
  queue: string;
  format: 'png' | 'zpl';
  timeoutMs: number;
  /** The `lp` command (default `lp`, found on PATH); tests point it at a scripted stub. */
  lpCommand?: string;
  /** The `lpstat` command (default `lpstat`). */
  lpstatCommand?: string;
}

interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdin could not be written in full (the command exited without reading it). */
  stdinError: Error | undefined;
}

/** Keep what lp/lpstat said short enough for a report line. */
const MAX_OUTPUT_CHARS = 2000;

export class CupsPrinter implements Printer {
  readonly format: 'png' | 'zpl';
  readonly description: string;
  private readonly lp: string;
  private readonly lpstat: string;

  constructor(private readonly options: CupsPrinterOptions) {
    this.format = options.format;
    this.description = `cups ${options.queue}`;
    this.lp = options.lpCommand ?? 'lp';
    this.lpstat = options.lpstatCommand ?? 'lpstat';
  }

  async print(job: PrintJob): Promise<void> {
    checkJob(this, job);
    const { queue } = this.options;
    // ZPL goes to the printer untouched; a PNG needs the queue's driver to turn it into
    // printer language, so it is sent with auto-typing instead of raw.
    const args = ['-d', queue, ...(this.format === 'zpl' ? ['-o', 'raw'] : []), '-t', job.serial, '-'];
    const r = await this.run(this.lp, args, job.bytes, `sending the label for ${job.serial} to`);
    if (r.code !== 0) {
      const said = (r.stderr.trim() || r.stdout.trim() || (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`)).slice(0, MAX_OUTPUT_CHARS);
      throw new PrinterError(
        'PRINTER_QUEUE_FAILED',
        `CUPS did not accept the label for ${job.serial} on queue ${queue}: ${said}. Check the queue with "lpstat -p ${queue}" (enable it with "cupsenable ${queue}"), then print the label again.`,
        { retryable: true, details: { queue, exitCode: r.code, stderr: said } },
      );
    }
    if (r.stdinError) {
      throw new PrinterError('PRINTER_FAILED', `lp exited before reading the whole label for ${job.serial} (${r.stdinError.message}); the job on queue ${queue} may be incomplete: cancel it and print the label again.`, {
        details: { queue },
        cause: r.stdinError,
      });
    }
  }

  async status(): Promise<PrinterStatus> {
    const { queue } = this.options;
    const r = await this.run(this.lpstat, ['-p', queue], undefined, 'asking CUPS about');
    const said = (r.stdout.trim() || r.stderr.trim()).slice(0, MAX_OUTPUT_CHARS);
    if (r.code !== 0) {
      throw new PrinterError('PRINTER_QUEUE_FAILED', `lpstat could not report on queue ${queue}: ${said || `exit code ${r.code}`}. Check the queue name in printer.queue and that cupsd is running.`, {
        retryable: true,
        details: { queue, exitCode: r.code, stderr: r.stderr.trim().slice(0, MAX_OUTPUT_CHARS) },
      });
    }
    // "printer Q is idle.  enabled since ..." / "printer Q disabled since ... -\n\treason"
    if (/\bdisabled\b/.test(r.stdout)) {
      return { ready: false, faults: ['PRINTER_PAUSED'], detail: `queue ${queue} is disabled (enable it with "cupsenable ${queue}"): ${said}` };
    }
    return { ready: true, faults: [], detail: said };
  }

  private run(command: string, args: string[], input: Buffer | undefined, doing: string): Promise<CommandResult> {
    const { queue, timeoutMs } = this.options;
    return new Promise<CommandResult>((resolve, reject) => {
      const child = spawn(command, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
        shell: false,
      });
      let stdout = '';
      let stderr = '';
      let stdinError: Error | undefined;
      let settled = false;
      const settle = (err: PrinterError | undefined, result?: CommandResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          reject(err);
        } else {
          resolve(result!);
        }
      };
      const timer = setTimeout(
        () =>
          settle(
            new PrinterError(
              'PRINTER_TIMEOUT',
              `${command} did not finish ${doing} CUPS queue ${queue} within ${timeoutMs} ms. Check that cupsd is running ("systemctl status cups") and that the queue accepts jobs; then print the label again.`,
              { retryable: true, details: { queue, command, timeoutMs } },
            ),
          ),
        timeoutMs,
      );
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.stdin.on('error', (err) => (stdinError = err));
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') {
          settle(
            new PrinterError(
              'PRINTER_UNREACHABLE',
              `The CUPS command "${command}" is not installed: install the Debian package cups-client (apt-get install cups-client), or print to a tcp9100, serial or file printer.`,
              { details: { queue, command }, cause: err },
            ),
          );
        } else {
          settle(new PrinterError('PRINTER_FAILED', `Cannot run "${command}" (${err.code ?? 'error'}: ${err.message}) for CUPS queue ${queue}.`, { details: { queue, command }, cause: err }));
        }
      });
      child.on('close', (code, signal) => settle(undefined, { code, signal, stdout, stderr, stdinError }));
      if (input) child.stdin.end(input);
      else child.stdin.end();
    });
  }
}
