/**
 * The run's label queue (src/station/labels/label-queue.ts) over real parts: passed devices in a
 * SQLite file, the station's LabelService and renderers, the label render worker (built script:
 * `npm run build` first), file and TCP 9100 printers.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultStationConfig, type StationConfig, type WorkOrder } from '../../../src/core/config';
import type { Logger } from '../../../src/core/logger';
import type { LabelRenderer } from '../../../src/core/ports/label-renderer';
import type { PrintJob, Printer, PrinterJobFormat, PrinterStatus } from '../../../src/core/ports/printer';
import { FilePrinter } from '../../../src/label-printer/printers/file-printer';
import { Tcp9100Printer } from '../../../src/label-printer/printers/tcp9100-printer';
import { LabelRenderWorker } from '../../../src/label-printer/render-worker/label-render-worker';
import { PngLabelRenderer } from '../../../src/label-printer/renderers/png-label-renderer';
import { SvgLabelRenderer } from '../../../src/label-printer/renderers/svg-label-renderer';
import { ZplLabelRenderer } from '../../../src/label-printer/renderers/zpl-label-renderer';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../../src/manufacturer-db/sqlite-record-store';
import { deviceLabelJob } from '../../../src/station/labels/device-label-job';
import { LabelQueue, type LabelJobResult } from '../../../src/station/labels/label-queue';
import { InProcessLabelRendering, type LabelRendering } from '../../../src/station/labels/label-rendering';
import { LabelService } from '../../../src/station/labels/label-service';
import { WorkerLabelRendering } from '../../../src/station/labels/worker-label-rendering';
import { blankDeviceReport } from '../../../src/station/run/report';
import { testDir } from '../../helpers/station-cli';

const DPP_URI = 'DPP:C:81/1,81/6,81/11;M:0211223344aa;V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACmyGPGZqaIiGAXfNTDFpgIL/yIRutxpIQWDqyFF0OUv0=;;';
const RUN_ID = 'label-queue-run';

/** Captures what was logged, by level. */
class RecordingLogger implements Logger {
  readonly lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  trace(): void {}
  debug(): void {}
  info(obj: Record<string, unknown>, msg = ''): void {
    this.lines.push({ level: 'info', msg, obj });
  }
  warn(obj: Record<string, unknown>, msg = ''): void {
    this.lines.push({ level: 'warn', msg, obj });
  }
  error(obj: Record<string, unknown>, msg = ''): void {
    this.lines.push({ level: 'error', msg, obj });
  }
  child(): Logger {
    return this;
  }
}

/** Records each job (and how many were in flight at once) and hands it to the printer it wraps. */
class RecordingPrinter implements Printer {
  readonly serials: string[] = [];
  maxInFlight = 0;
  private inFlight = 0;
  constructor(private readonly inner: Printer) {}
  get description(): string {
    return this.inner.description;
  }
  get format(): PrinterJobFormat {
    return this.inner.format;
  }
  async print(job: PrintJob): Promise<void> {
    this.serials.push(job.serial);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      await this.inner.print(job);
    } finally {
      this.inFlight--;
    }
  }
  status(): Promise<PrinterStatus> {
    return this.inner.status();
  }
}

/** A printer that takes a job and never answers (and has no timeout of its own). */
class HangingPrinter implements Printer {
  readonly description = 'hanging test printer';
  readonly format = 'zpl' as const;
  print(): Promise<void> {
    return new Promise(() => undefined);
  }
  status(): Promise<PrinterStatus> {
    return Promise.resolve({ ready: true, faults: [], detail: 'hangs' });
  }
}

function renderers(): Map<PrinterJobFormat, LabelRenderer> {
  return new Map<PrinterJobFormat, LabelRenderer>([
    ['png', new PngLabelRenderer()],
    ['zpl', new ZplLabelRenderer()],
    ['svg', new SvgLabelRenderer()],
  ]);
}

let dir: string;
let store: SqliteRecordStore;
let config: StationConfig;
let workOrder: WorkOrder;
let macs = 0;
const closers: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = testDir('label-queue');
  config = defaultStationConfig();
  workOrder = config.workOrders[0]!;
  store = new SqliteRecordStore(openDatabase(join(dir, 'station.db')), config.stationId);
  store.ensureWorkOrder(workOrder);
  store.startRun(RUN_ID, workOrder.id);
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A device the way the run leaves it at `lock`: passed, label pending. */
function passedDevice(): string {
  const n = ++macs;
  const serial = store.allocateDevice({
    runId: RUN_ID,
    workOrder,
    port: 'test',
    hardwareId: `hw-${n}`,
    model: config.products[workOrder.product]!.model,
    firmwareVersion: '1.0.0',
    macs: [`02aabbcc${n.toString(16).padStart(4, '0')}`],
    method: workOrder.method,
  });
  const keyHash = n.toString(16).padStart(64, '0');
  store.recordIssued({ certificateSerialHex: `0a${n.toString(16).padStart(6, '0')}`, deviceSerial: serial, workOrderId: workOrder.id, certificateDer: Buffer.from('not a certificate'), publicKeySha256Hex: keyHash, issuedAt: new Date() });
  store.recordVerified({ serial, keyOrigin: 'device-rng', publicKeySpki: Buffer.from(keyHash, 'hex'), dppUri: DPP_URI, stages: [], runId: RUN_ID });
  store.markPassed(serial, RUN_ID, []);
  return serial;
}

function queueWith(printer: Printer, log: Logger, rendering?: (labels: LabelService) => LabelRendering): { queue: LabelQueue; labels: LabelService } {
  const labels = new LabelService(config, store, renderers(), printer);
  const queue = new LabelQueue({ labels, rendering: rendering ? rendering(labels) : new InProcessLabelRendering(labels), outDir: dir, log });
  closers.push(() => queue.close());
  return { queue, labels };
}

function workerRendering(log: Logger, workerScript?: string): (labels: LabelService) => WorkerLabelRendering {
  return (labels) => new WorkerLabelRendering({ inProcess: new InProcessLabelRendering(labels), log, ...(workerScript ? { startWorker: () => new LabelRenderWorker({ workerScript }) } : {}) });
}

/** A TCP printer address that accepts a connection and never answers. */
async function silentPrinterPort(): Promise<number> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as { port: number }).port;
}

describe('LabelQueue', () => {
  it('prints labels one at a time in the order they came, rendered in the worker, and fills in the device report', async () => {
    const log = new RecordingLogger();
    const printer = new RecordingPrinter(new FilePrinter({ dir: join(dir, 'printed'), format: 'zpl' }));
    const rendering = workerRendering(log);
    let used: WorkerLabelRendering | undefined;
    const { queue } = queueWith(printer, log, (labels) => (used = rendering(labels)));
    const serials = [passedDevice(), passedDevice(), passedDevice(), passedDevice()];
    const reports = serials.map((serial) => ({
      ...blankDeviceReport('test', workOrder.method),
      serial,
      status: 'passed' as const,
      stages: [
        { name: 'lock' as const, status: 'ok' as const, durationMs: 1 },
        { name: 'queue-sync' as const, status: 'skipped' as const, durationMs: 0 },
      ],
    }));
    const events: string[] = [];
    const done = serials.map((serial, i) =>
      queue.enqueue(deviceLabelJob({ serial, port: 'test', report: reports[i]!, log, onStage: (e) => events.push(`${e.serial} ${e.stage} ${e.status}`) })),
    );
    expect(reports[0]!.label).toEqual({ state: 'pending', reason: expect.stringMatching(/^LABEL_QUEUED: /) });
    expect(await queue.drain()).toEqual({ drained: true, notSent: 0 });
    const results = await Promise.all(done);

    expect(used!.inProcess).toBe(false);
    expect(printer.serials).toEqual(serials);
    expect(printer.maxInFlight).toBe(1);
    expect(events).toEqual(serials.flatMap((s) => [`${s} label started`, `${s} label ok`]));
    for (const [i, serial] of serials.entries()) {
      expect(results[i]!.outcome.state).toBe('printed');
      const r = reports[i]!;
      expect(r.label).toEqual({ state: 'printed' });
      expect(r.stages.map((s) => s.name)).toEqual(['lock', 'label', 'queue-sync']);
      expect(r.labelPngPath).toBe(`labels/${serial}.png`);
      expect(r.labelZplPath).toBe(`labels/${serial}.zpl`);
      // the worker's PNG is the station's in-process rendering, byte for byte
      const spec = new LabelService(config, store, renderers(), printer).specFor(serial);
      expect(readFileSync(join(dir, r.labelPngPath!)).equals(await new PngLabelRenderer().render(spec))).toBe(true);
      expect(store.getDevice(serial)?.labelState).toBe('printed');
    }
    expect(log.lines.filter((l) => l.level !== 'info')).toEqual([]);
  });

  it('leaves a label pending with the reason when the printer fails, and goes on with the next', async () => {
    const log = new RecordingLogger();
    // the printer's folder is a file: every job fails at the printer
    writeFileSync(join(dir, 'not-a-folder'), '');
    const { queue } = queueWith(new FilePrinter({ dir: join(dir, 'not-a-folder', 'printed'), format: 'zpl' }), log);
    const [a, b] = [passedDevice(), passedDevice()];
    const results = await Promise.all([queue.enqueue({ serial: a }), queue.enqueue({ serial: b })]);
    for (const [i, r] of results.entries()) {
      expect(r.started).toBe(true);
      expect(r.outcome.state).toBe('pending');
      expect(r.outcome.reason).toMatch(/^PRINTER_FAILED: Cannot create the folder/);
      expect(r.files).toEqual({ png: `labels/${[a, b][i]}.png`, zpl: `labels/${[a, b][i]}.zpl` });
      const device = store.getDevice([a, b][i]!)!;
      expect([device.status, device.labelState, device.labelReason]).toEqual(['passed', 'pending', r.outcome.reason]);
    }
  });

  it('records a renderer failure from the worker as the label\'s reason, without falling back', async () => {
    const log = new RecordingLogger();
    config.products[workOrder.product]!.label = { ...config.products[workOrder.product]!.label, widthMm: 6, heightMm: 4 };
    const rendering = workerRendering(log);
    let used: WorkerLabelRendering | undefined;
    const { queue } = queueWith(new FilePrinter({ dir: join(dir, 'printed'), format: 'zpl' }), log, (labels) => (used = rendering(labels)));
    const serial = passedDevice();
    const r = await queue.enqueue({ serial });
    expect(r.outcome).toMatchObject({ state: 'pending', errorCode: 'LABEL_TOO_SMALL' });
    expect(r.files).toEqual({});
    expect(used!.inProcess).toBe(false);
    expect(store.getDevice(serial)?.labelReason).toMatch(/^LABEL_TOO_SMALL: /);
  });

  it('renders in-process, and says so once, when the worker dies with a label in hand or cannot start', async () => {
    const dying = join(dir, 'dying-worker.js');
    writeFileSync(dying, "require('node:worker_threads').parentPort.on('message', () => process.exit(3));\n");
    for (const script of [dying, join(dir, 'no-such-worker.js')]) {
      const log = new RecordingLogger();
      const rendering = workerRendering(log, script);
      let used: WorkerLabelRendering | undefined;
      const { queue } = queueWith(new FilePrinter({ dir: join(dir, 'printed'), format: 'zpl' }), log, (labels) => (used = rendering(labels)));
      const serials = [passedDevice(), passedDevice()];
      const results = await Promise.all(serials.map((serial) => queue.enqueue({ serial })));
      expect(results.map((r) => r.outcome.state)).toEqual(['printed', 'printed']);
      expect(used!.inProcess).toBe(true);
      const fallbacks = log.lines.filter((l) => l.msg.includes('render in-process'));
      expect(fallbacks).toHaveLength(1);
      expect(fallbacks[0]!.obj.code).toBe('LABEL_RENDER_WORKER_FAILED');
      for (const serial of serials) expect(store.getDevice(serial)?.labelState).toBe('printed');
    }
  });

  it('drains in bounded time with a dead printer: once it has failed for printerDownMs, the labels behind are not sent', async () => {
    const log = new RecordingLogger();
    const port = await silentPrinterPort();
    const { queue } = queueWith(new Tcp9100Printer({ host: '127.0.0.1', port, timeoutMs: 300, statusQuery: false }), log);
    const serials = [passedDevice(), passedDevice(), passedDevice(), passedDevice()];
    const done = serials.map((serial) => queue.enqueue({ serial }));
    expect(await queue.drain({ printerDownMs: 200 })).toEqual({ drained: false, notSent: 3 });
    const results: LabelJobResult[] = await Promise.all(done);
    expect(results[0]!.outcome.errorCode).toBe('PRINTER_TIMEOUT');
    for (const r of results.slice(1)) {
      expect([r.started, r.outcome.state, r.outcome.errorCode]).toEqual([false, 'pending', 'LABEL_NOT_SENT']);
      expect(r.outcome.reason).toContain('PRINTER_TIMEOUT');
    }
    // not sent is not an attempt: the device's label is pending, and `station label print` finds it
    expect(store.pendingLabels(workOrder.id).sort()).toEqual(serials);
  });

  it('still tries every label on a printer that fails fast, so each keeps its own reason', async () => {
    const log = new RecordingLogger();
    // nothing listens on the port of a closed server: every job is refused at once
    const refused = createServer();
    await new Promise<void>((r) => refused.listen(0, '127.0.0.1', r));
    const closedPort = (refused.address() as { port: number }).port;
    await new Promise<void>((r) => refused.close(() => r()));
    const { queue } = queueWith(new Tcp9100Printer({ host: '127.0.0.1', port: closedPort, timeoutMs: 5_000, statusQuery: false }), log);
    const serials = [passedDevice(), passedDevice(), passedDevice()];
    const done = serials.map((serial) => queue.enqueue({ serial }));
    expect(await queue.drain({ printerDownMs: 60_000 })).toEqual({ drained: true, notSent: 0 });
    for (const r of await Promise.all(done)) expect([r.started, r.outcome.errorCode]).toEqual([true, 'PRINTER_UNREACHABLE']);
  });

  it('gives up on what is left when no label ends for the stall time, and ignores a late end', async () => {
    const log = new RecordingLogger();
    const { queue } = queueWith(new HangingPrinter(), log);
    const serials = [passedDevice(), passedDevice()];
    const done = serials.map((serial) => queue.enqueue({ serial }));
    expect(await queue.drain({ stallMs: 200 })).toEqual({ drained: false, notSent: 2 });
    const results = await Promise.all(done);
    expect(results.map((r) => r.outcome.errorCode)).toEqual(['LABEL_QUEUE_STALLED', 'LABEL_QUEUE_STALLED']);
    expect(log.lines.some((l) => l.level === 'error' && l.obj.code === 'LABEL_QUEUE_STALLED')).toBe(true);
  });

  it('a label queued in the same turn as the stop is not started: every one is left pending (LABEL_NOT_SENT)', async () => {
    const log = new RecordingLogger();
    const port = await silentPrinterPort();
    const { queue } = queueWith(new Tcp9100Printer({ host: '127.0.0.1', port, timeoutMs: 300, statusQuery: false }), log);
    const serials = [passedDevice(), passedDevice()];
    // the queue starts a job on the next turn (the device run that queued it goes on at once)
    const done = serials.map((serial) => queue.enqueue({ serial }));
    const stop = new AbortController();
    stop.abort();
    expect(await queue.drain({ printerDownMs: 60_000, signal: stop.signal })).toEqual({ drained: false, notSent: 2 });
    const results = await Promise.all(done);
    expect(results.map((r) => [r.started, r.outcome.errorCode])).toEqual([
      [false, 'LABEL_NOT_SENT'],
      [false, 'LABEL_NOT_SENT'],
    ]);
    expect(store.pendingLabels(workOrder.id).sort()).toEqual(serials.sort());
  });

  it('a stopped run prints the label in hand and leaves the ones not started pending (LABEL_NOT_SENT)', async () => {
    const log = new RecordingLogger();
    const port = await silentPrinterPort();
    const { queue } = queueWith(new Tcp9100Printer({ host: '127.0.0.1', port, timeoutMs: 300, statusQuery: false }), log);
    const serials = [passedDevice(), passedDevice(), passedDevice()];
    const done = serials.map((serial) => queue.enqueue({ serial }));
    // the queue starts its first job on the next turn: let it take the first label in hand
    await new Promise((r) => setImmediate(r));
    const stop = new AbortController();
    stop.abort();
    // a printer that is slow but not down: without the stop, each label would be tried
    expect(await queue.drain({ printerDownMs: 60_000, signal: stop.signal })).toEqual({ drained: false, notSent: 2 });
    const results = await Promise.all(done);
    expect([results[0]!.started, results[0]!.outcome.errorCode]).toEqual([true, 'PRINTER_TIMEOUT']);
    for (const r of results.slice(1)) {
      expect([r.started, r.outcome.state, r.outcome.errorCode]).toEqual([false, 'pending', 'LABEL_NOT_SENT']);
      expect(r.outcome.reason).toContain('the run was stopped');
    }
    expect(store.pendingLabels(workOrder.id).sort()).toEqual(serials);
  });

  it('leaves a label queued after close pending', async () => {
    const { queue } = queueWith(new FilePrinter({ dir: join(dir, 'printed'), format: 'zpl' }), new RecordingLogger());
    await queue.close();
    const r = await queue.enqueue({ serial: passedDevice() });
    expect([r.started, r.outcome.errorCode]).toEqual([false, 'LABEL_QUEUE_CLOSED']);
  });

  it('never starts a label whose device has no passed record; the reason says why', async () => {
    const { queue } = queueWith(new FilePrinter({ dir: join(dir, 'printed'), format: 'zpl' }), new RecordingLogger());
    const r = await queue.enqueue({ serial: 'NOPE-000001' });
    expect(r.outcome).toMatchObject({ state: 'pending', errorCode: 'DEVICE_UNKNOWN' });
    expect(r.files).toEqual({});
  });
});
