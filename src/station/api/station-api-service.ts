/**
 * StationApiService: the StationApi over one createStation(config, deps), shared by both hosts
 * (the HTTP + WebSocket bridge and Electron's main process). It owns the line's state (tiles,
 * shift), the run in progress, the long-lived IDevID CA (PKCS#11 worker), the simulator of a
 * simulated line, and the signed-in session of each connection.
 *
 * Every call is validated (contract/commands.ts) and checked against the session's role before
 * anything runs; every supervisor action and every refusal of one is an audit event.
 */
import { join } from 'node:path';
import type { StationConfig, WorkOrder } from '../../core/config';
import { formatSerial } from '../../core/config';
import { StationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { toPem } from '../../hsm/ca/x509-builder';
import type { IdevidCa } from '../../hsm/ca/idevid-ca';
import { createPrinter } from '../../label-printer/printers/create-printer';
import { SvgLabelRenderer } from '../../label-printer/renderers/svg-label-renderer';
import type { Printer } from '../../core/ports/printer';
import { AuditChain, verifyAuditChain } from '../../manufacturer-db/audit-chain';
import { DeviceDispositions } from '../../manufacturer-db/device-dispositions';
import { DeviceRecorder } from '../../manufacturer-db/records/device-recorder';
import { RecordSigner } from '../../manufacturer-db/records/record-signer';
import { HsmIdentitySigner } from '../../hsm/identity/hsm-identity-signer';
import { loadStationIdentityCertificate } from '../../hsm/identity/station-pki';
import { createSyncTargets } from '../sync/station-sync';
import * as queries from '../../manufacturer-db/device-queries';
import { inTransaction, openDatabase, type SqliteDb } from '../../manufacturer-db/sqlite-database';
import { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import { SqliteUserStore, type StationUser, type UserStoreOptions } from '../../manufacturer-db/user-store';
import { COMMAND_ROLES, parseCommandArgs, type CommandArgs, type CommandName } from '../contract/commands';
import type {
  ApiErrorInfo,
  AuditEntry,
  CommandResults,
  DeviceDetail,
  DeviceSummary,
  HsmStatus,
  JsonValue,
  PortTile,
  SessionInfo,
  StationEvent,
  StationStatus,
  WorkOrderSummary,
} from '../contract/station-api';
import { LabelService } from '../labels/label-service';
import type { DeviceReport } from '../run/report';
import type { StageEvent } from '../run/stages';
import { startSimulator, type SimulatorProcess } from '../simulate/simulator-process';
import { databasePath, type Station } from '../station';
import { HsmPinHandover } from './hsm-pin-handover';
import { LineState } from './line-state';
import { notWiredSyncStatus, type SyncStatusSource } from './sync-status-source';

export interface StationApiServiceOptions {
  station: Station;
  log: Logger;
  /** Where each run's report, certificates and labels go (OUT/runs/<time>/). */
  outDir: string;
  /** A simulated line: this many simulated devices on PTYs (the simulator is started here). */
  simulate?: { ports: number; faults?: string };
  /** Real ports (default: the configuration's `ports`). */
  ports?: string[];
  /** A session ends after this long without an operator command (default 15 minutes). */
  idleTimeoutMs?: number;
  users?: UserStoreOptions;
  sync?: SyncStatusSource;
  /**
   * Hot-plug (docs/discovery.md): with no simulated line and no fixed ports, the line is the
   * ports discovery sees; each one that appears or goes away is announced (`port.appeared` /
   * `port.gone`) and taken by the next run.
   */
  discovery?: PortHotPlug;
  now?: () => Date;
}

/** What the GUI needs of port discovery: port names (serial paths, `hid:PATH`) as they come and go. */
export interface PortHotPlug {
  watch(onChange: (change: { type: 'added' | 'removed'; port: string }) => void): { ready: Promise<void>; stop(): Promise<void> };
}

export type CallReply = { ok: true; value: unknown } | { ok: false; error: ApiErrorInfo };

export interface ApiClient {
  /** For the audit trail: "bridge 127.0.0.1", "electron window 1". */
  label: string;
  send(event: StationEvent): void;
}

export interface ApiConnection {
  /** Validates, authorises and runs one command; never rejects. */
  call(command: string, args: unknown): Promise<CallReply>;
  close(): void;
}

/** A refusal with an operator-facing message. */
export class ApiRefusal extends StationError {
  constructor(code: string, message: string) {
    super('usage', code, message);
  }
}

/** Reads that do not count as operator activity (screens refresh them on their own). */
const PASSIVE_COMMANDS: ReadonlySet<CommandName> = new Set(['whoAmI', 'status', 'printerStatus', 'syncStatus']);

interface Session {
  user: StationUser;
  lastActivity: number;
}

interface Connection {
  client: ApiClient;
  session: Session | null;
}

interface ActiveRun {
  controller: AbortController;
  runId: string | null;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 15 * 60_000;

export class StationApiService {
  private readonly config: StationConfig;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly idleTimeoutMs: number;
  private readonly connections = new Set<Connection>();
  private readonly line: LineState;
  private readonly db: SqliteDb;
  private readonly records: SqliteRecordStore;
  private readonly users: SqliteUserStore;
  private readonly dispositions: DeviceDispositions;
  private readonly audit: AuditChain;
  private readonly printer: Printer;
  private readonly labels: LabelService;
  private readonly sync: SyncStatusSource;
  private readonly unsubscribeSync: () => void;
  private readonly idleTimer: NodeJS.Timeout;
  private ca: IdevidCa | undefined;
  private hsm: HsmStatus = { state: 'starting', detail: 'Opening the HSM.' };
  private hsmPinFromGui = false;
  private workOrderId: string | null = null;
  private simulator: SimulatorProcess | undefined;
  private simulatorFaults: string | null = null;
  private simulatorMethod: string | null = null;
  private run: ActiveRun | null = null;
  /** Passed devices whose label is still in the run's label queue, by serial (their report's label is filled in when it ends). */
  private readonly labelsQueued = new Map<string, DeviceReport>();
  private runDone: Promise<void> = Promise.resolve();
  private stopped = false;
  private hotPlug: { stop(): Promise<void> } | undefined;

  private constructor(private readonly opts: StationApiServiceOptions) {
    this.config = opts.station.config;
    this.log = opts.log.child({ component: 'station-api' });
    this.now = opts.now ?? (() => new Date());
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.line = new LineState(this.now(), this.now);
    this.db = openDatabase(databasePath(opts.station.dataDir));
    this.records = new SqliteRecordStore(this.db, this.config.stationId);
    this.users = new SqliteUserStore(this.db, this.config.stationId, opts.users);
    this.dispositions = new DeviceDispositions(this.db, this.config.stationId);
    this.audit = new AuditChain(this.db, this.config.stationId);
    this.printer = createPrinter(this.config.printer, { baseDir: opts.outDir });
    this.labels = new LabelService(this.config, this.records, new Map([['svg', new SvgLabelRenderer()]]), this.printer);
    this.sync = opts.sync ?? notWiredSyncStatus;
    this.unsubscribeSync = this.sync.subscribe((change) =>
      this.broadcast(change.kind === 'backlog' ? { type: 'sync.backlog-changed', backlog: change.backlog } : { type: 'service.health-changed', service: change.service }),
    );
    this.idleTimer = setInterval(() => this.endIdleSessions(), 1000);
    this.idleTimer.unref();
  }

  /** Opens the database, the HSM (when its PIN source answers) and the simulated line. */
  static async start(opts: StationApiServiceOptions): Promise<StationApiService> {
    const service = new StationApiService(opts);
    try {
      await service.openHsm();
      await service.setUpLine();
    } catch (err) {
      await service.stop();
      throw err;
    }
    return service;
  }

  /** The ports of the line (simulated or real). */
  get ports(): string[] {
    return this.line.ports();
  }

  connect(client: ApiClient): ApiConnection {
    const conn: Connection = { client, session: null };
    this.connections.add(conn);
    return {
      call: (command, args) => this.call(conn, command, args),
      close: () => {
        this.connections.delete(conn);
      },
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.idleTimer);
    this.unsubscribeSync();
    this.run?.controller.abort();
    await this.runDone;
    await this.hotPlug?.stop();
    await this.simulator?.stop();
    await this.ca?.close().catch(() => undefined);
    this.connections.clear();
    this.db.close();
  }

  // ---- dispatch -------------------------------------------------------------------------

  private async call(conn: Connection, command: string, args: unknown): Promise<CallReply> {
    const parsed = parseCommandArgs(command, args);
    if (!parsed.ok) return { ok: false, error: { code: parsed.code, message: parsed.message } };
    const name = parsed.command;
    try {
      const role = COMMAND_ROLES[name];
      if (conn.session && this.now().getTime() - conn.session.lastActivity > this.idleTimeoutMs) this.endSession(conn, 'inactivity');
      if (role !== 'none') {
        if (!conn.session) throw new ApiRefusal('SIGN_IN_REQUIRED', 'Sign in first.');
        if (role === 'supervisor' && conn.session.user.role !== 'supervisor') this.refuse(conn.session.user, name);
      }
      if (conn.session && !PASSIVE_COMMANDS.has(name)) conn.session.lastActivity = this.now().getTime();
      const value = await this.dispatch(conn, name, parsed.args);
      return { ok: true, value };
    } catch (err) {
      if (err instanceof StationError) return { ok: false, error: { code: err.code, message: err.message } };
      this.log.error({ command: name, reason: (err as Error)?.message }, 'command failed unexpectedly');
      return { ok: false, error: { code: 'INTERNAL_ERROR', message: 'The station hit an unexpected error; the station log has the detail.' } };
    }
  }

  private dispatch(conn: Connection, name: CommandName, args: CommandArgs[CommandName]): Promise<unknown> | unknown {
    const user = () => conn.session!.user;
    switch (name) {
      case 'signIn':
        return this.signIn(conn, args as CommandArgs['signIn']);
      case 'signOut':
        if (conn.session) this.endSession(conn, 'signed-out');
        return { signedOut: true } satisfies CommandResults['signOut'];
      case 'whoAmI':
        return conn.session ? this.sessionInfo(conn.session.user) : null;
      case 'status':
        return this.status();
      case 'listWorkOrders':
        return this.config.workOrders.map((w) => this.workOrderSummary(w));
      case 'selectWorkOrder':
        return this.selectWorkOrder(user(), (args as CommandArgs['selectWorkOrder']).workOrderId);
      case 'startRun':
        return this.startRun(user(), args as CommandArgs['startRun']);
      case 'stopRun':
        return this.stopRun(user());
      case 'retryDevice':
        return this.retryDevice(user(), (args as CommandArgs['retryDevice']).port);
      case 'setSimulatorFaults':
        return this.setSimulatorFaults(user(), (args as CommandArgs['setSimulatorFaults']).spec);
      case 'listDevices': {
        const a = args as CommandArgs['listDevices'];
        return queries.listDevices(this.db, a.query, a.limit ?? 50) satisfies DeviceSummary[];
      }
      case 'getDevice':
        return this.deviceDetail((args as CommandArgs['getDevice']).serial);
      case 'reworkDevice': {
        const a = args as CommandArgs['reworkDevice'];
        this.dispositions.rework(a.serial, user().username, a.reason);
        return this.deviceSummary(a.serial);
      }
      case 'retireSerial': {
        const a = args as CommandArgs['retireSerial'];
        return this.retire(user(), a.serial, a.reason);
      }
      case 'reprintLabel':
        return this.reprint(user(), args as CommandArgs['reprintLabel']);
      case 'labelPreview':
        return this.labelPreview((args as CommandArgs['labelPreview']).serial);
      case 'printerStatus':
        return this.printerStatus();
      case 'auditEvents':
        return this.auditView(args as CommandArgs['auditEvents']);
      case 'syncStatus':
        return this.sync.overview();
      case 'enterHsmPin':
        return this.enterHsmPin(user(), (args as CommandArgs['enterHsmPin']).pin);
    }
  }

  // ---- sessions -------------------------------------------------------------------------

  private sessionInfo(u: StationUser): SessionInfo {
    return { username: u.username, displayName: u.displayName, role: u.role, idleTimeoutS: Math.round(this.idleTimeoutMs / 1000) };
  }

  private async signIn(conn: Connection, args: CommandArgs['signIn']): Promise<SessionInfo> {
    if (conn.session) this.endSession(conn, 'signed-out');
    if (this.users.listUsers().length === 0) {
      throw new ApiRefusal('NO_USERS', 'This station has no users yet. A supervisor adds them with "station user add".');
    }
    const check = await this.users.checkSignIn(args.username, args.pin, conn.client.label);
    if (!check.ok) {
      if (check.code === 'USER_LOCKED') {
        throw new ApiRefusal('USER_LOCKED', `This account is locked until ${check.lockedUntil.slice(11, 16)} UTC after too many wrong PINs. A supervisor can unlock it ("station user unlock").`);
      }
      throw new ApiRefusal(
        'SIGN_IN_FAILED',
        `Wrong user name or PIN.${check.attemptsLeft !== null ? ` ${check.attemptsLeft} attempt${check.attemptsLeft === 1 ? '' : 's'} left before the account locks.` : ''}`,
      );
    }
    conn.session = { user: check.user, lastActivity: this.now().getTime() };
    return this.sessionInfo(check.user);
  }

  private endSession(conn: Connection, reason: 'signed-out' | 'inactivity'): void {
    const s = conn.session;
    if (!s) return;
    conn.session = null;
    this.appendAudit(reason === 'inactivity' ? 'user.session-expired' : 'user.signed-out', null, { username: s.user.username, client: conn.client.label });
    conn.client.send({ type: 'session.ended', reason });
  }

  private endIdleSessions(): void {
    const now = this.now().getTime();
    for (const c of this.connections) if (c.session && now - c.session.lastActivity > this.idleTimeoutMs) this.endSession(c, 'inactivity');
  }

  private refuse(u: StationUser, command: CommandName): never {
    this.appendAudit('access.denied', null, { username: u.username, role: u.role, command });
    const what: Partial<Record<CommandName, string>> = {
      reprintLabel: 'reprint a label',
      reworkDevice: 'send a device to rework',
      retireSerial: 'retire a serial',
      selectWorkOrder: 'change the work order',
    };
    throw new ApiRefusal('SUPERVISOR_REQUIRED', `Only a supervisor can ${what[command] ?? command}. Ask a supervisor to sign in.`);
  }

  private appendAudit(type: string, serial: string | null, data: Record<string, unknown>): void {
    inTransaction(this.db, 'recording an audit event', () => this.audit.append({ type, serial, data }));
  }

  private broadcast(event: StationEvent): void {
    for (const c of this.connections) {
      if (!c.session) continue;
      try {
        c.client.send(event);
      } catch (err) {
        this.log.warn({ reason: (err as Error).message }, 'could not send an event to a client');
      }
    }
  }

  // ---- HSM ------------------------------------------------------------------------------

  private setHsm(state: HsmStatus): void {
    this.hsm = state;
    this.broadcast({ type: 'hsm.changed', hsm: state });
  }

  private async openHsm(): Promise<void> {
    try {
      this.ca = await this.opts.station.openCa({ log: this.log });
      this.hsm = { state: 'ready', detail: `HSM token "${this.config.hsm.tokenLabel}" ready (PIN from the configured source).` };
    } catch (err) {
      const e = err instanceof StationError ? err : undefined;
      this.hsm =
        e?.code === 'HSM_PIN_MISSING'
          ? { state: 'pin-required', detail: 'The HSM is locked: enter its PIN to start provisioning.' }
          : { state: 'unavailable', detail: `${e?.code ?? 'HSM_ERROR'}: ${e?.message ?? (err as Error).message}` };
      this.log.warn({ code: e?.code ?? 'HSM_ERROR' }, 'HSM not opened at start');
    }
  }

  private async enterHsmPin(u: StationUser, pin: string): Promise<HsmStatus> {
    if (this.hsm.state === 'ready') throw new ApiRefusal('HSM_READY', 'The HSM is already unlocked.');
    if (this.run) throw new ApiRefusal('RUN_ACTIVE', 'Wait for the run to end before entering the HSM PIN.');
    const handover = new HsmPinHandover(pin);
    try {
      await this.ca?.close().catch(() => undefined);
      this.ca = undefined;
      this.ca = await this.opts.station.openCa({ pin: handover.provider, log: this.log });
    } catch (err) {
      const e = err instanceof StationError ? err : undefined;
      this.appendAudit('hsm.unlock-failed', null, { by: u.username, code: e?.code ?? 'HSM_ERROR' });
      if (e?.code === 'HSM_LOGIN_FAILED') throw new ApiRefusal('HSM_LOGIN_FAILED', 'The HSM refused this PIN. Check it and enter it again.');
      throw err;
    } finally {
      handover.forget();
    }
    this.hsmPinFromGui = true;
    this.appendAudit('hsm.unlocked', null, { by: u.username, source: 'operator' });
    this.setHsm({ state: 'ready', detail: `HSM token "${this.config.hsm.tokenLabel}" ready (PIN entered by ${u.username}).` });
    return this.hsm;
  }

  // ---- work orders and the line -----------------------------------------------------------

  private workOrderSummary(w: WorkOrder): WorkOrderSummary {
    const product = this.config.products[w.product];
    const progress = queries.workOrderProgress(this.db, w.id);
    const next = progress ? progress.nextSerial : null;
    return {
      id: w.id,
      product: w.product,
      model: product?.model ?? w.product,
      method: w.method,
      serialFirst: formatSerial(w.serial, w.serial.first),
      serialLast: formatSerial(w.serial, w.serial.last),
      nextSerial: next !== null && next <= w.serial.last ? formatSerial(w.serial, next) : null,
      remaining: next === null ? w.serial.last - w.serial.first + 1 : Math.max(0, w.serial.last - next + 1),
      owner: w.owner ?? null,
    };
  }

  private currentWorkOrder(): WorkOrder | undefined {
    return this.workOrderId ? this.config.workOrders.find((w) => w.id === this.workOrderId) : undefined;
  }

  private status(): StationStatus {
    const wo = this.currentWorkOrder();
    return {
      stationId: this.config.stationId,
      simulated: this.opts.simulate !== undefined,
      simulatorFaults: this.opts.simulate ? this.simulatorFaults : null,
      workOrder: wo ? this.workOrderSummary(wo) : null,
      run: { state: this.run ? (this.run.controller.signal.aborted ? 'stopping' : 'running') : 'idle', runId: this.run?.runId ?? null },
      hsm: this.hsm,
      tiles: this.line.allTiles(),
      shift: this.line.shift(),
    };
  }

  private async setUpLine(): Promise<void> {
    if (this.opts.simulate) {
      const wo = this.config.workOrders.find((w) => w.id === this.config.defaultWorkOrder) ?? this.config.workOrders[0]!;
      await this.startSimulatedLine(wo, this.opts.simulate.faults ?? null);
    } else if (this.opts.ports && this.opts.ports.length > 0) {
      this.announcePorts(this.opts.ports);
    } else if (this.config.ports.length === 0 && this.opts.discovery) {
      const watch = this.opts.discovery.watch((change) => {
        const now = this.line.ports();
        if (change.type === 'added' && !now.includes(change.port)) this.announcePorts([...now, change.port]);
        if (change.type === 'removed' && now.includes(change.port)) this.announcePorts(now.filter((p) => p !== change.port));
        this.log.info({ port: change.port, change: change.type }, 'port discovery');
      });
      this.hotPlug = watch;
      await watch.ready;
    } else {
      this.announcePorts(this.config.ports);
    }
  }

  private announcePorts(ports: readonly string[]): void {
    const before = new Set(this.line.ports());
    for (const p of before) if (!ports.includes(p)) this.broadcast({ type: 'port.gone', port: p });
    for (const tile of this.line.setPorts(ports)) if (!before.has(tile.port)) this.broadcast({ type: 'port.appeared', port: tile.port, tile });
  }

  private async startSimulatedLine(wo: WorkOrder, faults: string | null): Promise<void> {
    const product = this.config.products[wo.product]!;
    await this.simulator?.stop();
    this.simulator = undefined;
    this.simulator = await startSimulator({
      ports: this.opts.simulate!.ports,
      dir: join(this.opts.station.dataDir, 'sim'),
      method: wo.method,
      model: product.model,
      ...(faults ? { faults } : {}),
    });
    this.simulatorFaults = faults;
    this.simulatorMethod = `${wo.method}/${product.model}`;
    this.announcePorts(this.simulator.ports);
  }

  private async selectWorkOrder(u: StationUser, id: string): Promise<StationStatus> {
    const wo = this.config.workOrders.find((w) => w.id === id);
    if (!wo) throw new ApiRefusal('WORK_ORDER_UNKNOWN', `There is no work order ${id}. Scan or pick one from the list.`);
    if (this.workOrderId === id) return this.status();
    if (this.run) throw new ApiRefusal('RUN_ACTIVE', 'Stop the run before changing the work order.');
    const previous = this.workOrderId;
    if (previous !== null && u.role !== 'supervisor') this.refuse(u, 'selectWorkOrder');
    if (!this.config.products[wo.product]) throw new ApiRefusal('PRODUCT_UNKNOWN', `Work order ${id} names product ${wo.product}, which is not configured.`);
    this.records.ensureWorkOrder(wo);
    const product = this.config.products[wo.product]!;
    if (this.opts.simulate && this.simulatorMethod !== `${wo.method}/${product.model}`) await this.startSimulatedLine(wo, this.simulatorFaults);
    this.workOrderId = id;
    this.appendAudit(previous === null ? 'work-order.selected' : 'work-order.changed', null, { workOrder: id, previous, by: u.username, role: u.role });
    this.broadcast({ type: 'work-order.selected', workOrder: this.workOrderSummary(wo) });
    return this.status();
  }

  private async setSimulatorFaults(u: StationUser, spec: string): Promise<StationStatus> {
    if (!this.opts.simulate) throw new ApiRefusal('NOT_SIMULATED', 'This line has real devices; faults exist only on a simulated line.');
    if (this.run) throw new ApiRefusal('RUN_ACTIVE', 'Stop the run before changing the simulator.');
    const wo = this.currentWorkOrder() ?? this.config.workOrders.find((w) => w.id === this.config.defaultWorkOrder)!;
    const wanted = spec.trim() === '' ? null : spec.trim();
    const previous = this.simulatorFaults;
    try {
      await this.startSimulatedLine(wo, wanted);
    } catch (err) {
      await this.startSimulatedLine(wo, previous);
      throw err;
    }
    this.log.info({ by: u.username, faults: wanted }, 'simulator faults set');
    return this.status();
  }

  // ---- runs -----------------------------------------------------------------------------

  private readyToRun(): WorkOrder {
    const wo = this.currentWorkOrder();
    if (!wo) throw new ApiRefusal('WORK_ORDER_NOT_SELECTED', 'Pick a work order first (Work order screen, or scan its label).');
    if (this.run) throw new ApiRefusal('RUN_ACTIVE', 'A run is in progress. Wait for it to end or stop it.');
    if (this.hsm.state !== 'ready' || !this.ca) {
      throw new ApiRefusal('HSM_NOT_READY', this.hsm.state === 'pin-required' ? 'The HSM is locked: enter its PIN on the Status screen.' : `The HSM is not ready: ${this.hsm.detail}`);
    }
    return wo;
  }

  private startRun(u: StationUser, args: CommandArgs['startRun']): Promise<CommandResults['startRun']> {
    const wo = this.readyToRun();
    const ports = args.ports ?? this.line.ports();
    const unknown = ports.filter((p) => !this.line.ports().includes(p));
    if (unknown.length > 0) throw new ApiRefusal('PORT_UNKNOWN', `Not a port of this line: ${unknown.join(', ')}.`);
    if (ports.length === 0) throw new ApiRefusal('NO_PORTS', 'This line has no ports. Start the station with --simulate N or configure "ports".');
    return this.launch(u, wo, ports, args.count ?? ports.length);
  }

  private retryDevice(u: StationUser, port: string): Promise<CommandResults['retryDevice']> {
    const tile = this.line.tile(port);
    if (!tile) throw new ApiRefusal('PORT_UNKNOWN', `Not a port of this line: ${port}.`);
    if (tile.state !== 'failed') throw new ApiRefusal('NOTHING_TO_RETRY', `${tile.name} has no failed device to retry.`);
    const wo = this.readyToRun();
    this.appendAudit('device.retry', tile.serial, { port, by: u.username, previousCode: tile.failure?.code ?? null });
    return this.launch(u, wo, [port], 1).then(() => ({ port }));
  }

  private stopRun(u: StationUser): CommandResults['stopRun'] {
    if (!this.run) return { stopping: false };
    this.log.info({ by: u.username }, 'run stop requested');
    this.run.controller.abort();
    return { stopping: true };
  }

  private launch(u: StationUser, wo: WorkOrder, ports: string[], count: number): Promise<CommandResults['startRun']> {
    const run: ActiveRun = { controller: new AbortController(), runId: null };
    this.run = run;
    for (const p of ports) this.broadcastTile(this.line.waiting(p));
    const outDir = join(this.opts.outDir, 'runs', this.now().toISOString().replace(/[:.]/g, '-'));
    return new Promise((resolveStarted, rejectStarted) => {
      let started = false;
      this.runDone = this.opts.station
        .runBatch({
          workOrderId: wo.id,
          ports,
          count,
          outDir,
          signal: run.controller.signal,
          ca: this.ca,
          printer: this.config.printer,
          onStart: ({ runId, total }) => {
            started = true;
            run.runId = runId;
            this.log.info({ runId, by: u.username, ports, total }, 'run started from the GUI');
            this.broadcast({ type: 'run.started', runId, ports, total });
            resolveStarted({ runId, ports });
          },
          onEvent: (e) => this.onStage(e),
          onDevice: (r) => this.onDevice(r),
        })
        .then(
          (report) => this.runFinished(run, report.counts, null),
          (err: unknown) => {
            const e = err instanceof StationError ? err : undefined;
            const reason = e ? `${e.code}: ${e.message}` : String((err as Error)?.message ?? err);
            if (e?.family === 'hsm' && this.ca) {
              // the line stopped on the HSM: a GUI PIN is gone with the worker
              const ca = this.ca;
              this.ca = undefined;
              void ca.close().catch(() => undefined);
              this.setHsm(this.hsmPinFromGui ? { state: 'pin-required', detail: `${reason} Enter the HSM PIN again.` } : { state: 'unavailable', detail: reason });
            }
            if (!started) rejectStarted(err);
            this.runFinished(run, null, e?.code === 'RUN_INTERRUPTED' ? 'stopped by the operator' : reason);
          },
        );
    });
  }

  private runFinished(run: ActiveRun, counts: { total: number; passed: number; failed: number; labelPending: number } | null, stopReason: string | null): void {
    if (this.run === run) this.run = null;
    this.labelsQueued.clear(); // the run drained its label queue before it ended
    // ports that never took a device in this run go back to idle
    for (const t of this.line.allTiles()) if (t.state === 'running') this.broadcastTile(this.line.idle(t.port));
    this.broadcast({ type: 'run.finished', runId: run.runId, counts: counts ?? { total: 0, passed: 0, failed: 0, labelPending: 0 }, stopReason });
  }

  private broadcastTile(tile: PortTile): void {
    this.broadcast({ type: 'tile.changed', port: tile.port, tile });
  }

  private onStage(e: StageEvent & { port: string; serial: string | null }): void {
    // The label prints from the run's label queue after the device's PASS, often while its port
    // runs the next device: its stage events are not the tile's progress.
    if (e.stage === 'label') {
      if (e.status !== 'started' && e.serial) this.onLabelEnded(e.serial);
      return;
    }
    const tile = this.line.stage(e);
    if (e.status === 'started') this.broadcast({ type: 'stage.started', port: e.port, serial: e.serial, stage: e.stage, tile });
    else this.broadcast({ type: 'stage.finished', port: e.port, serial: e.serial, stage: e.stage, status: e.status, durationMs: e.durationMs ?? 0, tile });
  }

  private onDevice(r: DeviceReport): void {
    const tile = this.line.device(r);
    const shift = this.line.shift();
    if (r.status === 'passed' && r.serial) {
      this.broadcast({ type: 'device.passed', port: r.port, serial: r.serial, tile, shift });
      // the label job adds its stage to the report when it ends; until then its outcome is not known
      if (r.stages.some((s) => s.name === 'label')) this.broadcastLabel(r.serial, r.label);
      else this.labelsQueued.set(r.serial, r);
    } else {
      this.broadcast({ type: 'device.failed', port: r.port, serial: r.serial, failure: tile.failure!, tile, shift });
    }
  }

  /** A queued label ended: the label event, and the tile when it still shows that device. */
  private onLabelEnded(serial: string): void {
    const r = this.labelsQueued.get(serial);
    if (!r) return; // ended before the device's report came: onDevice tells it
    this.labelsQueued.delete(serial);
    const tile = this.line.label(r.port, serial, r.label.state === 'printed' ? 'printed' : 'pending');
    if (tile) this.broadcastTile(tile);
    this.broadcastLabel(serial, r.label);
  }

  private broadcastLabel(serial: string, label: DeviceReport['label']): void {
    this.broadcast({ type: 'label.printed', serial, state: label.state === 'printed' ? 'printed' : 'pending', kind: 'first', reason: label.state === 'printed' ? null : (label.reason ?? null) });
  }

  // ---- devices, labels, audit -------------------------------------------------------------

  private deviceSummary(serial: string): DeviceSummary {
    const d = this.records.getDevice(serial);
    if (!d) throw new ApiRefusal('DEVICE_UNKNOWN', `No device ${serial} in the station database.`);
    return {
      serial: d.serial,
      status: d.status,
      workOrderId: d.workOrderId,
      model: d.model,
      hardwareId: d.hardwareId,
      port: d.port,
      labelState: d.labelState,
      errorCode: d.error?.code ?? null,
      disposition: d.disposition,
      updatedAt: d.updatedAt,
    };
  }

  private deviceDetail(serial: string): DeviceDetail {
    const summary = this.deviceSummary(serial);
    const d = this.records.getDevice(serial)!;
    return {
      ...summary,
      runId: d.runId,
      method: d.method,
      macs: d.macs,
      firmwareVersion: d.firmwareVersion,
      keyOrigin: d.keyOrigin,
      dppUri: d.dppUri,
      certificateSerial: d.certificateSerial,
      certificateStatus: d.certificateStatus,
      certificatePem: d.certificateDer ? toPem(d.certificateDer) : null,
      error: d.error,
      labelReason: d.labelReason,
      stages: queries.deviceStages(this.db, serial),
      labelPrints: queries.labelPrints(this.db, serial),
      audit: queries.auditEvents(this.db, { serial, limit: 100 }).map(auditEntry),
    };
  }

  /** An active certificate is voided the way `station device retire` does (signed void record queued), then the serial is scrapped. */
  private async retire(u: StationUser, serial: string, reason: string): Promise<DeviceSummary> {
    const d = this.records.getDevice(serial);
    if (!d) throw new ApiRefusal('DEVICE_UNKNOWN', `No device ${serial} in the station database.`);
    if (d.status !== 'passed' && d.status !== 'failed') throw new ApiRefusal('DEVICE_IN_PROGRESS', `Device ${serial} is ${d.status}: it is being provisioned. Stop its run first.`);
    if (d.certificateStatus === 'active') await (await this.deviceRecorder()).retire(serial, reason, u.username);
    this.dispositions.scrap(serial, u.username, reason);
    return this.deviceSummary(serial);
  }

  /** Records + sync as the run has them: the station identity (in the open CA's worker) signs; targets from the configuration. */
  private async deviceRecorder(): Promise<DeviceRecorder> {
    const targets = createSyncTargets(this.config, this.opts.station.dataDir);
    for (const t of targets) t.close();
    let signer: RecordSigner | null = null;
    if (this.ca) {
      try {
        const identity = await HsmIdentitySigner.open(this.ca.signer);
        signer = new RecordSigner(identity, loadStationIdentityCertificate(this.opts.station.dataDir, identity.publicKeySpki, this.config.stationId));
      } catch (err) {
        if (targets.length > 0) throw err;
      }
    } else if (targets.length > 0) {
      throw new ApiRefusal('HSM_NOT_READY', 'Retiring needs the HSM (the void record is signed): enter its PIN on the Status screen.');
    }
    return new DeviceRecorder(this.records, signer, targets.map((t) => t.name));
  }

  private async reprint(u: StationUser, args: CommandArgs['reprintLabel']): Promise<CommandResults['reprintLabel']> {
    const o = await this.opts.station.reprintLabel({ outDir: this.opts.outDir, operator: u.username }, args.serial, args.reason);
    this.broadcast({ type: 'label.printed', serial: o.serial, state: o.state, kind: 'reprint', reason: o.reason ?? null });
    return { serial: o.serial, state: o.state, reason: o.reason ?? null };
  }

  private async labelPreview(serial: string): Promise<CommandResults['labelPreview']> {
    const spec = this.labels.specFor(serial);
    const svg = (await this.labels.render(spec, 'svg')).toString('utf8');
    return { serial, svg };
  }

  private async printerStatus(): Promise<CommandResults['printerStatus']> {
    const checkedAt = this.now().toISOString();
    try {
      const s = await this.printer.status();
      return { description: this.printer.description, ready: s.ready, faults: s.faults, detail: s.detail, checkedAt };
    } catch (err) {
      const e = err instanceof StationError ? err : undefined;
      return { description: this.printer.description, ready: false, faults: [e?.code ?? 'PRINTER_FAILED'], detail: e?.message ?? (err as Error).message, checkedAt };
    }
  }

  private auditView(args: CommandArgs['auditEvents']): CommandResults['auditEvents'] {
    const entries = queries.auditEvents(this.db, { serial: args.serial, beforeSeq: args.beforeSeq, limit: args.limit ?? 100 }).map(auditEntry);
    const chain = verifyAuditChain(this.db);
    return { entries, chain: { ok: chain.ok, events: chain.events, firstBreak: chain.firstBreak ?? null } };
  }
}

function auditEntry(r: queries.AuditEventRow): AuditEntry {
  let data: { [key: string]: JsonValue };
  try {
    data = JSON.parse(r.data) as { [key: string]: JsonValue };
  } catch {
    data = { unreadable: r.data };
  }
  return { seq: r.seq, at: r.at, type: r.type, serial: r.serial, data };
}
