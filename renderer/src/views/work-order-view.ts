/** Work order selection: scan or type its id, or pick it from the list. */
import type { WorkOrderSummary } from '../../../src/station/contract/station-api';
import { h, replaceChildren } from '../dom';
import type { AppContext } from '../context';

export class WorkOrderView {
  readonly el: HTMLElement;
  readonly input: HTMLInputElement;
  private readonly list: HTMLElement;
  private readonly current: HTMLElement;

  constructor(private readonly ctx: AppContext) {
    this.input = h('input', { id: 'wo-input', name: 'work-order', autocomplete: 'off', spellcheck: 'false' });
    this.list = h('ul', { class: 'wo-list', 'aria-label': 'Work orders' });
    this.current = h('p', { id: 'wo-current' });
    const form = h(
      'form',
      { class: 'inline-form', onsubmit: (e: Event) => (e.preventDefault(), void this.select(this.input.value.trim())) },
      h('label', { for: 'wo-input' }, 'Work order (scan or type)'),
      this.input,
      h('button', { type: 'submit' }, 'Select'),
    );
    this.el = h('section', { class: 'view', 'aria-labelledby': 'wo-title' }, h('h2', { id: 'wo-title' }, 'Work order'), this.current, form, this.list);
  }

  async select(id: string): Promise<void> {
    if (id === '') return;
    const status = await this.ctx.attempt(() => this.ctx.api.selectWorkOrder({ workOrderId: id }), () => `Work order ${id} selected.`);
    if (status) {
      await this.ctx.refreshStatus();
      this.ctx.show('line', true);
    }
  }

  /** A scanned work-order label: fill the field and select it. */
  scanned(id: string): void {
    this.input.value = id;
    void this.select(id);
  }

  async refresh(): Promise<void> {
    const orders = await this.ctx.attempt(() => this.ctx.api.listWorkOrders({}));
    if (!orders) return;
    const selected = this.ctx.status()?.workOrder?.id ?? null;
    this.current.textContent = selected ? `Selected: ${selected}` : 'No work order selected yet.';
    replaceChildren(this.list, ...orders.map((w) => h('li', {}, this.button(w, w.id === selected))));
  }

  knows(id: string): boolean {
    return [...this.list.querySelectorAll('button')].some((b) => b.dataset.workOrder === id);
  }

  private button(w: WorkOrderSummary, selected: boolean): HTMLButtonElement {
    return h(
      'button',
      { type: 'button', class: 'wo-button', 'data-work-order': w.id, 'aria-pressed': selected ? 'true' : 'false', onclick: () => void this.select(w.id) },
      h('span', { class: 'wo-id' }, w.id),
      h('span', {}, `${w.product} (${w.model}), method ${w.method}`),
      h('span', {}, `serials ${w.serialFirst} to ${w.serialLast}, next ${w.nextSerial ?? '—'}, ${w.remaining ?? '?'} left`),
      h('span', {}, `owner ${w.owner ?? '—'}`),
    );
  }
}
