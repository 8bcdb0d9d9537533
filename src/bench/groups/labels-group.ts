/**
 * Group `labels` (contracts.md §4): labels rendered per second, per format, with the demo
 * product's template (50x25 mm at 300 dpi, QR + serial, model, MAC, date + Code 128).
 *
 * Every label is distinct: its own serial, MAC and P-256 public key, hence its own DPP URI
 * (built with the station's DppUri), made before the clock starts; nothing is cached between
 * labels. A short untimed calibration run sizes each repetition to ~`secondsPerRepetition`; a
 * rate is the median of the repetitions. Renderer calls are issued with up to `concurrency`
 * in flight; the renderers are async but do their work synchronously, so this measures one core.
 */
import { createECDH } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { defaultStationConfig, formatSerial, type LabelTemplate, type SerialFormat } from '../../core/config';
import { DppUri } from '../../core/dpp-uri';
import { p256SpkiFromPoint } from '../../core/ec-public-key';
import type { LabelRenderer, LabelSpec } from '../../core/ports/label-renderer';
import { PngLabelRenderer } from '../../label-printer/renderers/png-label-renderer';
import { SvgLabelRenderer } from '../../label-printer/renderers/svg-label-renderer';
import { ZplLabelRenderer } from '../../label-printer/renderers/zpl-label-renderer';
import { MIN_REPETITIONS, medianRate } from '../stats';
import type { BenchContext, BenchGroup, Figure } from '../types';

export interface LabelsGroupOptions {
  repetitions: number;
  /** Target length of one timed repetition. */
  secondsPerRepetition: number;
  /** Untimed labels per format before calibration (JIT, font registration). */
  warmupLabels: number;
  /** Renderer calls in flight at once. */
  concurrency: number;
  pngTarget: number;
  zplTarget: number;
}

export const LABELS_GROUP_DEFAULTS: LabelsGroupOptions = {
  repetitions: MIN_REPETITIONS,
  secondsPerRepetition: 1.5,
  warmupLabels: 50,
  concurrency: 4,
  pngTarget: 100,
  zplTarget: 1000,
};

/** Makes distinct label specs: serial n, MAC 02:xx.. from n, a fresh P-256 key each. */
export class LabelSpecFactory {
  private next: number;

  constructor(
    private readonly template: LabelTemplate,
    private readonly model: string,
    private readonly channels: readonly string[],
    private readonly serial: SerialFormat,
  ) {
    this.next = serial.first;
  }

  make(count: number): LabelSpec[] {
    const out: LabelSpec[] = [];
    for (let i = 0; i < count; i++) {
      const n = this.next++;
      const serial = formatSerial(this.serial, n);
      const mac = `02${n.toString(16).padStart(10, '0').slice(-10)}`;
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const dppUri = DppUri.build({ channels: this.channels, mac, info: serial, version: 2, publicKeySpki: p256SpkiFromPoint(ecdh.getPublicKey()) }).toString();
      out.push({ serial, model: this.model, mac, dppUri, date: '2025-01-31', template: this.template });
    }
    return out;
  }
}

/** Renders every spec with at most `concurrency` calls in flight; returns the outputs in order. */
export async function renderAll(renderer: LabelRenderer, specs: readonly LabelSpec[], concurrency: number): Promise<Buffer[]> {
  const out: Buffer[] = new Array<Buffer>(specs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < specs.length) {
      const i = next++;
      out[i] = await renderer.render(specs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, specs.length)) }, worker));
  return out;
}

/** A cheap check that each output is a label of its format for its own spec. */
function checkOutputs(renderer: LabelRenderer, specs: readonly LabelSpec[], outputs: readonly Buffer[]): void {
  const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  outputs.forEach((b, i) => {
    const ok =
      renderer.format === 'png'
        ? b.subarray(0, 8).equals(pngSignature)
        : b.includes(renderer.format === 'zpl' ? specs[i]!.dppUri : specs[i]!.serial);
    if (!ok) throw new Error(`the ${renderer.format} renderer produced an unexpected label for ${specs[i]!.serial}`);
  });
}

async function measure(
  ctx: BenchContext,
  renderer: LabelRenderer,
  factory: LabelSpecFactory,
  o: LabelsGroupOptions,
): Promise<{ rate: number; rates: number[]; perRepetition: number }> {
  const warm = factory.make(o.warmupLabels);
  checkOutputs(renderer, warm, await renderAll(renderer, warm, o.concurrency));

  // Calibration: how many labels make one repetition of ~secondsPerRepetition.
  const probe = factory.make(Math.max(20, o.warmupLabels));
  const t0 = performance.now();
  await renderAll(renderer, probe, o.concurrency);
  const probeRate = probe.length / Math.max((performance.now() - t0) / 1000, 1e-6);
  const perRepetition = Math.max(50, Math.round(probeRate * o.secondsPerRepetition));

  const result = await medianRate(o.repetitions, async () => {
    const specs = factory.make(perRepetition);
    const start = performance.now();
    const outputs = await renderAll(renderer, specs, o.concurrency);
    const seconds = (performance.now() - start) / 1000;
    checkOutputs(renderer, specs, outputs);
    return { count: specs.length, seconds };
  });
  ctx.log(`${renderer.format} labels/s per repetition: ${result.rates.map((r) => r.toFixed(0)).join(', ')} (${perRepetition} labels each)`);
  return { ...result, perRepetition };
}

export function createLabelsGroup(overrides: Partial<LabelsGroupOptions> = {}): BenchGroup {
  const o: LabelsGroupOptions = { ...LABELS_GROUP_DEFAULTS, ...overrides };
  return {
    name: 'labels',
    description: 'PNG, ZPL and SVG labels rendered per second, each label with its own serial, MAC and key',
    async run(ctx): Promise<Figure[]> {
      const config = defaultStationConfig();
      const product = config.products['demo-sensor']!;
      const t = product.label;
      const factory = new LabelSpecFactory(t, product.model, product.dpp.channels, { prefix: 'BENCH-', width: 7, first: 1, last: 9_999_999 });
      ctx.note('template', `${t.widthMm}x${t.heightMm} mm at ${t.dpi} dpi, QR ${t.qrErrorCorrection}, code128 ${t.code128Serial}, model/MAC/date ${t.showModel}/${t.showMac}/${t.showDate}`);
      ctx.note(
        'parameters',
        `${o.repetitions} repetitions of ~${o.secondsPerRepetition} s per format; distinct serial, MAC and P-256 key per label, made before the clock; ` +
          `renderer calls ${o.concurrency} in flight (the renderers are async but synchronous inside: one core)`,
      );

      const png = await measure(ctx, new PngLabelRenderer(), factory, o);
      const zpl = await measure(ctx, new ZplLabelRenderer(), factory, o);
      const svg = await measure(ctx, new SvgLabelRenderer(), factory, o);
      const ms = (rate: number) => (1000 / rate).toFixed(2);
      ctx.note('ms per label (median rate)', `png ${ms(png.rate)}, zpl ${ms(zpl.rate)}, svg ${ms(svg.rate)}`);

      return [
        { name: 'labels_png_per_s', value: png.rate, unit: 'labels/s', target: { op: '>=', value: o.pngTarget } },
        { name: 'labels_zpl_per_s', value: zpl.rate, unit: 'labels/s', target: { op: '>=', value: o.zplTarget } },
        { name: 'labels_svg_per_s', value: svg.rate, unit: 'labels/s' },
      ];
    },
  };
}

export const labelsGroup: BenchGroup = createLabelsGroup();
