/**
 * The operator GUI's shell: sign-in, header, screen switching, the message line, the event
 * stream and the barcode scanner. Views render what StationApi answers; nothing here talks to
 * anything but StationApi.
 */
import type { SessionInfo, StationApi, StationEvent, StationStatus } from '../../src/station/contract/station-api';
import { errorInfo } from './bridge-client';
import type { AppContext, ViewName } from './context';
import { h, replaceChildren } from './dom';
import { ScanDetector } from './scan-detector';
import { AuditView } from './views/audit-view';
import { DevicesView } from './views/devices-view';
import { LineView } from './views/line-view';
import { StatusView } from './views/status-view';
import { WorkOrderView } from './views/work-order-view';

const SCREENS: { name: ViewName; label: string }[] = [
  { name: 'line', label: 'Line' },
  { name: 'work-order', label: 'Work order' },
  { name: 'devices', label: 'Devices' },
  { name: 'audit', label: 'Audit' },
  { name: 'status', label: 'Status' },
];

export class App implements AppContext {
  private sessionInfo: SessionInfo | null = null;
  private statusValue: StationStatus | null = null;
  private readonly message: HTMLElement;
  private readonly who: HTMLElement;
  private readonly woBadge: HTMLElement;
  private readonly hsmBadge: HTMLElement;
  private readonly nav: HTMLElement;
  private readonly navButtons = new Map<ViewName, HTMLButtonElement>();
  private readonly main: HTMLElement;
  private readonly shell: HTMLElement;
  private readonly signIn: HTMLElement;
  private readonly signInMessage: HTMLElement;
  private readonly username: HTMLInputElement;
  private readonly pin: HTMLInputElement;
  private readonly line: LineView;
  private readonly workOrders: WorkOrderView;
  private readonly devices: DevicesView;
  private readonly audit: AuditView;
  private readonly statusView: StatusView;
  private readonly scanner = new ScanDetector();

  constructor(
    private readonly root: HTMLElement,
    readonly api: StationApi,
  ) {
    this.message = h('p', { class: 'message', id: 'message', role: 'status', 'aria-live': 'polite' });
    this.who = h('p', { class: 'who', id: 'who' });
    this.woBadge = h('p', { class: 'badge', id: 'wo-badge' });
    this.hsmBadge = h('p', { class: 'badge', id: 'hsm-badge' });
    this.line = new LineView(this);
    this.workOrders = new WorkOrderView(this);
    this.devices = new DevicesView(this);
    this.audit = new AuditView(this);
    this.statusView = new StatusView(this);
    this.nav = h('nav', { 'aria-label': 'Screens', class: 'screens' });
    for (const s of SCREENS) {
      const b = h('button', { type: 'button', 'data-screen': s.name, onclick: () => this.show(s.name, true) }, s.label);
      this.navButtons.set(s.name, b);
      this.nav.appendChild(b);
    }
    this.main = h('main', { id: 'main', tabindex: -1 }, this.message, this.line.el, this.workOrders.el, this.devices.el, this.audit.el, this.statusView.el);
    this.shell = h(
      'div',
      { class: 'shell' },
      h('header', { class: 'top' }, h('h1', {}, 'Provisioning station'), this.who, this.woBadge, this.hsmBadge, h('button', { type: 'button', id: 'sign-out', onclick: () => void this.signOut() }, 'Sign out')),
      this.nav,
      this.main,
    );
    this.username = h('input', { id: 'username', name: 'username', autocomplete: 'username', spellcheck: 'false', required: true });
    this.pin = h('input', { id: 'pin', name: 'pin', type: 'password', autocomplete: 'current-password', required: true });
    this.signInMessage = h('p', { class: 'message', id: 'sign-in-message', role: 'status', 'aria-live': 'polite' });
    this.signIn = h(
      'main',
      { class: 'sign-in' },
      h('h1', {}, 'Provisioning station'),
      h(
        'form',
        { 'aria-labelledby': 'sign-in-title', onsubmit: (e: Event) => (e.preventDefault(), void this.doSignIn()) },
        h('h2', { id: 'sign-in-title' }, 'Sign in'),
        h('label', { for: 'username' }, 'User name'),
        this.username,
        h('label', { for: 'pin' }, 'PIN'),
        this.pin,
        h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
      ),
      this.signInMessage,
    );
    api.onEvent((e) => this.onEvent(e));
    document.addEventListener('keydown', (e) => this.onKey(e), true);
  }

  async start(): Promise<void> {
    const who = await this.api.whoAmI({}).catch(() => null);
    if (who) await this.enter(who);
    else this.showSignIn('');
  }

  // ---- AppContext ------------------------------------------------------------------------

  session(): SessionInfo | null {
    return this.sessionInfo;
  }

  status(): StationStatus | null {
    return this.statusValue;
  }

  notify(text: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
    this.message.textContent = text;
    this.message.dataset.kind = kind;
  }

  async attempt<T>(fn: () => Promise<T>, success?: (value: T) => string): Promise<T | undefined> {
    try {
      const value = await fn();
      if (success) this.notify(success(value), 'ok');
      return value;
    } catch (err) {
      const e = errorInfo(err);
      if (e.code === 'SIGN_IN_REQUIRED') {
        this.showSignIn('Your session ended. Sign in again.');
        return undefined;
      }
      this.notify(`${e.message} (${e.code})`, 'error');
      return undefined;
    }
  }

  show(view: ViewName, focus = false): void {
    const views: Record<ViewName, HTMLElement> = { line: this.line.el, 'work-order': this.workOrders.el, devices: this.devices.el, audit: this.audit.el, status: this.statusView.el };
    for (const [name, el] of Object.entries(views) as [ViewName, HTMLElement][]) el.hidden = name !== view;
    for (const [name, b] of this.navButtons) b.setAttribute('aria-current', name === view ? 'page' : 'false');
    const refreshed =
      view === 'work-order' ? this.workOrders.refresh() : view === 'devices' ? this.devices.refresh() : view === 'audit' ? this.audit.refresh() : view === 'status' ? this.statusView.refresh() : Promise.resolve();
    // focus once the screen shows its fresh content (a refresh replaces lists)
    // ...unless the operator moved on meanwhile
    const focusedAtShow = document.activeElement;
    if (focus) void refreshed.then(() => (document.activeElement === focusedAtShow || document.activeElement === document.body ? this.focusFirst(view) : undefined));
  }

  async refreshStatus(): Promise<void> {
    const s = await this.attempt(() => this.api.status({}));
    if (!s) return;
    this.statusValue = s;
    this.line.render(s);
    this.statusView.render(s);
    this.woBadge.textContent = s.workOrder ? `Work order ${s.workOrder.id} (${s.workOrder.model}, ${s.workOrder.method})` : 'No work order';
    this.setHsmBadge(s);
  }

  // ---- sign-in ---------------------------------------------------------------------------

  private showSignIn(message: string): void {
    this.sessionInfo = null;
    replaceChildren(this.root, this.signIn);
    this.signInMessage.textContent = message;
    this.pin.value = '';
    this.username.value = '';
    this.username.focus();
  }

  private async doSignIn(): Promise<void> {
    const username = this.username.value.trim();
    const pin = this.pin.value;
    this.pin.value = '';
    try {
      const s = await this.api.signIn({ username, pin });
      await this.enter(s);
    } catch (err) {
      const e = errorInfo(err);
      this.signInMessage.textContent = `${e.message} (${e.code})`;
      this.pin.focus();
    }
  }

  private async enter(s: SessionInfo): Promise<void> {
    this.sessionInfo = s;
    this.who.textContent = `${s.displayName} (${s.role})`;
    replaceChildren(this.root, this.shell);
    this.notify(`Signed in as ${s.displayName}, ${s.role}.`, 'ok');
    await this.refreshStatus();
    this.show(this.statusValue?.workOrder ? 'line' : 'work-order', true);
  }

  private async signOut(): Promise<void> {
    await this.api.signOut({}).catch(() => undefined);
    this.showSignIn('Signed out.');
  }

  // ---- events and keys ---------------------------------------------------------------------

  private setHsmBadge(s: Pick<StationStatus, 'hsm'>): void {
    this.hsmBadge.textContent = `HSM ${{ ready: 'ready', 'pin-required': 'locked: enter PIN on Status', starting: 'starting', unavailable: 'unavailable' }[s.hsm.state]}`;
    this.hsmBadge.dataset.state = s.hsm.state;
  }

  private onEvent(e: StationEvent): void {
    switch (e.type) {
      case 'port.appeared':
      case 'tile.changed':
      case 'stage.started':
      case 'stage.finished':
        this.line.tile(e.tile);
        return;
      case 'device.passed':
      case 'device.failed':
        this.line.tile(e.tile);
        this.line.setShift(e.shift);
        return;
      case 'port.gone':
      case 'work-order.selected':
        void this.refreshStatus();
        return;
      case 'run.started':
        this.line.setRun('running');
        return;
      case 'run.finished':
        this.line.setRun('idle');
        this.notify(
          e.stopReason ? `Run ended: ${e.stopReason}` : `Run finished: ${e.counts.passed} passed, ${e.counts.failed} failed${e.counts.labelPending ? `, ${e.counts.labelPending} label(s) pending` : ''}.`,
          e.counts.failed > 0 || e.stopReason ? 'error' : 'ok',
        );
        void this.refreshStatus();
        return;
      case 'hsm.changed':
        this.statusView.setHsm(e.hsm);
        this.setHsmBadge(e);
        return;
      case 'sync.backlog-changed':
        this.statusView.setBacklog(e.backlog);
        return;
      case 'service.health-changed':
      case 'label.printed':
        return;
      case 'session.ended':
        this.showSignIn(e.reason === 'inactivity' ? 'You were signed out after a while without activity. Sign in again.' : 'Signed out.');
        return;
    }
  }

  private onKey(e: KeyboardEvent): void {
    const scanned = this.scanner.key(e.key, e.timeStamp);
    if (!scanned || !this.sessionInfo) return;
    const target = e.target as HTMLElement | null;
    // a scan into a text field is typing into it: its form handles the Enter
    if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA')) return;
    e.preventDefault();
    e.stopPropagation();
    if (this.workOrders.knows(scanned)) {
      this.show('work-order');
      this.workOrders.scanned(scanned);
    } else {
      this.show('devices');
      this.devices.scanned(scanned);
    }
  }

  private focusFirst(view: ViewName): void {
    const target =
      view === 'line' ? this.line.startButton : view === 'work-order' ? (this.workOrders.el.querySelector<HTMLElement>('.wo-button') ?? this.workOrders.input) : view === 'devices' ? this.devices.search : view === 'status' ? this.statusView.el.querySelector<HTMLElement>('h2') : this.audit.el.querySelector<HTMLElement>('h2');
    if (target && target.tagName === 'H2') target.setAttribute('tabindex', '-1');
    target?.focus();
  }
}
