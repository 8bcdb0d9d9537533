/**
 * Label rendering off the station's event loop: the label render worker
 * (label-printer/render-worker) renders; when it cannot start or dies, this renders in-process
 * for the rest of its life and says so once in the log, so that no label is ever lost to the
 * worker. A request the dying worker held is rendered again in-process.
 */
import type { Logger } from '../../core/logger';
import type { LabelSpec } from '../../core/ports/label-renderer';
import type { PrinterJobFormat } from '../../core/ports/printer';
import { LabelRenderWorker, RENDER_WORKER_FAILED } from '../../label-printer/render-worker/label-render-worker';
import { StationError } from '../../core/errors';
import type { LabelRendering } from './label-rendering';

export interface WorkerLabelRenderingOptions {
  /** Where a failed worker's requests go (InProcessLabelRendering over the station's renderers). */
  inProcess: LabelRendering;
  log: Logger;
  /** Starts the worker; default a LabelRenderWorker on the built script. */
  startWorker?: () => LabelRenderWorker;
}

export class WorkerLabelRendering implements LabelRendering {
  private readonly worker: LabelRenderWorker;
  private fellBack = false;

  constructor(private readonly options: WorkerLabelRenderingOptions) {
    this.worker = (options.startWorker ?? (() => new LabelRenderWorker()))();
  }

  /** True once labels render in-process (the worker could not start or died). */
  get inProcess(): boolean {
    return this.fellBack;
  }

  async render(spec: LabelSpec, formats: readonly PrinterJobFormat[]): Promise<Map<PrinterJobFormat, Buffer>> {
    if (!this.fellBack) {
      try {
        return await this.worker.render(spec, formats);
      } catch (err) {
        if (!(err instanceof StationError) || err.code !== RENDER_WORKER_FAILED) throw err;
        this.fallBack(err, spec.serial);
      }
    }
    return this.options.inProcess.render(spec, formats);
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.options.inProcess.close();
  }

  private fallBack(err: StationError, serial: string): void {
    if (this.fellBack) return;
    this.fellBack = true;
    this.options.log.warn({ code: err.code, reason: err.message, serial }, 'labels render in-process from now on: the label render worker is not available');
  }
}
