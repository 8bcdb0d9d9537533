/**
 * Group `line` (contracts.md §4, issue 9): the station at line scale. The station always runs
 * as its own process (dist/bench/line-station-child.js, dist/bench/line-prepare-child.js), so
 * that its RSS and CPU are its own; the simulator it starts (station-sim --baud, paced as
 * contracts.md §4 says) is a further process and is left out of the RSS.
 *
 * - line_overhead_p50_ms_<method>: per device, wall time of provisionDevice (batch runner's
 *   onDeviceLink) − time waiting on the device (DeviceConnection's deviceWaitMs: request written
 *   → first reply byte) − (reply bytes − bytes of each reply's first read) × 10 / baud, with
 *   `ports` paced devices, `devicesPerPort` each, after an untimed warm-up batch. The first read
 *   of each reply is left out of the wire time because the paced simulator releases a chunk only
 *   once its last byte would have crossed the line: its line time is already inside the device
 *   wait. Request bytes are not subtracted: a PTY moves them at memory speed (on a real line
 *   their time falls inside the device wait too). p50 over every device of the method.
 * - line_overhead_p50_ms / line_overhead_p99_ms: the largest p50 and the largest p99 over the
 *   methods (the worst method; named in the notes).
 * - line_parallel_efficiency_32: rate(32) / (32 × rate(1)), rate(P) = devices / (first device
 *   started → last device finished) with P paced ports and `efficiencyDevicesPerPort` devices
 *   per port, each rate the median of `repetitions` batches (method `efficiencyMethod`);
 *   rates at 4 and 16 ports are printed in the notes.
 * - line_rss_mb_32: the larger of VmHWM (peak RSS over its life) of the station process that
 *   ran every batch above (32 ports at most; the PKCS#11 worker is a thread of it) and the
 *   largest sampled RSS (every 50 ms) of that process plus its children other than the
 *   simulator (there are none today; the simulator and the vendor kits are excluded).
 * All line batches run in one station process (one data dir, the CA opened once, as a
 * station runs a shift): an untimed warm-up batch, one batch per method on `ports` ports,
 * then the efficiency batches.
 * - line_prepared_100k_s: seconds for `preparedCount` factory-injected devices prepared
 *   (prepareKeys: keys generated in the HSM and wrapped under the KEK, serials allocated,
 *   certificates issued through the station's IdevidIssuer, device, certificate, intent,
 *   prepared-key and audit rows committed with synchronous=FULL) — scaled to 100,000 when
 *   preparedCount differs (the default is 100,000: measured for real).
 * - line_prepared_seed_100k_s: seconds for `seedCount` chips of a vendor-kit seed file imported
 *   (opened and re-sealed in the HSM worker, rows committed) and their certificates prepared
 *   (prepareSeedCertificates: public key derived in the HSM worker, checked, issued, committed);
 *   the kit's own time (the vendor's) is not counted. Scaled to 100,000 likewise.
 * - line_prepared_vs_raw: rate(factory-injected prepare) × (1 / rawKeygenWrap + 1 / rawSign):
 *   the prepared rate as a fraction of what the HSM alone allows for the same HSM work done one
 *   after another in one thread (one keygen + wrap and one C_Sign per device). rawSign =
 *   C_Sign(CKM_ECDSA) on a 32-byte digest with the CA key, one session, one thread (as the ca
 *   group); rawKeygenWrap = the worker's inject.generate-wrapped alone (C_GenerateKeyPair as
 *   session objects, C_WrapKey(CKM_AES_KEY_WRAP_PAD), both objects destroyed), both medians of
 *   `repetitions`, same token, same run.
 * The 100k figures are one run each (a repetition costs a minute or more; the group must stay
 * under 8 minutes); the raw rates and the line rates are medians of three.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { METHOD_IDS, type MethodId } from '../../core/method-id';
import { describeTiming, pacedTiming } from '../../simulator/link-timing';
import type { LineChildDone, LineChildSpec, LineDeviceSample, LineRunResult } from '../line-station-child';
import type { LinePrepareResult, LinePrepareSpec } from '../line-prepare-child';
import { MIN_REPETITIONS, median } from '../stats';
import type { BenchContext, BenchGroup, Figure } from '../types';

export interface LineGroupOptions {
  baud: number;
  /** Ports of the overhead runs (contracts.md §4: 32). */
  ports: number;
  devicesPerPort: number;
  methods: readonly MethodId[];
  efficiencyMethod: MethodId;
  efficiencyPorts: readonly number[];
  efficiencyDevicesPerPort: number;
  repetitions: number;
  preparedCount: number;
  seedCount: number;
  rawSignSeconds: number;
  rawKeygenKeys: number;
  targets: { overheadP50Ms: number; overheadP99Ms: number; efficiency: number; rssMb: number; prepared100kS: number };
}

export const LINE_GROUP_DEFAULTS: LineGroupOptions = {
  baud: 115200,
  ports: 32,
  devicesPerPort: 2,
  methods: METHOD_IDS,
  efficiencyMethod: 'secure-element-keygen',
  efficiencyPorts: [1, 4, 16, 32],
  efficiencyDevicesPerPort: 3,
  repetitions: MIN_REPETITIONS,
  preparedCount: Number(process.env.BENCH_LINE_PREPARED ?? 100_000),
  seedCount: Number(process.env.BENCH_LINE_SEEDS ?? 100_000),
  rawSignSeconds: 1,
  rawKeygenKeys: 4096,
  targets: { overheadP50Ms: 5, overheadP99Ms: 20, efficiency: 0.8, rssMb: 250, prepared100kS: 60 },
};

/** dist/bench/<name>.js, from dist/bench/groups or src/bench/groups alike (the children run compiled JS). */
function childScript(name: string): string {
  return resolve(__dirname, '..', '..', '..', 'dist', 'bench', `${name}.js`);
}

function runChild(ctx: BenchContext, script: string, spec: unknown): Promise<unknown[]> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [childScript(script), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line.trim()) lines.push(JSON.parse(line) as unknown);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const lines: unknown[] = [];
    child.once('error', fail);
    child.once('exit', (code, signal) => {
      if (code === 0) return done(lines);
      fail(new Error(`${script} exited with ${code ?? signal}: ${err.trim().split('\n').slice(-6).join(' | ')}`));
    });
    ctx.log(`${script} started (pid ${child.pid})`);
  });
}

export function deviceOverheadMs(d: LineDeviceSample, baud: number): number {
  return d.wallMs - d.deviceWaitMs - ((d.bytesReceived - d.firstReadBytes) * 10 * 1000) / baud;
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) throw new RangeError('percentile of no values');
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

function checkPassed(run: LineRunResult, method: string): void {
  const bad = run.devices.filter((d) => !d.passed);
  if (bad.length > 0) throw new Error(`${method}, ${run.ports} ports: ${bad.length} of ${run.devices.length} devices failed; first: ${bad[0]!.error}`);
  if (run.devices.length !== run.count) throw new Error(`${method}, ${run.ports} ports: ${run.devices.length} devices reported, ${run.count} asked for`);
}

const snake = (m: string) => m.replace(/-/g, '_');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

export function createLineGroup(overrides: Partial<LineGroupOptions> = {}): BenchGroup {
  const o: LineGroupOptions = { ...LINE_GROUP_DEFAULTS, ...overrides };
  return {
    name: 'line',
    description: 'the station at line scale: per-device overhead per method (32 paced ports), parallel efficiency, RSS, 100k prepared batches vs raw HSM rates',
    async run(ctx): Promise<Figure[]> {
      ctx.note('simulator timing', describeTiming(pacedTiming(o.baud)));
      ctx.note('load average at start', load());
      const figures: Figure[] = [];

      // 1 + 2. one station process, one data dir, the CA opened once: a warm-up batch, then per
      // method a batch on `ports` paced ports (the efficiency method's come from its efficiency
      // runs), then the efficiency batches at 1, 4, 16, 32 ports, `repetitions` each.
      const top = Math.max(...o.efficiencyPorts);
      const runs: LineChildSpec['runs'] = [{ method: o.efficiencyMethod, ports: 4, count: 8 }];
      for (const method of o.methods) if (method !== o.efficiencyMethod || top !== o.ports) runs.push({ method, ports: o.ports, count: o.ports * o.devicesPerPort });
      for (const ports of o.efficiencyPorts) for (let r = 0; r < o.repetitions; r++) runs.push({ method: o.efficiencyMethod, ports, count: ports * o.efficiencyDevicesPerPort });
      const dataDir = join(ctx.dataDir, 'line-station');
      mkdirSync(dataDir, { recursive: true });
      const lines = (await runChild(ctx, 'line-station-child', { dataDir, baud: o.baud, runs } satisfies LineChildSpec)) as (LineRunResult | LineChildDone)[];
      const measured = lines.filter((l): l is LineRunResult => l.event === 'run').slice(1);
      const done = lines.find((l): l is LineChildDone => l.event === 'done');
      if (!done) throw new Error('the station child reported no memory figures');
      measured.forEach((r) => checkPassed(r, r.method));

      const perMethod: { method: MethodId; p50: number; p99: number }[] = [];
      for (const method of o.methods) {
        const batches = measured.filter((r) => r.method === method && r.ports === o.ports);
        if (batches.length === 0) throw new Error(`${method}: no measured batch on ${o.ports} ports`);
        const devices = batches.flatMap((r) => r.devices);
        const overheads = devices.map((d) => deviceOverheadMs(d, o.baud));
        const p50 = percentile(overheads, 0.5);
        const p99 = percentile(overheads, 0.99);
        perMethod.push({ method, p50, p99 });
        const m = (f: (d: LineDeviceSample) => number) => median(devices.map(f));
        const cpuMs = batches.reduce((a, r) => a + r.cpuMs, 0);
        const rate = median(batches.map((r) => r.count / r.seconds));
        ctx.note(
          `${method}, ${o.ports} ports`,
          `overhead p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms over ${devices.length} devices; per device (medians) ${m((d) => d.wallMs).toFixed(0)} ms wall, ` +
            `${m((d) => d.deviceWaitMs).toFixed(0)} ms device wait, ${m((d) => d.bytesSent + d.bytesReceived).toFixed(0)} bytes; station CPU ${(cpuMs / devices.length).toFixed(1)} ms/device; ` +
            `${rate.toFixed(1)} devices/s`,
        );
        figures.push({ name: `line_overhead_p50_ms_${snake(method)}`, value: p50, unit: 'ms', target: { op: '<=', value: o.targets.overheadP50Ms } });
      }
      const worst50 = perMethod.reduce((a, b) => (b.p50 > a.p50 ? b : a));
      const worst99 = perMethod.reduce((a, b) => (b.p99 > a.p99 ? b : a));
      ctx.note('worst method', `p50: ${worst50.method}; p99: ${worst99.method}; load ${load()}`);
      figures.unshift(
        { name: 'line_overhead_p50_ms', value: worst50.p50, unit: 'ms', target: { op: '<=', value: o.targets.overheadP50Ms } },
        { name: 'line_overhead_p99_ms', value: worst99.p99, unit: 'ms', target: { op: '<=', value: o.targets.overheadP99Ms } },
      );

      const rate = new Map<number, number>();
      for (const ports of o.efficiencyPorts) {
        const reps = measured.filter((r) => r.method === o.efficiencyMethod && r.ports === ports && r.count === ports * o.efficiencyDevicesPerPort);
        rate.set(ports, median(reps.map((r) => r.count / r.seconds)));
      }
      const efficiency = rate.get(top)! / (top * rate.get(1)!);
      ctx.note(`${o.efficiencyMethod} devices/s by ports`, [...rate].map(([p, r]) => `${p}: ${r.toFixed(2)}`).join(', '));
      const topRuns = measured.filter((r) => r.ports === top);
      ctx.note(
        `RSS with ${top} ports`,
        `VmHWM ${done.vmHwmMb.toFixed(0)} MiB over the station process's life (every batch above); sampled peak of station + non-simulator children during the ${top}-port batches ${Math.max(...topRuns.map((r) => r.sampledPeakRssMb)).toFixed(0)} MiB`,
      );
      figures.push(
        { name: `line_parallel_efficiency_${top}`, value: efficiency, unit: 'ratio', target: { op: '>=', value: o.targets.efficiency } },
        { name: `line_rss_mb_${top}`, value: Math.max(done.vmHwmMb, done.sampledPeakRssMb), unit: 'MiB', target: { op: '<=', value: o.targets.rssMb } },
      );

      // 3. prepared batches and raw HSM rates, same token, same run
      {
        const dataDir = join(ctx.dataDir, 'line-prepare');
        mkdirSync(dataDir, { recursive: true });
        ctx.log(`preparing ${o.preparedCount} factory-injected devices and ${o.seedCount} seed-derived certificates (load ${load()})`);
        const spec: LinePrepareSpec = { dataDir, count: o.preparedCount, seedCount: o.seedCount, repetitions: o.repetitions, rawSignSeconds: o.rawSignSeconds, rawKeygenKeys: o.rawKeygenKeys };
        const [r] = (await runChild(ctx, 'line-prepare-child', spec)) as [LinePrepareResult];
        const rawSign = median(r.rawSignPerS);
        const rawKgw = median(r.rawKeygenWrapPerS);
        const injectRate = r.injected.count / r.injected.seconds;
        const seedSeconds = r.seed.importSeconds + r.seed.prepareSeconds;
        const scale = (n: number) => 100_000 / n;
        ctx.note(
          'prepared batches',
          `factory-injected ${r.injected.count} in ${r.injected.seconds.toFixed(1)} s (${injectRate.toFixed(0)}/s, ${((r.injected.cpuSeconds / r.injected.count) * 1000).toFixed(2)} ms CPU per device, main thread + HSM worker); ` +
            `seed-derived ${r.seed.count}: import ${r.seed.importSeconds.toFixed(1)} s + prepare ${r.seed.prepareSeconds.toFixed(1)} s (${((r.seed.cpuSeconds / r.seed.count) * 1000).toFixed(2)} ms CPU per chip; vendor kit ${r.seed.kitSeconds.toFixed(1)} s, not counted); database ${(r.databaseBytes / 2 ** 20).toFixed(0)} MiB; load ${load()}`,
        );
        ctx.note('raw HSM rates (medians)', `C_Sign ${rawSign.toFixed(0)}/s [${r.rawSignPerS.map((x) => x.toFixed(0)).join(', ')}]; keygen + wrap ${rawKgw.toFixed(0)}/s [${r.rawKeygenWrapPerS.map((x) => x.toFixed(0)).join(', ')}]`);
        if (o.preparedCount !== 100_000 || o.seedCount !== 100_000) ctx.note('scaled', `prepared ${o.preparedCount} / ${o.seedCount}; the _100k_s figures are scaled linearly to 100,000`);
        figures.push(
          { name: 'line_prepared_100k_s', value: r.injected.seconds * scale(r.injected.count), unit: 's', target: { op: '<=', value: o.targets.prepared100kS } },
          { name: 'line_prepared_seed_100k_s', value: seedSeconds * scale(r.seed.count), unit: 's' },
          { name: 'line_prepared_vs_raw', value: injectRate * (1 / rawKgw + 1 / rawSign), unit: 'ratio' },
        );
      }
      ctx.note('load average at end', load());
      return figures;
    },
  };
}

export const lineGroup: BenchGroup = createLineGroup();
