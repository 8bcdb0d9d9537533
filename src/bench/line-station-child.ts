/**
 * The station, as its own process, for the `line` group (src/bench/groups/line-group.ts): so
 * that its RSS is the station's alone (plus its children; the simulator it starts is left out)
 * and its CPU is not the bench harness's. Run as
 *
 *   node dist/bench/line-station-child.js '<LineChildSpec as JSON>'
 *
 * It makes the data dir's PKI (as `station batch --simulate` does), opens the CA once, then
 * runs each batch of the spec through createStation().runBatch with paced simulated devices
 * (simulateBaud), metering each device (batch runner's onDeviceLink, MeteredTransport). It
 * prints one JSON line per batch ({ event: 'run', ... }) and a last one ({ event: 'done', ... })
 * with the memory peaks, on stdout; the station's log goes to DATA/station.log.
 */
import 'reflect-metadata';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultStationConfig } from '../core/config';
import { createStation } from '../station/station';
import { createFileLogger } from '../station/pino-logger';
import type { DeviceLinkSample } from '../station/run/batch-runner';
import { MeteredTransport, type LinkMeter } from './line-metered-transport';

export interface LineChildSpec {
  dataDir: string;
  baud: number;
  /** Batches in order, each with its method (one data dir and one open CA for all). */
  runs: Array<{ method: string; ports: number; count: number }>;
}

/** One device as the line group needs it. */
export interface LineDeviceSample {
  port: string;
  passed: boolean;
  error: string | null;
  wallMs: number;
  deviceWaitMs: number;
  bytesSent: number;
  bytesReceived: number;
  /** Reply bytes delivered by the first read after each write (their line time is inside deviceWaitMs). */
  firstReadBytes: number;
  framesSent: number;
  reads: number;
  /** Order in which the device finished on its port (0 = the port's first device). */
  indexOnPort: number;
}

export interface LineRunResult {
  event: 'run';
  method: string;
  ports: number;
  count: number;
  /** From onStart (simulator up, keys prepared or seeds imported) to the last device's end. */
  seconds: number;
  /** The station process's CPU over the same span (user + system), ms. */
  cpuMs: number;
  /** Peak RSS (station + its children other than the simulator) sampled every 50 ms over the span, MiB. */
  sampledPeakRssMb: number;
  devices: LineDeviceSample[];
}

export interface LineChildDone {
  event: 'done';
  /** VmHWM of the station process over its whole life, MiB. */
  vmHwmMb: number;
  /** Largest sampled RSS of the station plus its non-simulator children over all runs, MiB. */
  sampledPeakRssMb: number;
}

function statusKb(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // the process is gone
  }
  return out;
}

function isSimulator(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('station-sim');
  } catch {
    return true;
  }
}

/** RSS of this process plus every descendant that is not a simulator (nor below one), MiB. */
export function stationTreeRssMb(): number {
  let kb = statusKb('self', 'VmRSS');
  const queue = childrenOf(process.pid);
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (isSimulator(pid)) continue;
    kb += statusKb(pid, 'VmRSS');
    queue.push(...childrenOf(pid));
  }
  return kb / 1024;
}

async function main(spec: LineChildSpec): Promise<void> {
  const config = defaultStationConfig();
  const log = createFileLogger(join(spec.dataDir, 'station.log'), { station: config.stationId });
  const station = createStation(config, { dataDir: spec.dataDir, log });
  await station.pkiInit();
  const ca = await station.openCa();
  let overallPeak = 0;
  try {
    for (const [i, run] of spec.runs.entries()) {
      const wo = config.workOrders.find((w) => w.method === run.method);
      if (!wo) throw new Error(`no work order uses method ${run.method}`);
      const devices: LineDeviceSample[] = [];
      const meters = new Map<string, MeteredTransport>();
      const lastMeter = new Map<string, LinkMeter>();
      const perPort = new Map<string, number>();
      let t0 = 0;
      let tEnd = 0;
      let cpu0 = process.cpuUsage();
      let peak = 0;
      const sampler = setInterval(() => {
        if (t0 === 0) return;
        peak = Math.max(peak, stationTreeRssMb());
      }, 50);
      try {
        await station.runBatch({
          workOrderId: wo.id,
          simulate: run.ports,
          simulateBaud: spec.baud,
          count: run.count,
          outDir: join(spec.dataDir, `out-${i}`),
          signal: new AbortController().signal,
          ca,
          onStart: () => {
            t0 = performance.now();
            cpu0 = process.cpuUsage();
            peak = stationTreeRssMb();
          },
          wrapTransport: (t) => {
            const m = new MeteredTransport(t);
            meters.set(t.path, m);
            return m;
          },
          onDeviceLink: (s: DeviceLinkSample) => {
            tEnd = performance.now();
            const meter = meters.get(s.port)?.meter ?? { writes: 0, firstReadBytes: 0, reads: 0 };
            const before = lastMeter.get(s.port) ?? { writes: 0, firstReadBytes: 0, reads: 0 };
            lastMeter.set(s.port, { ...meter });
            const firstRead = meter.firstReadBytes - before.firstReadBytes;
            const reads = meter.reads - before.reads;
            const idx = perPort.get(s.port) ?? 0;
            perPort.set(s.port, idx + 1);
            devices.push({
              port: s.port,
              passed: s.report.status === 'passed',
              error: s.report.error ? `${s.report.error.code} (${s.report.error.stage}): ${s.report.error.message}` : null,
              wallMs: s.wallMs,
              deviceWaitMs: s.link.deviceWaitMs,
              bytesSent: s.link.bytesSent,
              bytesReceived: s.link.bytesReceived,
              firstReadBytes: firstRead,
              framesSent: s.link.framesSent,
              reads,
              indexOnPort: idx,
            });
          },
        });
      } finally {
        clearInterval(sampler);
      }
      const cpu = process.cpuUsage(cpu0);
      overallPeak = Math.max(overallPeak, peak);
      const result: LineRunResult = {
        event: 'run',
        method: run.method,
        ports: run.ports,
        count: run.count,
        seconds: (tEnd - t0) / 1000,
        cpuMs: (cpu.user + cpu.system) / 1000,
        sampledPeakRssMb: peak,
        devices,
      };
      process.stdout.write(JSON.stringify(result) + '\n');
    }
  } finally {
    await ca.close();
    log.flush();
  }
  const done: LineChildDone = { event: 'done', vmHwmMb: statusKb('self', 'VmHWM') / 1024, sampledPeakRssMb: overallPeak };
  process.stdout.write(JSON.stringify(done) + '\n');
}

if (require.main === module) {
  main(JSON.parse(process.argv[2] ?? '{}') as LineChildSpec).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`line-station-child: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
