/**
 * The run's label queue: a device run hands its label over once the device is locked and goes
 * on; the queue renders and prints the labels one at a time, in the order they came (print
 * order = pass order on the line), while the ports take their next devices.
 *
 * Each job: the spec from the committed record (LabelService.specFor), one rendering of every
 * format needed (the files the report names, `labels/<serial>.<format>`, and the printer's
 * format) through a LabelRendering (the render worker, or in-process), the files written, one
 * job to the printer, the attempt recorded (LabelService.print). It never throws: a failure
 * leaves the label pending with "CODE: message", as the device run did.
 *
 * drain() ends a run's labels in bounded time. The printers have their own timeouts, so each
 * job ends; but a dead printer that times out on every label would hold the run for one timeout
 * per label. While draining, once the printer has failed on every label for `printerDownMs`
 * (from the start of the first label of that streak), the labels still queued are not sent (they
 * stay pending, LABEL_NOT_SENT: `station label print` prints them). A printer that fails fast
 * (refused, paper out) is still tried for each label, so each keeps its own reason. A queue where
 * no job ends for `stallMs` gives up on what is left (LABEL_QUEUE_STALLED).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { asStationError, type StationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { PrinterJobFormat } from '../../core/ports/printer';
import type { LabelRendering } from './label-rendering';
import type { LabelOutcome, LabelService } from './label-service';

export const DEFAULT_DRAIN_STALL_MS = 30_000;
export const DEFAULT_PRINTER_DOWN_MS = 5_000;

export interface LabelDrainOptions {
  /** Give up on what is left when no label ended for this long. Default 30 s. */
  stallMs?: number;
  /** Send no further label once the printer failed on every label for this long. Default 5 s. */
  printerDownMs?: number;
  /**
   * The run was stopped (Ctrl-C, the GUI's stop): the labels not started yet are left pending
   * (LABEL_NOT_SENT) instead of printed; the one printing is waited for (its printer has its
   * own timeout), so its outcome is recorded.
   */
  signal?: AbortSignal;
}

export interface LabelJob {
  serial: string;
  /** The job starts (not called for a job the queue gives up on before it started). */
  onStart?: () => void;
  /** The job ended, once, with its outcome (before enqueue's promise resolves). */
  onEnd?: (result: LabelJobResult) => void;
}

export interface LabelJobResult {
  serial: string;
  outcome: LabelOutcome;
  /** The files written, by format, relative to the queue's outDir. */
  files: Partial<Record<PrinterJobFormat, string>>;
  /** False for a job the queue gave up on before it started. */
  started: boolean;
  durationMs: number;
}

export interface LabelDrainResult {
  /** Every label was tried. */
  drained: boolean;
  /** Labels the queue gave up on (left pending without being sent). */
  notSent: number;
}

export interface LabelQueueOptions {
  labels: Pick<LabelService, 'specFor' | 'print' | 'recordFailure' | 'printerFormat'>;
  rendering: LabelRendering;
  /** The run's folder; files go to `labels/` under it. */
  outDir: string;
  log: Logger;
  /** Formats written as `labels/<serial>.<format>` (the report's labelPngPath, labelZplPath). Default png and zpl. */
  fileFormats?: readonly PrinterJobFormat[];
}

interface Entry {
  job: LabelJob;
  settled: boolean;
  resolve: (result: LabelJobResult) => void;
}

export class LabelQueue {
  private readonly waiting: Entry[] = [];
  private current: Entry | undefined;
  private pumping = false;
  private draining = false;
  private closed = false;
  private notSent = 0;
  private printerDownMs = DEFAULT_PRINTER_DOWN_MS;
  /** When the first label of the current run of printer failures started (undefined: the last label printed). */
  private failingSince: number | undefined;
  private progressWaiters: (() => void)[] = [];
  private readonly fileFormats: readonly PrinterJobFormat[];
  private readonly labelsDir: string;

  constructor(private readonly options: LabelQueueOptions) {
    this.fileFormats = options.fileFormats ?? ['png', 'zpl'];
    this.labelsDir = join(options.outDir, 'labels');
  }

  /** Jobs waiting or printing. */
  get size(): number {
    return this.waiting.length + (this.current ? 1 : 0);
  }

  /** Queues a label; the promise resolves when it ended (printed or pending), never rejects. */
  enqueue(job: LabelJob): Promise<LabelJobResult> {
    return new Promise<LabelJobResult>((resolve) => {
      const entry: Entry = { job, settled: false, resolve };
      if (this.closed) {
        this.giveUp(entry, 'LABEL_QUEUE_CLOSED', `The label of ${job.serial} came after the run's label queue closed. Print it with "station label print".`);
        return;
      }
      this.waiting.push(entry);
      // on a later turn: the device run that queued the label goes on (to its next device) at
      // once, instead of after the job's synchronous start (its spec read from the database)
      if (!this.pumping) setImmediate(() => void this.pump());
    });
  }

  /**
   * Waits until every queued label ended. While draining, a printer failure leaves the labels
   * behind it unsent (pending), and no label ending for `stallMs` gives up on the rest.
   */
  async drain(options: LabelDrainOptions = {}): Promise<LabelDrainResult> {
    const stallMs = options.stallMs ?? DEFAULT_DRAIN_STALL_MS;
    this.printerDownMs = options.printerDownMs ?? DEFAULT_PRINTER_DOWN_MS;
    this.draining = true;
    const before = this.notSent;
    const onStop = () => {
      const left = this.waiting.length;
      if (left === 0) return;
      const message = 'Not sent: the run was stopped before this label was printed. Print it with "station label print".';
      this.options.log.warn({ code: 'LABEL_NOT_SENT', left }, 'the run was stopped: the labels still queued are left pending');
      for (const entry of this.waiting.splice(0)) this.giveUp(entry, 'LABEL_NOT_SENT', message);
      this.progressed();
    };
    if (options.signal?.aborted) onStop();
    else options.signal?.addEventListener('abort', onStop, { once: true });
    try {
      return await this.drainLoop(stallMs, before);
    } finally {
      options.signal?.removeEventListener('abort', onStop);
    }
  }

  private async drainLoop(stallMs: number, before: number): Promise<LabelDrainResult> {
    while (this.size > 0) {
      if (await this.progressWithin(stallMs)) continue;
      const left = this.size;
      const message = `No label ended within ${stallMs} ms at the end of the run (the printer or the label folder hangs); ${left} label(s) were left pending. Check the printer, then "station label print".`;
      this.options.log.error({ code: 'LABEL_QUEUE_STALLED', left }, 'label queue stalled at the end of the run');
      if (this.current) this.giveUp(this.current, 'LABEL_QUEUE_STALLED', message);
      this.current = undefined;
      for (const entry of this.waiting.splice(0)) this.giveUp(entry, 'LABEL_QUEUE_STALLED', message);
    }
    return { drained: this.notSent === before, notSent: this.notSent - before };
  }

  /** Stops the rendering (the worker). Labels queued later are left pending. */
  async close(): Promise<void> {
    this.closed = true;
    await this.options.rendering.close();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let entry = this.waiting.shift(); entry; entry = this.waiting.shift()) {
        this.current = entry;
        const startedAt = performance.now();
        const { result, printerFailed } = await this.run(entry.job);
        if (this.current === entry) this.current = undefined;
        this.settle(entry, result);
        if (!printerFailed) this.failingSince = undefined;
        else this.failingSince ??= startedAt;
        const downMs = this.failingSince === undefined ? 0 : performance.now() - this.failingSince;
        if (printerFailed && this.draining && this.waiting.length > 0 && downMs >= this.printerDownMs) {
          const message = `Not sent: the printer had failed on every label for ${Math.round(downMs)} ms as the run ended (last: ${result.outcome.reason ?? 'not printed'}). Fix the printer, then "station label print".`;
          this.options.log.warn({ code: 'LABEL_NOT_SENT', left: this.waiting.length, downMs: Math.round(downMs) }, 'the printer is down at the end of the run: the labels still queued are left pending');
          for (const left of this.waiting.splice(0)) this.giveUp(left, 'LABEL_NOT_SENT', message);
        }
        this.progressed();
      }
    } finally {
      this.pumping = false;
      this.progressed();
    }
  }

  private async run(job: LabelJob): Promise<{ result: LabelJobResult; printerFailed: boolean }> {
    const { labels } = this.options;
    const files: LabelJobResult['files'] = {};
    let printerFailed = false;
    let outcome: LabelOutcome;
    let start = performance.now();
    try {
      job.onStart?.();
      start = performance.now();
      const spec = labels.specFor(job.serial);
      const formats = [...new Set<PrinterJobFormat>([...this.fileFormats, labels.printerFormat])];
      let rendered: Map<PrinterJobFormat, Buffer> | undefined;
      try {
        rendered = await this.options.rendering.render(spec, formats);
      } catch (err) {
        outcome = labels.recordFailure(job.serial, 'first', asStationError(err, 'LABEL_RENDER_FAILED', 'label'));
      }
      if (rendered) {
        mkdirSync(this.labelsDir, { recursive: true });
        for (const format of this.fileFormats) {
          const path = join(this.labelsDir, `${job.serial}.${format}`);
          writeFileSync(path, rendered.get(format)!);
          files[format] = relative(this.options.outDir, path);
        }
        // the printer gets the same rendering (no second render, no second read of the record)
        outcome = await labels.print(job.serial, 'first', {}, { spec, rendered });
        printerFailed = outcome.state !== 'printed';
      }
    } catch (err) {
      outcome = pending(job.serial, asStationError(err, 'LABEL_FAILED', 'label'));
    }
    return { result: { serial: job.serial, outcome: outcome!, files, started: true, durationMs: performance.now() - start }, printerFailed };
  }

  private giveUp(entry: Entry, code: string, message: string): void {
    if (entry.settled) return;
    this.notSent++;
    this.settle(entry, { serial: entry.job.serial, outcome: { serial: entry.job.serial, state: 'pending', reason: `${code}: ${message}`, errorCode: code, errorMessage: message }, files: {}, started: false, durationMs: 0 });
  }

  private settle(entry: Entry, result: LabelJobResult): void {
    if (entry.settled) {
      // a job given up on that ended after all: the run's report already says pending
      this.options.log.info({ serial: result.serial, state: result.outcome.state }, 'a label given up on at the end of the run ended late');
      return;
    }
    entry.settled = true;
    try {
      entry.job.onEnd?.(result);
    } catch (err) {
      this.options.log.error({ serial: result.serial, code: asStationError(err).code }, 'the label job\'s end handler failed');
    }
    entry.resolve(result);
  }

  private progressWithin(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.progressWaiters = this.progressWaiters.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.progressWaiters.push(wake);
    });
  }

  private progressed(): void {
    const waiters = this.progressWaiters;
    this.progressWaiters = [];
    for (const w of waiters) w();
  }
}

function pending(serial: string, e: StationError): LabelOutcome {
  return { serial, state: 'pending', reason: `${e.code}: ${e.message}`, errorCode: e.code, errorMessage: e.message };
}
