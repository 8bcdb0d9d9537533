/** The audit trail: newest first, the hash chain's check, paging back. */
import { h, replaceChildren } from '../dom';
import type { AppContext } from '../context';
import { auditRow } from './devices-view';

export class AuditView {
  readonly el: HTMLElement;
  private readonly chain: HTMLElement;
  private readonly rows: HTMLTableSectionElement;
  private readonly older: HTMLButtonElement;
  private lastSeq: number | null = null;

  constructor(private readonly ctx: AppContext) {
    this.chain = h('p', { id: 'audit-chain' });
    this.rows = h('tbody');
    this.older = h('button', { type: 'button', onclick: () => void this.load(true) }, 'Older events');
    this.el = h(
      'section',
      { class: 'view', 'aria-labelledby': 'audit-title' },
      h('h2', { id: 'audit-title' }, 'Audit trail'),
      this.chain,
      h('table', { class: 'audit', id: 'audit-table' }, h('caption', {}, 'Audit events, newest first'), h('thead', {}, h('tr', {}, ...['#', 'Time', 'Event', 'Serial', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))), this.rows),
      this.older,
    );
  }

  refresh(): Promise<void> {
    return this.load(false);
  }

  private async load(more: boolean): Promise<void> {
    const view = await this.ctx.attempt(() => this.ctx.api.auditEvents(more && this.lastSeq ? { beforeSeq: this.lastSeq, limit: 50 } : { limit: 50 }));
    if (!view) return;
    this.chain.textContent = view.chain.ok ? `Hash chain verified: ${view.chain.events} events, unbroken.` : `HASH CHAIN BROKEN at event ${view.chain.firstBreak?.seq}: ${view.chain.firstBreak?.reason}. Call the supervisor.`;
    this.chain.className = view.chain.ok ? 'ok' : 'bad';
    const rows = view.entries.map(auditRow);
    if (more) rows.forEach((r) => this.rows.appendChild(r));
    else replaceChildren(this.rows, ...rows);
    this.lastSeq = view.entries.length ? view.entries[view.entries.length - 1]!.seq : this.lastSeq;
    this.older.disabled = view.entries.length === 0 || this.lastSeq === 1;
  }
}
