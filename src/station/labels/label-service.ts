/**
 * Labels from committed records only: the spec is built from the device's row in the database,
 * never from transient run state. Every print attempt is recorded (with the operator and reason
 * for reprints); a printer fault never fails the device, it leaves the label pending.
 */
import { PrinterError, StationError, asStationError } from '../../core/errors';
import type { ProductProfile, StationConfig } from '../../core/config';
import type { LabelRenderer, LabelSpec } from '../../core/ports/label-renderer';
import type { Printer, PrinterJobFormat } from '../../core/ports/printer';
import type { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';

export interface LabelOutcome {
  serial: string;
  state: 'printed' | 'pending';
  /** "CODE: message" when not printed. */
  reason?: string;
  errorCode?: string;
  /** The error's message alone (without the code), when not printed. */
  errorMessage?: string;
}

export type PrintKind = 'first' | 'retry' | 'reprint';

export class LabelService {
  constructor(
    private readonly config: StationConfig,
    private readonly store: SqliteRecordStore,
    private readonly renderers: ReadonlyMap<PrinterJobFormat, LabelRenderer>,
    private readonly printer: Printer,
  ) {}

  /** The format the printer takes (its job is rendered in it). */
  get printerFormat(): PrinterJobFormat {
    return this.printer.format;
  }

  /** The label spec of a passed device, from its committed record. */
  specFor(serial: string): LabelSpec {
    const record = this.store.getDevice(serial);
    if (!record) throw new StationError('label', 'DEVICE_UNKNOWN', `No device ${serial} in the database.`, { stage: 'label' });
    if (record.status !== 'passed' || !record.dppUri) {
      throw new StationError('label', 'LABEL_DEVICE_NOT_PASSED', `Device ${serial} is ${record.status}; only passed devices get a label.`, { stage: 'label' });
    }
    const wo = this.config.workOrders.find((w) => w.id === record.workOrderId);
    const product: ProductProfile | undefined = wo ? this.config.products[wo.product] : undefined;
    if (!product) {
      throw new StationError('label', 'LABEL_PRODUCT_UNKNOWN', `Device ${serial} belongs to work order ${record.workOrderId}, whose product is not in the configuration.`, { stage: 'label' });
    }
    return {
      serial: record.serial,
      model: record.model ?? product.model,
      mac: record.macs[0],
      dppUri: record.dppUri,
      date: record.updatedAt.slice(0, 10),
      template: product.label,
    };
  }

  async render(spec: LabelSpec, format: PrinterJobFormat): Promise<Buffer> {
    const renderer = this.renderers.get(format);
    if (!renderer) throw new StationError('label', 'LABEL_FORMAT_UNSUPPORTED', `No ${format} label renderer.`, { stage: 'label' });
    return renderer.render(spec);
  }

  /**
   * Render for the printer, send, and record the attempt. Never throws for printer faults.
   * `prepared` passes a spec and renderings the caller already made from the same record.
   */
  async print(
    serial: string,
    kind: PrintKind,
    who: { operator?: string; reason?: string } = {},
    prepared?: { spec: LabelSpec; rendered: ReadonlyMap<PrinterJobFormat, Buffer> },
  ): Promise<LabelOutcome> {
    const spec = prepared?.spec ?? this.specFor(serial);
    let bytes: Buffer;
    try {
      bytes = prepared?.rendered.get(this.printer.format) ?? (await this.render(spec, this.printer.format));
    } catch (err) {
      const e = asStationError(err, 'LABEL_RENDER_FAILED', 'label');
      await this.recordGrouped(serial, kind, who, 'failed', e);
      return { serial, state: 'pending', reason: `${e.code}: ${e.message}`, errorCode: e.code, errorMessage: e.message };
    }
    try {
      await this.printer.print({ serial, format: this.printer.format, bytes });
    } catch (err) {
      const e = err instanceof StationError ? err : new PrinterError('PRINTER_FAILED', `The printer ${this.printer.description} failed: ${(err as Error).message}`);
      await this.recordGrouped(serial, kind, who, 'failed', e);
      return { serial, state: 'pending', reason: `${e.code}: ${e.message}`, errorCode: e.code, errorMessage: e.message };
    }
    await this.recordGrouped(serial, kind, who, 'printed');
    return { serial, state: 'printed' };
  }

  /** Records an attempt that failed before the printer was reached (the label could not be rendered). */
  recordFailure(serial: string, kind: PrintKind, err: StationError, who: { operator?: string; reason?: string } = {}): LabelOutcome {
    this.record(serial, kind, who, 'failed', err);
    return { serial, state: 'pending', reason: `${err.code}: ${err.message}`, errorCode: err.code, errorMessage: err.message };
  }

  /** The attempt, committed with the other writes of this turn (the line's ports' commits). */
  private recordGrouped(serial: string, kind: PrintKind, who: { operator?: string; reason?: string }, result: 'printed' | 'failed', err?: StationError): Promise<void> {
    return this.store.committer.run('recording a label print', () => this.record(serial, kind, who, result, err));
  }

  private record(serial: string, kind: PrintKind, who: { operator?: string; reason?: string }, result: 'printed' | 'failed', err?: StationError): void {
    this.store.recordLabelPrint({
      serial,
      kind,
      printer: this.printer.description,
      result,
      operator: who.operator,
      reason: who.reason,
      errorCode: err?.code,
      errorMessage: err?.message,
    });
  }
}
