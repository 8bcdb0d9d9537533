/**
 * A virtual Zebra on raw TCP (loopback by default): records every job it is sent, answers the
 * `~HS` host status query, and can misbehave on purpose so the station's printer faults can be
 * tested against a real socket.
 *
 * - A connection's bytes are recorded as `job-<n>.zpl` (n = 1, 2, ... in the order jobs complete)
 *   only when the client ended its side; then the sink closes its side in turn, as a printer does.
 *   The file is written before that close, atomically (temporary file + rename).
 * - A connection that carries nothing but `~HS` (and white space) is a status query, not a job.
 *
 * Modes:
 *   ok             as above
 *   slow           accepts, reads nothing, answers nothing, never closes
 *   close-mid-job  on the first job bytes: stops reading and ends its side (FIN)
 *   reset-mid-job  on the first job bytes: resets the connection (RST)
 *   paper-out, head-open, paused   as ok, but `~HS` reports that fault
 *
 * The host status strings are built here, independently of the station's parser
 * (the simulator may not import label-printer), following the ZPL II guide's `~HS` layout.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export const PRINTER_SINK_MODES = ['ok', 'slow', 'close-mid-job', 'reset-mid-job', 'paper-out', 'head-open', 'paused'] as const;
export type PrinterSinkMode = (typeof PRINTER_SINK_MODES)[number];

export interface HostStatusFlags {
  paperOut: boolean;
  paused: boolean;
  headUp: boolean;
  ribbonOut: boolean;
  bufferFull: boolean;
  underTemperature: boolean;
  overTemperature: boolean;
}

export interface PrinterSinkOptions {
  jobsDir: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  mode?: PrinterSinkMode;
  /** Extra host status flags on top of the mode's. */
  flags?: Partial<HostStatusFlags>;
}

const NO_FLAGS: HostStatusFlags = {
  paperOut: false,
  paused: false,
  headUp: false,
  ribbonOut: false,
  bufferFull: false,
  underTemperature: false,
  overTemperature: false,
};

/** How long a connection the sink has given up on (close-mid-job) may linger. */
const LINGER_MS = 2000;

export function isPrinterSinkMode(s: string): s is PrinterSinkMode {
  return (PRINTER_SINK_MODES as readonly string[]).includes(s);
}

/** The three `~HS` strings, `<STX>...<ETX><CR><LF>` each. */
export function hostStatusAnswer(flags: HostStatusFlags, formatsInBuffer = 0): Buffer {
  const b = (v: boolean): string => (v ? '1' : '0');
  const pad = (n: number, w: number): string => String(n).padStart(w, '0');
  // aaa,b,c,dddd,eee,f,g,h,iii,j,k,l: 9600 8N1 settings, 25 mm label at 12 dots/mm.
  const s1 = ['038', b(flags.paperOut), b(flags.paused), '0300', pad(formatsInBuffer, 3), b(flags.bufferFull), '0', '0', '000', '0', b(flags.underTemperature), b(flags.overTemperature)];
  // mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www: tear-off (2), direct thermal.
  const s2 = ['001', '0', b(flags.headUp), b(flags.ribbonOut), '0', '2', '6', '0', '00000000', '1', '000'];
  // xxxx,y
  const s3 = ['1234', '0'];
  return Buffer.from([s1, s2, s3].map((f) => `\x02${f.join(',')}\x03\r\n`).join(''), 'latin1');
}

export class PrinterSink {
  private jobCount = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
    readonly jobsDir: string,
    readonly mode: PrinterSinkMode,
  ) {}

  static async start(options: PrinterSinkOptions): Promise<PrinterSink> {
    const mode = options.mode ?? 'ok';
    const host = options.host ?? '127.0.0.1';
    const flags: HostStatusFlags = {
      ...NO_FLAGS,
      paperOut: mode === 'paper-out',
      headUp: mode === 'head-open',
      paused: mode === 'paused',
      ...options.flags,
    };
    mkdirSync(options.jobsDir, { recursive: true });
    const server = createServer({ allowHalfOpen: true });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    });
    const sink = new PrinterSink(server, host, port, options.jobsDir, mode);
    server.on('connection', (socket) => sink.serve(socket, flags));
    return sink;
  }

  /** Jobs recorded so far. */
  get jobs(): number {
    return this.jobCount;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket, flags: HostStatusFlags): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    if (this.mode === 'slow') {
      socket.pause();
      return;
    }
    const chunks: Buffer[] = [];
    let tail = '';
    let onlyStatus = true;
    let statusText = '';
    let gaveUp = false;
    socket.on('data', (chunk: Buffer) => {
      if (gaveUp) return;
      chunks.push(chunk);
      const text = tail + chunk.toString('latin1');
      for (let i = text.indexOf('~HS'); i >= 0; i = text.indexOf('~HS', i + 3)) socket.write(hostStatusAnswer(flags));
      tail = text.slice(-2);
      if (onlyStatus) {
        // Everything so far was ~HS (a trailing "~" or "~H" may be the start of the next one).
        statusText += chunk.toString('latin1');
        if (statusText.replace(/~HS/g, '').replace(/~H?$/, '').trim() !== '') onlyStatus = false;
        else return;
      }
      if (this.mode === 'close-mid-job') {
        gaveUp = true;
        socket.pause();
        socket.end();
        setTimeout(() => socket.destroy(), LINGER_MS).unref();
      } else if (this.mode === 'reset-mid-job') {
        gaveUp = true;
        socket.resetAndDestroy();
      }
    });
    socket.on('end', () => {
      if (gaveUp) return;
      if (!onlyStatus) this.record(Buffer.concat(chunks));
      socket.end();
    });
  }

  private record(job: Buffer): void {
    const n = ++this.jobCount;
    const target = join(this.jobsDir, `job-${n}.zpl`);
    const tmp = join(this.jobsDir, `.job-${n}.zpl.tmp`);
    writeFileSync(tmp, job);
    renameSync(tmp, target);
  }
}
