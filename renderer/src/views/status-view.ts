/** HSM (and its PIN entry), printer, sync backlog and service health, and a simulated line's faults. */
import type { HsmStatus, StationStatus, SyncBacklog, SyncOverview } from '../../../src/station/contract/station-api';
import { dateTime, h, replaceChildren } from '../dom';
import type { AppContext } from '../context';

export class StatusView {
  readonly el: HTMLElement;
  private readonly hsm: HTMLElement;
  private readonly pinForm: HTMLFormElement;
  private readonly pin: HTMLInputElement;
  private readonly printer: HTMLElement;
  private readonly sync: HTMLElement;
  private readonly simSection: HTMLElement;
  readonly faults: HTMLInputElement;
  private readonly faultsNow: HTMLElement;

  constructor(private readonly ctx: AppContext) {
    this.hsm = h('p', { id: 'hsm-state' });
    this.pin = h('input', { id: 'hsm-pin', type: 'password', name: 'hsm-pin', autocomplete: 'off' });
    this.pinForm = h(
      'form',
      { class: 'inline-form', onsubmit: (e: Event) => (e.preventDefault(), void this.enterPin()) },
      h('label', { for: 'hsm-pin' }, 'HSM PIN'),
      this.pin,
      h('button', { type: 'submit' }, 'Unlock HSM'),
    );
    this.printer = h('p', { id: 'printer-state' });
    this.sync = h('div', { id: 'sync-state' });
    this.faults = h('input', { id: 'sim-faults', name: 'sim-faults', autocomplete: 'off', spellcheck: 'false' });
    this.faultsNow = h('p', { id: 'sim-faults-now' });
    this.simSection = h(
      'section',
      { 'aria-labelledby': 'sim-title' },
      h('h3', { id: 'sim-title' }, 'Simulated line'),
      this.faultsNow,
      h(
        'form',
        { class: 'inline-form', onsubmit: (e: Event) => (e.preventDefault(), void this.setFaults()) },
        h('label', { for: 'sim-faults' }, 'Faults (e.g. 1=csr-wrong-serial; empty clears)'),
        this.faults,
        h('button', { type: 'submit' }, 'Apply faults'),
      ),
    );
    this.el = h(
      'section',
      { class: 'view', 'aria-labelledby': 'status-title' },
      h('h2', { id: 'status-title' }, 'Station status'),
      h('section', { 'aria-labelledby': 'hsm-title' }, h('h3', { id: 'hsm-title' }, 'HSM'), this.hsm, this.pinForm),
      h('section', { 'aria-labelledby': 'printer-title' }, h('h3', { id: 'printer-title' }, 'Printer'), this.printer, h('button', { type: 'button', onclick: () => void this.checkPrinter() }, 'Check printer')),
      h('section', { 'aria-labelledby': 'sync-title' }, h('h3', { id: 'sync-title' }, 'Sync and services'), this.sync),
      this.simSection,
    );
  }

  async refresh(): Promise<void> {
    const s = this.ctx.status();
    if (s) this.render(s);
    await Promise.all([this.checkPrinter(), this.loadSync()]);
  }

  render(s: StationStatus): void {
    this.setHsm(s.hsm);
    this.simSection.hidden = !s.simulated;
    this.faultsNow.textContent = `Faults now: ${s.simulatorFaults ?? 'none'}`;
  }

  setHsm(hsm: HsmStatus): void {
    this.hsm.textContent = `${{ ready: 'Ready', 'pin-required': 'Locked', starting: 'Starting', unavailable: 'Unavailable' }[hsm.state]}: ${hsm.detail}`;
    this.pinForm.hidden = hsm.state === 'ready';
  }

  setBacklog(b: SyncBacklog): void {
    void b;
    void this.loadSync();
  }

  private async checkPrinter(): Promise<void> {
    const p = await this.ctx.attempt(() => this.ctx.api.printerStatus({}));
    if (p) this.printer.textContent = `${p.ready ? 'Ready' : 'NOT READY'}: ${p.description}. ${p.detail}${p.faults.length ? ` (${p.faults.join(', ')})` : ''}. Checked ${dateTime(p.checkedAt)}.`;
  }

  private async loadSync(): Promise<void> {
    const o = await this.ctx.attempt(() => this.ctx.api.syncStatus({}));
    if (o) this.renderSync(o);
  }

  private renderSync(o: SyncOverview): void {
    const backlog = o.backlog
      ? `Backlog: ${o.backlog.pending} pending, ${o.backlog.deadLettered} dead-lettered${o.backlog.oldestPendingAgeS !== null ? `, oldest ${Math.round(o.backlog.oldestPendingAgeS / 60)} min old` : ''}.`
      : 'Backlog: not wired.';
    replaceChildren(
      this.sync,
      h('p', {}, backlog),
      h('p', {}, o.detail),
      h('ul', {}, ...(o.services.length ? o.services.map((s) => h('li', {}, `${s.name}: ${s.state}. ${s.detail}`)) : [h('li', {}, 'No services configured.')])),
    );
  }

  private async enterPin(): Promise<void> {
    const pin = this.pin.value;
    this.pin.value = '';
    const s = await this.ctx.attempt(() => this.ctx.api.enterHsmPin({ pin }), () => 'HSM unlocked.');
    if (s) this.setHsm(s);
  }

  private async setFaults(): Promise<void> {
    const s = await this.ctx.attempt(() => this.ctx.api.setSimulatorFaults({ spec: this.faults.value.trim() }), (st) => `Simulator restarted; faults: ${st.simulatorFaults ?? 'none'}.`);
    if (s) {
      this.render(s);
      await this.ctx.refreshStatus();
    }
  }
}
