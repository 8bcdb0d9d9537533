/**
 * The parent side of the label render worker: renders a label spec in the formats asked for, in
 * a worker thread (label-render-worker-main.ts), and returns the bytes.
 *
 * - A renderer's own failure (LABEL_TOO_SMALL...) rejects with a LabelError of that code: the
 *   worker is fine and keeps serving.
 * - A worker that cannot start, throws or exits rejects every request it held, and every later
 *   one, with a LabelError of code LABEL_RENDER_WORKER_FAILED; the caller renders in-process
 *   (station/labels/worker-label-rendering.ts). It is not restarted.
 * - The thread keeps the process alive only while it holds a request.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { LabelError } from '../../core/errors';
import type { LabelSpec } from '../../core/ports/label-renderer';
import type { PrinterJobFormat } from '../../core/ports/printer';
import type { RenderReply, RenderRequest } from './label-render-protocol';

/** The code of every rejection that comes from the worker itself, not from a renderer. */
export const RENDER_WORKER_FAILED = 'LABEL_RENDER_WORKER_FAILED';

export interface LabelRenderWorkerOptions {
  /** The compiled worker script; default label-render-worker-main.js next to this file (or under dist/). */
  workerScript?: string;
}

interface PendingRender {
  resolve: (rendered: Map<PrinterJobFormat, Buffer>) => void;
  reject: (err: LabelError) => void;
}

/**
 * The worker runs compiled JavaScript: from dist/ the sibling file; from the TypeScript sources
 * (vitest) the build's copy, refused when it is older than the worker's or the renderers' sources.
 */
export function defaultRenderWorkerScript(): string {
  const sibling = join(__dirname, 'label-render-worker-main.js');
  if (existsSync(sibling)) return sibling;
  const distModule = resolve(__dirname, '../../../dist/label-printer');
  const built = join(distModule, 'render-worker', 'label-render-worker-main.js');
  if (!existsSync(built)) throw new LabelError(RENDER_WORKER_FAILED, `The label render worker ${built} does not exist; run "npm run build".`, { stage: 'label' });
  for (const dir of ['render-worker', 'renderers']) {
    for (const file of readdirSync(join(__dirname, '..', dir)).filter((f) => f.endsWith('.ts'))) {
      const js = join(distModule, dir, file.replace(/\.ts$/, '.js'));
      if (!existsSync(js) || statSync(join(__dirname, '..', dir, file)).mtimeMs > statSync(js).mtimeMs) {
        throw new LabelError(RENDER_WORKER_FAILED, `The built label render worker is older than its source (${js}); run "npm run build".`, { stage: 'label' });
      }
    }
  }
  return built;
}

export class LabelRenderWorker {
  private readonly worker: Worker | undefined;
  private readonly pending = new Map<number, PendingRender>();
  private nextId = 1;
  private failure: LabelError | undefined;
  private closed = false;

  constructor(options: LabelRenderWorkerOptions = {}) {
    let worker: Worker | undefined;
    try {
      worker = new Worker(options.workerScript ?? defaultRenderWorkerScript(), { stdout: false, stderr: false });
    } catch (err) {
      this.failure = workerFailure('could not start', err);
    }
    this.worker = worker;
    if (!worker) return;
    worker.on('message', (reply: RenderReply) => this.onReply(reply));
    worker.on('error', (err) => this.fail(workerFailure('failed', err)));
    worker.on('exit', (code) => this.fail(workerFailure(this.closed ? 'was closed' : `exited (code ${code})`)));
    worker.unref();
  }

  /** Why the worker no longer renders, once it does not. */
  get failed(): LabelError | undefined {
    return this.failure;
  }

  render(spec: LabelSpec, formats: readonly PrinterJobFormat[]): Promise<Map<PrinterJobFormat, Buffer>> {
    if (this.failure || !this.worker) return Promise.reject(this.failure ?? workerFailure('is not running'));
    const id = this.nextId++;
    const request: RenderRequest = { id, spec, formats: [...formats] };
    return new Promise((resolvePromise, rejectPromise) => {
      this.pending.set(id, { resolve: resolvePromise, reject: rejectPromise });
      if (this.pending.size === 1) this.worker!.ref();
      try {
        this.worker!.postMessage(request);
      } catch (err) {
        this.settle(id);
        rejectPromise(new LabelError('LABEL_RENDER_FAILED', `The label spec of ${spec.serial} could not be sent to the render worker: ${(err as Error).message}`, { stage: 'label' }));
      }
    });
  }

  /** Stops the thread; requests it held reject with LABEL_RENDER_WORKER_FAILED. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.worker && !this.failure) await this.worker.terminate();
  }

  private onReply(reply: RenderReply): void {
    const p = this.settle(reply.id);
    if (!p) return;
    if (reply.ok) p.resolve(new Map(reply.outputs.map((o) => [o.format, Buffer.from(o.bytes.buffer, o.bytes.byteOffset, o.bytes.byteLength)])));
    else p.reject(new LabelError(reply.error.code, reply.error.message, { stage: 'label' }));
  }

  private settle(id: number): PendingRender | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (p && this.pending.size === 0) this.worker?.unref();
    return p;
  }

  private fail(err: LabelError): void {
    this.failure ??= err;
    const held = [...this.pending.values()];
    this.pending.clear();
    for (const p of held) p.reject(this.failure);
  }
}

function workerFailure(what: string, cause?: unknown): LabelError {
  if (cause instanceof LabelError && cause.code === RENDER_WORKER_FAILED) return cause;
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new LabelError(RENDER_WORKER_FAILED, `The label render worker ${what}${detail}.`, { stage: 'label', ...(cause !== undefined ? { cause } : {}) });
}
