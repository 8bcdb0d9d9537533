/** The line: run controls, a tile per port, and the shift's counts, yield and throughput chart. */
import type { PortTile, ShiftStats, StationStatus } from '../../../src/station/contract/station-api';
import { h, replaceChildren, svg, time } from '../dom';
import type { AppContext } from '../context';
import { TileView } from './tile-view';

const CHART_W = 480;
const CHART_H = 120;

export class LineView {
  readonly el: HTMLElement;
  private readonly tiles = new Map<string, TileView>();
  private readonly grid: HTMLElement;
  private readonly runState: HTMLElement;
  readonly startButton: HTMLButtonElement;
  private readonly stopButton: HTMLButtonElement;
  private readonly counts: HTMLElement;
  private readonly chart: SVGSVGElement;
  private readonly chartText: HTMLElement;

  constructor(private readonly ctx: AppContext) {
    this.runState = h('p', { class: 'run-state', id: 'run-state' }, 'Idle');
    this.startButton = h('button', { type: 'button', id: 'start-run', class: 'primary', onclick: () => void this.start() }, 'Start run');
    this.stopButton = h('button', { type: 'button', id: 'stop-run', onclick: () => void this.ctx.attempt(() => this.ctx.api.stopRun({}), (r) => (r.stopping ? 'Stopping after the current stage.' : 'No run to stop.')) }, 'Stop run');
    this.grid = h('div', { class: 'tiles' });
    this.counts = h('p', { class: 'counts', id: 'shift-counts' });
    this.chart = svg('svg', { width: CHART_W, height: CHART_H, viewBox: `0 0 ${CHART_W} ${CHART_H}`, role: 'img', 'aria-labelledby': 'chart-text' });
    this.chartText = h('p', { class: 'visually-hidden', id: 'chart-text' });
    this.el = h(
      'section',
      { class: 'view', 'aria-labelledby': 'line-title' },
      h('h2', { id: 'line-title' }, 'Line'),
      h('div', { class: 'run-bar' }, this.startButton, this.stopButton, this.runState),
      this.grid,
      h('section', { class: 'shift', 'aria-labelledby': 'shift-title' }, h('h3', { id: 'shift-title' }, 'This shift'), this.counts, this.chart, this.chartText),
    );
  }

  private async start(): Promise<void> {
    await this.ctx.attempt(() => this.ctx.api.startRun({}), (r) => `Run started on ${r.ports.length} port${r.ports.length === 1 ? '' : 's'}.`);
  }

  async retry(port: string): Promise<void> {
    await this.ctx.attempt(() => this.ctx.api.retryDevice({ port }), () => 'Retrying.');
  }

  render(status: StationStatus): void {
    this.setTiles(status.tiles);
    this.setRun(status.run.state);
    this.setShift(status.shift);
  }

  setTiles(tiles: PortTile[]): void {
    const same = tiles.length === this.tiles.size && tiles.every((t) => this.tiles.has(t.port));
    if (!same) {
      this.tiles.clear();
      replaceChildren(this.grid, ...tiles.map((t, i) => {
        const view = new TileView(t, i, (port) => void this.retry(port));
        this.tiles.set(t.port, view);
        return view.el;
      }));
      if (tiles.length === 0) replaceChildren(this.grid, h('p', {}, 'No ports on this line.'));
      return;
    }
    for (const t of tiles) this.tiles.get(t.port)!.update(t);
  }

  tile(tile: PortTile): void {
    const view = this.tiles.get(tile.port);
    if (view) view.update(tile);
  }

  setRun(state: StationStatus['run']['state']): void {
    this.runState.textContent = { idle: 'Idle', running: 'Running', stopping: 'Stopping' }[state];
    this.startButton.disabled = state !== 'idle';
    this.stopButton.disabled = state === 'idle';
  }

  setShift(shift: ShiftStats): void {
    const y = shift.yield === null ? '—' : `${(shift.yield * 100).toFixed(1)} %`;
    this.counts.textContent = `Passed ${shift.passed}   Failed ${shift.failed}   Yield ${y}`;
    const max = Math.max(1, ...shift.buckets.map((b) => b.passed + b.failed));
    const slot = CHART_W / Math.max(12, shift.buckets.length);
    const bars: SVGElement[] = [];
    shift.buckets.forEach((b, i) => {
      const pass = ((CHART_H - 20) * b.passed) / max;
      const fail = ((CHART_H - 20) * b.failed) / max;
      const x = i * slot + 4;
      bars.push(svg('rect', { x, y: CHART_H - 18 - pass, width: slot - 8, height: pass, class: 'bar-pass' }));
      bars.push(svg('rect', { x, y: CHART_H - 18 - pass - fail, width: slot - 8, height: fail, class: 'bar-fail' }));
      if (i % 3 === 0) bars.push(svg('text', { x, y: CHART_H - 4, class: 'chart-label' }, time(b.at).slice(0, 5)));
    });
    this.chart.replaceChildren(...bars);
    this.chartText.textContent = `Throughput per ${shift.bucketMinutes} minutes: ${shift.buckets.map((b) => `${time(b.at).slice(0, 5)} ${b.passed} passed ${b.failed} failed`).join('; ')}`;
  }
}
