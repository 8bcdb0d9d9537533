/** Recent devices and search (a scanned serial fills the field), one device's record, label preview and supervisor actions. */
import type { AuditEntry, DeviceDetail, DeviceSummary } from '../../../src/station/contract/station-api';
import { dateTime, h, replaceChildren } from '../dom';
import type { AppContext } from '../context';

export function auditRow(e: AuditEntry): HTMLTableRowElement {
  const data = Object.entries(e.data)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
  return h('tr', {}, h('td', {}, e.seq), h('td', {}, dateTime(e.at)), h('td', {}, e.type), h('td', {}, e.serial ?? '—'), h('td', { class: 'audit-data' }, data));
}

export class DevicesView {
  readonly el: HTMLElement;
  readonly search: HTMLInputElement;
  private readonly results: HTMLTableSectionElement;
  private readonly record: HTMLElement;
  private readonly reason: HTMLInputElement;
  private detail: DeviceDetail | null = null;

  constructor(private readonly ctx: AppContext) {
    this.search = h('input', { id: 'device-search', name: 'device-search', autocomplete: 'off', spellcheck: 'false' });
    this.results = h('tbody');
    this.record = h('div', { class: 'record-body' }, h('p', {}, 'Pick a device to see its record.'));
    this.reason = h('input', { id: 'action-reason', name: 'reason', autocomplete: 'off' });
    const form = h(
      'form',
      { class: 'inline-form', onsubmit: (e: Event) => (e.preventDefault(), void this.find(this.search.value.trim())) },
      h('label', { for: 'device-search' }, 'Serial, hardware id or work order (scan or type)'),
      this.search,
      h('button', { type: 'submit' }, 'Search'),
    );
    const actions = h(
      'form',
      { class: 'actions', 'aria-labelledby': 'actions-title', onsubmit: (e: Event) => e.preventDefault() },
      h('h3', { id: 'actions-title' }, 'Supervisor actions'),
      h('label', { for: 'action-reason' }, 'Reason'),
      this.reason,
      h('div', { class: 'action-buttons' },
        h('button', { type: 'button', id: 'reprint-label', onclick: () => void this.reprint() }, 'Reprint label'),
        h('button', { type: 'button', id: 'rework-device', onclick: () => void this.rework() }, 'Send to rework'),
        h('button', { type: 'button', id: 'retire-serial', onclick: () => void this.retire() }, 'Retire serial'),
      ),
    );
    this.el = h(
      'section',
      { class: 'view', 'aria-labelledby': 'devices-title' },
      h('h2', { id: 'devices-title' }, 'Devices'),
      form,
      h('div', { class: 'devices-layout' },
        h('div', { class: 'device-list' },
          h('table', {}, h('caption', {}, 'Recent devices'), h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Serial'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Label'), h('th', { scope: 'col' }, 'Changed'))), this.results),
        ),
        h('section', { class: 'record', 'aria-labelledby': 'record-title' }, h('h3', { id: 'record-title' }, 'Device record'), this.record, actions),
      ),
    );
  }

  async refresh(): Promise<void> {
    await this.find(this.search.value.trim());
  }

  /** A scanned serial: fill the field, search, open the record when it matches exactly. */
  scanned(text: string): void {
    this.search.value = text;
    void this.find(text);
  }

  private async find(query: string): Promise<void> {
    const rows = await this.ctx.attempt(() => this.ctx.api.listDevices(query === '' ? {} : { query }));
    if (!rows) return;
    replaceChildren(this.results, ...rows.map((r) => this.row(r)));
    if (rows.length === 0) replaceChildren(this.results, h('tr', {}, h('td', { colspan: 4 }, 'No device matches.')));
    const exact = rows.find((r) => r.serial === query);
    if (exact) await this.open(exact.serial);
  }

  private row(r: DeviceSummary): HTMLTableRowElement {
    return h(
      'tr',
      {},
      h('td', {}, h('button', { type: 'button', class: 'link', 'data-serial': r.serial, onclick: () => void this.open(r.serial) }, r.serial)),
      h('td', {}, r.status + (r.errorCode ? ` (${r.errorCode})` : '') + (r.disposition ? `, ${r.disposition}` : '')),
      h('td', {}, r.labelState),
      h('td', {}, dateTime(r.updatedAt)),
    );
  }

  async open(serial: string): Promise<void> {
    const d = await this.ctx.attempt(() => this.ctx.api.getDevice({ serial }));
    if (!d) return;
    this.detail = d;
    const facts: [string, string][] = [
      ['Serial', d.serial],
      ['Status', `${d.status}${d.disposition ? ` (${d.disposition})` : ''}`],
      ['Work order', d.workOrderId],
      ['Model', d.model ?? '—'],
      ['Method', d.method],
      ['Hardware id', d.hardwareId ?? '—'],
      ['MAC', d.macs.join(', ') || '—'],
      ['Key origin', d.keyOrigin ?? '—'],
      ['Certificate', d.certificateSerial ? `${d.certificateSerial} (${d.certificateStatus})` : '—'],
      ['DPP URI', d.dppUri ?? '—'],
      ['Label', `${d.labelState}${d.labelReason ? `: ${d.labelReason}` : ''}`],
      ['Error', d.error ? `${d.error.code} at ${d.error.stage ?? '—'}: ${d.error.message}` : '—'],
    ];
    const preview = h('figure', { class: 'label-preview' }, h('figcaption', {}, 'Label preview'));
    replaceChildren(
      this.record,
      h('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      preview,
      h('h4', {}, 'Label prints'),
      h('ul', { class: 'prints' }, ...(d.labelPrints.length ? d.labelPrints.map((p) => h('li', {}, `${dateTime(p.at)} ${p.kind} ${p.result}${p.operator ? ` by ${p.operator}` : ''}${p.reason ? ` (${p.reason})` : ''}`)) : [h('li', {}, 'none')])),
      h('h4', {}, 'Audit trail of this device'),
      h('table', { class: 'audit' }, h('thead', {}, h('tr', {}, ...['#', 'Time', 'Event', 'Serial', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, ...d.audit.map(auditRow))),
    );
    if (d.status === 'passed') {
      const p = await this.ctx.api.labelPreview({ serial }).catch(() => null);
      if (p && this.detail?.serial === serial) {
        preview.appendChild(h('img', { src: `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(p.svg)))}`, alt: `Label of ${serial}: QR code of the DPP URI, serial, model and MAC`, class: 'label-img' }));
      }
    } else {
      preview.appendChild(h('p', {}, 'Only passed devices have a label.'));
    }
  }

  private selected(): string | null {
    if (!this.detail) {
      this.ctx.notify('Open a device record first.', 'error');
      return null;
    }
    return this.detail.serial;
  }

  private async reprint(): Promise<void> {
    const serial = this.selected();
    if (!serial) return;
    const r = await this.ctx.attempt(() => this.ctx.api.reprintLabel({ serial, reason: this.reason.value }), (o) => (o.state === 'printed' ? `Label of ${o.serial} reprinted.` : `Label of ${o.serial} not printed: ${o.reason}`));
    if (r) await this.open(serial);
  }

  private async rework(): Promise<void> {
    const serial = this.selected();
    if (!serial) return;
    const r = await this.ctx.attempt(() => this.ctx.api.reworkDevice({ serial, reason: this.reason.value }), (d) => `${d.serial} sent to rework.`);
    if (r) await this.open(serial);
  }

  private async retire(): Promise<void> {
    const serial = this.selected();
    if (!serial) return;
    const r = await this.ctx.attempt(() => this.ctx.api.retireSerial({ serial, reason: this.reason.value }), (d) => `Serial ${d.serial} retired; its certificate is void.`);
    if (r) await this.open(serial);
  }
}
