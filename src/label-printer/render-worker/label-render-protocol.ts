/**
 * Messages between LabelRenderWorker (the parent side) and its worker thread
 * (label-render-worker-main.ts). Plain structured-clone data: a label spec in, bytes out.
 */
import type { LabelSpec } from '../../core/ports/label-renderer';
import type { PrinterJobFormat } from '../../core/ports/printer';

/** Render `spec` in each of `formats`. */
export interface RenderRequest {
  id: number;
  spec: LabelSpec;
  formats: PrinterJobFormat[];
}

/** A renderer's own failure (LABEL_TOO_SMALL...): the same spec would fail in-process too. */
export interface RenderFailure {
  code: string;
  message: string;
}

export type RenderReply =
  | { id: number; ok: true; outputs: { format: PrinterJobFormat; bytes: Uint8Array }[] }
  | { id: number; ok: false; error: RenderFailure };
