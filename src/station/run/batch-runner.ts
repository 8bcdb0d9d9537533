/**
 * Runs devices on several ports in parallel. Each port takes the next device while the batch's
 * count lasts; a port whose device never answers is taken out of the run (the rest go on).
 * A device that fails with a line-stopping error (HSM_UNAVAILABLE, MAC_BLOCK_EXHAUSTED) stops the line: no port
 * takes another device, and the devices already in flight finish or fail.
 *
 * Labels print off the devices' path: each passed device's label joins one label queue for the
 * run (labels/label-queue.ts, rendered in the label render worker), printed in pass order while
 * the ports go on. The run returns once the queue drained (bounded: labels/label-queue.ts), so
 * every report says printed or pending with its reason.
 */
import { DeviceClient, type DeviceClientTimeouts } from '../../device/device-client';
import { DeviceConnection, type ExchangeStats } from '../../device/device-connection';
import type { Transport } from '../../device/transport/transport';
import { asStationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { LabelQueue } from '../labels/label-queue';
import { InProcessLabelRendering, type LabelRendering } from '../labels/label-rendering';
import { WorkerLabelRendering } from '../labels/worker-label-rendering';
import { provisionDevice, type DeviceRunContext } from './device-run';
import { blankDeviceReport, type DeviceReport } from './report';
import { isEmptyPort } from './empty-port';

export interface BatchRunOptions {
  ports: readonly string[];
  count: number;
  openTransport: (path: string) => Transport;
  timeouts: DeviceClientTimeouts;
  onDevice?: (report: DeviceReport) => void;
  /** Each port takes devices until it is empty (empty-port.ts); that last probe is not reported. */
  untilEmpty?: boolean;
  /** Per device: its wall time and what its link exchanged (stats deltas), for benches. */
  onDeviceLink?: (sample: DeviceLinkSample) => void;
  /** At the end of the run, give up on the labels left when none ended for this long (default 30 s; labels/label-queue.ts). */
  labelDrainStallMs?: number;
  /**
   * How the run's labels are rendered; the caller keeps it open (a host running many batches
   * keeps one render worker warm). Default: a label render worker for this run, closed at its end.
   */
  labelRendering?: LabelRendering;
  log: Logger;
}

/**
 * One device's link figures: provisionDevice's wall time (connect to the end of queue-sync; the
 * label prints afterwards, from the run's label queue) and the connection's stats over it.
 */
export interface DeviceLinkSample {
  port: string;
  report: DeviceReport;
  wallMs: number;
  link: ExchangeStats;
}

function statsDelta(after: ExchangeStats, before: ExchangeStats): ExchangeStats {
  const out = { ...after };
  for (const k of Object.keys(out) as (keyof ExchangeStats)[]) out[k] = after[k] - before[k];
  return out;
}

/**
 * Error codes that stop the whole line, not just one device: the HSM is gone, or the station's
 * MAC block is used up (every further device of the product would fail the same way).
 */
export const LINE_STOPPING_CODES: ReadonlySet<string> = new Set(['HSM_UNAVAILABLE', 'MAC_BLOCK_EXHAUSTED']);

export interface BatchRunResult {
  devices: DeviceReport[];
  /** The error that stopped the line, when one did. */
  lineStop?: NonNullable<DeviceReport['error']>;
}

export async function runDevicesOnPorts(ctx: DeviceRunContext, opts: BatchRunOptions): Promise<BatchRunResult> {
  const ownRendering = ctx.labelQueue === undefined && opts.labelRendering === undefined;
  const labelQueue =
    ctx.labelQueue ??
    new LabelQueue({
      labels: ctx.labels,
      rendering: opts.labelRendering ?? new WorkerLabelRendering({ inProcess: new InProcessLabelRendering(ctx.labels), log: opts.log }),
      outDir: ctx.outDir,
      log: opts.log,
    });
  try {
    return await runPorts({ ...ctx, labelQueue }, opts);
  } finally {
    const drain = await labelQueue.drain({ stallMs: opts.labelDrainStallMs, signal: ctx.signal });
    if (!drain.drained) opts.log.warn({ notSent: drain.notSent }, 'labels left pending at the end of the run: print them with "station label print"');
    if (ownRendering) await labelQueue.close();
  }
}

async function runPorts(ctx: DeviceRunContext, opts: BatchRunOptions): Promise<BatchRunResult> {
  let remaining = opts.count;
  let lineStopped = false;
  let lineStop: BatchRunResult['lineStop'];
  const reports: DeviceReport[] = [];
  const take = () => {
    if (lineStopped || remaining <= 0 || ctx.signal.aborted) return false;
    remaining--;
    return true;
  };
  const portFailure = (port: string, err: unknown): DeviceReport => {
    const e = asStationError(err, 'TRANSPORT_OPEN_FAILED', 'connect');
    return {
      ...blankDeviceReport(port, ctx.method.id),
      error: { code: e.code, message: e.message, stage: e.stage ?? 'connect' },
      stages: [{ name: 'connect', status: 'failed', durationMs: 0 }],
    };
  };
  const finish = (r: DeviceReport) => {
    reports.push(r);
    opts.onDevice?.(r);
  };

  await Promise.all(
    opts.ports.map(async (port) => {
      if (!take()) return;
      const transport = opts.openTransport(port);
      try {
        await transport.open();
      } catch (err) {
        finish(portFailure(port, err));
        return;
      }
      const client = new DeviceClient(new DeviceConnection(transport, opts.log.child({ port })), opts.timeouts);
      try {
        let first = true;
        while (first || take()) {
          first = false;
          const linkBefore = opts.onDeviceLink ? { ...client.connection.stats } : undefined;
          const t0 = performance.now();
          const report = await provisionDevice(client, ctx);
          if (linkBefore) opts.onDeviceLink!({ port, report, wallMs: performance.now() - t0, link: statsDelta(client.connection.stats, linkBefore) });
          if (opts.untilEmpty && isEmptyPort(report)) {
            opts.log.info({ port }, 'port empty: nothing answered HELLO; it leaves the run');
            remaining++; // the probe was not a device
            break;
          }
          finish(report);
          if (report.error && LINE_STOPPING_CODES.has(report.error.code)) {
            if (!lineStopped) opts.log.error({ port, code: report.error.code, stage: report.error.stage }, 'line stopped: no further devices are taken');
            lineStopped = true;
            lineStop ??= report.error;
            break;
          }
          if (report.error && (report.error.stage === 'connect' || report.error.code === 'TRANSPORT_DISCONNECTED')) {
            opts.log.warn({ port, code: report.error.code }, 'port taken out of the run');
            break;
          }
        }
      } finally {
        await client.connection.close().catch(() => undefined);
      }
    }),
  );
  return { devices: reports, ...(lineStop ? { lineStop } : {}) };
}
