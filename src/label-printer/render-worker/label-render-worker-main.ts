/**
 * The label render worker thread: renders label specs with the pure renderers (PNG, ZPL, SVG)
 * so that the station's event loop, which serves every port, never waits on a rasteriser or a
 * deflate. Started by LabelRenderWorker (label-render-worker.ts); requests are answered in
 * arrival order. A renderer's error goes back as its code and message; anything else that goes
 * wrong ends the thread, and the parent renders in-process from then on.
 */
import { isMainThread, parentPort } from 'node:worker_threads';
import { StationError } from '../../core/errors';
import type { LabelRenderer } from '../../core/ports/label-renderer';
import type { PrinterJobFormat } from '../../core/ports/printer';
import { PngLabelRenderer } from '../renderers/png-label-renderer';
import { SvgLabelRenderer } from '../renderers/svg-label-renderer';
import { ZplLabelRenderer } from '../renderers/zpl-label-renderer';
import type { RenderReply, RenderRequest } from './label-render-protocol';

const renderers: ReadonlyMap<PrinterJobFormat, LabelRenderer> = new Map<PrinterJobFormat, LabelRenderer>([
  ['png', new PngLabelRenderer()],
  ['zpl', new ZplLabelRenderer()],
  ['svg', new SvgLabelRenderer()],
]);

async function render(request: RenderRequest): Promise<RenderReply> {
  try {
    const outputs: { format: PrinterJobFormat; bytes: Uint8Array }[] = [];
    for (const format of request.formats) {
      const renderer = renderers.get(format);
      if (!renderer) return { id: request.id, ok: false, error: { code: 'LABEL_FORMAT_UNSUPPORTED', message: `No ${format} label renderer.` } };
      outputs.push({ format, bytes: await renderer.render(request.spec) });
    }
    return { id: request.id, ok: true, outputs };
  } catch (err) {
    const error =
      err instanceof StationError ? { code: err.code, message: err.message } : { code: 'LABEL_RENDER_FAILED', message: `The label could not be rendered: ${(err as Error)?.message ?? String(err)}` };
    return { id: request.id, ok: false, error };
  }
}

if (isMainThread || !parentPort) throw new Error('label-render-worker-main runs only as a worker thread (LabelRenderWorker starts it).');
const port = parentPort;
let chain: Promise<void> = Promise.resolve();
port.on('message', (request: RenderRequest) => {
  chain = chain.then(async () => port.postMessage(await render(request)));
});
