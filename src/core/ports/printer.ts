/**
 * A label printer. Obligations (as for Transport): `print` resolves only when the printer has
 * taken the whole job, and rejects with a PrinterError (typed code, operator message) on any
 * fault; it never hangs past its timeout; it owns its connection and closes it on every path.
 */
export type PrinterJobFormat = 'png' | 'zpl' | 'svg';

export interface PrintJob {
  /** Used for job names and files; never secret. */
  serial: string;
  format: PrinterJobFormat;
  bytes: Buffer;
}

export interface PrinterStatus {
  ready: boolean;
  /** Faults the printer reported, as PrinterError codes (e.g. PRINTER_PAPER_OUT). */
  faults: string[];
  /** Human-readable summary for the operator. */
  detail: string;
}

export interface Printer {
  /** e.g. "tcp9100 10.0.0.5:9100", "cups zebra1", "file labels/printed". */
  readonly description: string;
  /** The job format this printer takes. */
  readonly format: PrinterJobFormat;
  print(job: PrintJob): Promise<void>;
  /** What the printer says of itself; printers without a status channel report ready. */
  status(): Promise<PrinterStatus>;
}
