/**
 * How the label queue turns a spec into bytes: one spec, several formats at once (the files the
 * report names and the printer's job). InProcessLabelRendering renders on the calling thread
 * with the station's renderers (LabelService.render); WorkerLabelRendering renders in the label
 * render worker and falls back to this one.
 */
import type { LabelSpec } from '../../core/ports/label-renderer';
import type { PrinterJobFormat } from '../../core/ports/printer';
import type { LabelService } from './label-service';

export interface LabelRendering {
  /** Rejects with the renderer's LabelError (LABEL_TOO_SMALL...) when a format cannot be drawn. */
  render(spec: LabelSpec, formats: readonly PrinterJobFormat[]): Promise<Map<PrinterJobFormat, Buffer>>;
  close(): Promise<void>;
}

export class InProcessLabelRendering implements LabelRendering {
  constructor(private readonly labels: Pick<LabelService, 'render'>) {}

  async render(spec: LabelSpec, formats: readonly PrinterJobFormat[]): Promise<Map<PrinterJobFormat, Buffer>> {
    const rendered = new Map<PrinterJobFormat, Buffer>();
    for (const format of formats) rendered.set(format, await this.labels.render(spec, format));
    return rendered;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
