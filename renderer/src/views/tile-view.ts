/** One port's tile: fixed size, updated in place (no layout jumps while a run updates). */
import type { PortTile } from '../../../src/station/contract/station-api';
import { h } from '../dom';

const STAGE_WORDS: Record<string, string> = {
  connect: 'Connecting',
  identify: 'Identifying',
  assign: 'Assigning serial',
  'obtain-key': 'Making key',
  issue: 'Issuing certificate',
  install: 'Installing',
  verify: 'Verifying',
  record: 'Recording',
  lock: 'Locking',
  label: 'Printing label',
  'queue-sync': 'Queueing sync',
};

export class TileView {
  readonly el: HTMLElement;
  private readonly state: HTMLElement;
  private readonly serial: HTMLElement;
  private readonly hardware: HTMLElement;
  private readonly stage: HTMLElement;
  private readonly progress: HTMLProgressElement;
  private readonly verdict: HTMLElement;
  private readonly failureCode: HTMLElement;
  private readonly failureAction: HTMLElement;
  private readonly failureMessage: HTMLElement;
  private readonly retry: HTMLButtonElement;
  private tile: PortTile;

  constructor(tile: PortTile, index: number, onRetry: (port: string) => void) {
    this.tile = tile;
    const id = `tile-${index}`;
    this.state = h('span', { class: 'tile-state' });
    this.serial = h('p', { class: 'tile-serial' });
    this.hardware = h('p', { class: 'tile-hw' });
    this.stage = h('p', { class: 'tile-stage' });
    this.progress = h('progress', { max: tile.stagesTotal, value: 0, 'aria-label': `Progress of ${tile.name}` });
    this.verdict = h('p', { class: 'verdict', 'aria-live': 'polite' });
    this.failureCode = h('p', { class: 'failure-code' });
    this.failureAction = h('p', { class: 'failure-action' });
    this.failureMessage = h('p', { class: 'failure-message' });
    this.retry = h('button', { type: 'button', class: 'retry', 'data-port': tile.port, onclick: () => onRetry(this.tile.port) }, `Retry ${tile.name}`);
    this.el = h(
      'section',
      { class: 'tile', 'aria-labelledby': `${id}-name`, 'data-port': tile.port, id },
      h('div', { class: 'tile-head' }, h('h3', { id: `${id}-name` }, tile.name), this.state),
      this.serial,
      this.hardware,
      this.stage,
      this.progress,
      this.verdict,
      h('div', { class: 'failure' }, this.failureCode, this.failureAction, this.failureMessage),
      this.retry,
    );
    this.update(tile);
  }

  update(tile: PortTile): void {
    this.tile = tile;
    this.el.dataset.state = tile.state;
    this.state.textContent = { idle: 'Idle', running: 'Working', passed: 'Passed', failed: 'Failed' }[tile.state];
    this.serial.textContent = `Serial ${tile.serial ?? '—'}`;
    this.hardware.textContent = `Hardware ${tile.hardwareId ?? '—'}`;
    this.stage.textContent =
      tile.state === 'running' ? (tile.stage ? STAGE_WORDS[tile.stage] ?? tile.stage : 'Waiting for a device') : tile.state === 'passed' ? `Label ${tile.label ?? '—'}` : tile.state === 'failed' ? `Stopped at ${tile.stage ?? 'start'}` : 'Ready';
    this.progress.value = tile.stagesDone;
    this.verdict.textContent = tile.state === 'passed' ? 'PASS' : tile.state === 'failed' ? 'FAIL' : '';
    const f = tile.failure;
    this.failureCode.textContent = f ? `${f.code}${f.stage ? ` at ${f.stage}` : ''}` : '';
    this.failureAction.textContent = f ? f.action : '';
    this.failureMessage.textContent = f ? f.message : '';
    this.retry.hidden = tile.state !== 'failed';
  }
}
