/**
 * Printer faults against real far ends:
 * - Tcp9100Printer against the built virtual Zebra (`node bin/station-sim.js printer --mode M`),
 *   one process per mode (build first: npx tsc -p tsconfig.json);
 * - SerialPrinter on a socat PTY pair whose far end nobody reads;
 * - CupsPrinter against scripted `lp`/`lpstat` stand-ins. A real cupsd is not run in tests: the
 *   stubs check what the printer hands to the CUPS client and how it reads the client's answers.
 * Timeouts are asserted by their code, never by a measured duration.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrinterError } from '../../src/core/errors';
import type { PrintJob, Printer } from '../../src/core/ports/printer';
import { CupsPrinter } from '../../src/label-printer/printers/cups-printer';
import { FilePrinter } from '../../src/label-printer/printers/file-printer';
import { SerialPrinter } from '../../src/label-printer/printers/serial-printer';
import { Tcp9100Printer } from '../../src/label-printer/printers/tcp9100-printer';
import { openPtyPair, type PtyPair } from '../../src/simulator/pty-pair';
import { writeRecordingLp, writeScriptedCommand } from '../helpers/printer-doubles';
import { testDir } from '../helpers/station-cli';
import { closedPort, startSimPrinter, unswallowableJobBytes, zplJobOfSize, type SimPrinter, type SimPrinterMode } from '../helpers/station-sim-printer';
import { requireTool } from '../helpers/tools';

const LABEL = Buffer.from('^XA^FO20,20^BQN,2,4^FH_^FDQA,DPP:C:81/1;M:0211223344aa;I:FAULT-000001;V:2;K:MDkw;;^FS^FO300,40^A0N,40,30^FH_^FDFAULT-000001^FS^XZ', 'latin1');

function job(bytes: Buffer = LABEL, serial = 'FAULT-000001'): PrintJob {
  return { serial, format: 'zpl', bytes };
}

/** The PrinterError a promise rejects with; fails the test if it resolves or throws anything else. */
async function printerError(p: Promise<unknown>): Promise<PrinterError> {
  const outcome = await p.then(
    () => new Error('expected a PrinterError, but it succeeded'),
    (e: unknown) => e,
  );
  if (!(outcome instanceof PrinterError)) throw outcome;
  expect(outcome.family).toBe('printer');
  expect(outcome.stage).toBe('label');
  return outcome;
}

describe('Tcp9100Printer against station-sim printer', () => {
  const modes: SimPrinterMode[] = ['ok', 'slow', 'close-mid-job', 'reset-mid-job', 'paper-out', 'head-open', 'paused'];
  const sims = new Map<SimPrinterMode, SimPrinter>();
  let base: string;

  beforeAll(async () => {
    base = testDir('printer-faults-tcp');
    for (const s of await Promise.all(modes.map((m) => startSimPrinter(m, join(base, m))))) sims.set(s.mode, s);
  });

  afterAll(async () => {
    await Promise.all([...sims.values()].map((s) => s.stop()));
  });

  const sim = (mode: SimPrinterMode): SimPrinter => sims.get(mode)!;
  const printer = (mode: SimPrinterMode, statusQuery: boolean, timeoutMs = 5000): Tcp9100Printer =>
    new Tcp9100Printer({ host: '127.0.0.1', port: sim(mode).port, timeoutMs, statusQuery });

  it('ok: the recorded job equals the bytes sent, and the ~HS query is not a job', async () => {
    await printer('ok', true).print(job());
    const jobs = sim('ok').jobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.equals(LABEL)).toBe(true);
  });

  it('printer down: connecting to a closed port is PRINTER_UNREACHABLE naming host:port', async () => {
    const port = await closedPort();
    const p = new Tcp9100Printer({ host: '127.0.0.1', port, timeoutMs: 5000, statusQuery: true });
    const err = await printerError(p.print(job()));
    expect(err.code).toBe('PRINTER_UNREACHABLE');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.retryable).toBe(true);
    expect((await printerError(p.status())).code).toBe('PRINTER_UNREACHABLE');
  });

  it('slow: a printer that takes the bytes but never closes is PRINTER_TIMEOUT (500 ms)', async () => {
    const err = await printerError(printer('slow', false, 500).print(job()));
    expect(err.code).toBe('PRINTER_TIMEOUT');
    expect(err.message).toContain(`127.0.0.1:${sim('slow').port}`);
    expect(err.message).toContain('500 ms');
    expect(err.message).toContain('did not close the connection');
    expect(sim('slow').jobs()).toHaveLength(0);
  });

  it('slow: a job the printer never reads is PRINTER_TIMEOUT while writing', async () => {
    const err = await printerError(printer('slow', false, 500).print(job(zplJobOfSize(unswallowableJobBytes()))));
    expect(err.code).toBe('PRINTER_TIMEOUT');
    expect(err.message).toContain('did not take the whole label job');
  });

  it('close-mid-job: the printer ending its side before the job is written is PRINTER_CONNECTION_LOST', async () => {
    const big = zplJobOfSize(unswallowableJobBytes());
    const err = await printerError(printer('close-mid-job', false).print(job(big)));
    expect(err.code).toBe('PRINTER_CONNECTION_LOST');
    expect(err.message).toContain(`closed the connection before the whole label job (${big.length} bytes)`);
    expect(sim('close-mid-job').jobs()).toHaveLength(0);
  });

  it('reset-mid-job: a reset while writing is PRINTER_CONNECTION_LOST', async () => {
    const err = await printerError(printer('reset-mid-job', false).print(job(zplJobOfSize(unswallowableJobBytes()))));
    expect(err.code).toBe('PRINTER_CONNECTION_LOST');
    expect(err.message).toMatch(/ECONNRESET|EPIPE/);
    expect(sim('reset-mid-job').jobs()).toHaveLength(0);
  });

  it('reset-mid-job: a reset instead of the closing FIN, after a small job, is PRINTER_CONNECTION_LOST too', async () => {
    const err = await printerError(printer('reset-mid-job', true).print(job()));
    expect(err.code).toBe('PRINTER_CONNECTION_LOST');
    expect(sim('reset-mid-job').jobs()).toHaveLength(0);
  });

  it.each([
    ['paper-out', 'PRINTER_PAPER_OUT', 'paper out'],
    ['head-open', 'PRINTER_HEAD_OPEN', 'head is open'],
    ['paused', 'PRINTER_PAUSED', 'paused'],
  ] as const)('%s with statusQuery: refused with %s, nothing sent', async (mode, code, words) => {
    const err = await printerError(printer(mode, true).print(job()));
    expect(err.code).toBe(code);
    expect(err.message).toContain(words);
    expect(err.message).toContain('was not sent');
    expect(sim(mode).jobs()).toHaveLength(0);
  });

  it('paper-out without statusQuery: the job is sent and recorded (raw 9100 has no refusal)', async () => {
    await printer('paper-out', false).print(job());
    expect(sim('paper-out').jobs().map((j) => j.equals(LABEL))).toEqual([true]);
  });

  it.each([
    ['ok', true, []],
    ['close-mid-job', true, []],
    ['reset-mid-job', true, []],
    ['paper-out', false, ['PRINTER_PAPER_OUT']],
    ['head-open', false, ['PRINTER_HEAD_OPEN']],
    ['paused', false, ['PRINTER_PAUSED']],
  ] as const)('~HS status of %s: ready=%s, faults %j', async (mode, ready, faults) => {
    const status = await printer(mode, true).status();
    expect(status.ready).toBe(ready);
    expect(status.faults).toEqual(faults);
    expect(status.detail).toContain(`127.0.0.1:${sim(mode).port}`);
  });

  it('~HS status of slow: PRINTER_TIMEOUT saying that the host status query went unanswered', async () => {
    const err = await printerError(printer('slow', true, 500).status());
    expect(err.code).toBe('PRINTER_TIMEOUT');
    expect(err.message).toContain('~HS');
  });
});

describe('SerialPrinter on a socat PTY pair', () => {
  let dir: string;
  let pair: PtyPair;

  beforeAll(async () => {
    requireTool('socat', 'socat');
    dir = testDir('printer-faults-serial');
    pair = await openPtyPair(join(dir, 'station'), join(dir, 'device'));
  });

  afterAll(async () => {
    await pair?.close();
  });

  it('a device path that does not exist is PRINTER_UNREACHABLE naming it', async () => {
    const path = join(dir, 'ttyUSB9');
    const err = await printerError(new SerialPrinter({ path, baudRate: 9600, timeoutMs: 500 }).print(job()));
    expect(err.code).toBe('PRINTER_UNREACHABLE');
    expect(err.message).toContain(path);
  });

  it('a printer that takes no bytes (nobody reads the far end) is PRINTER_TIMEOUT (500 ms)', async () => {
    const err = await printerError(new SerialPrinter({ path: pair.stationPath, baudRate: 9600, timeoutMs: 500 }).print(job(zplJobOfSize(1 << 20))));
    expect(err.code).toBe('PRINTER_TIMEOUT');
    expect(err.message).toContain('500 ms');
  });
});

describe('CupsPrinter with scripted lp and lpstat', () => {
  let dir: string;

  beforeAll(() => {
    dir = testDir('printer-faults-cups');
  });

  const cups = (opts: Partial<ConstructorParameters<typeof CupsPrinter>[0]> = {}): Printer =>
    new CupsPrinter({ queue: 'zebra1', format: 'zpl', timeoutMs: 5000, lpCommand: join(dir, 'missing-lp'), lpstatCommand: join(dir, 'missing-lpstat'), ...opts });

  it('hands ZPL to lp raw, titled with the serial, on stdin', async () => {
    const lp = writeRecordingLp(join(dir, 'recording-zpl'));
    await cups({ lpCommand: lp.command }).print(job());
    const [call] = lp.calls();
    expect(call!.args).toEqual(['-d', 'zebra1', '-o', 'raw', '-t', 'FAULT-000001', '-']);
    expect(call!.stdin.equals(LABEL)).toBe(true);
  });

  it('hands PNG to lp without -o raw, so the queue driver converts it', async () => {
    const lp = writeRecordingLp(join(dir, 'recording-png'));
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    await cups({ lpCommand: lp.command, format: 'png' }).print({ serial: 'FAULT-000002', format: 'png', bytes: png });
    const [call] = lp.calls();
    expect(call!.args).toEqual(['-d', 'zebra1', '-t', 'FAULT-000002', '-']);
    expect(call!.stdin.equals(png)).toBe(true);
  });

  it('lp exiting non-zero is PRINTER_QUEUE_FAILED carrying what lp said', async () => {
    const lp = writeScriptedCommand(join(dir, 'lp-fails'), { stderr: 'lp: Error - The printer or class does not exist.', exitCode: 1 });
    const err = await printerError(cups({ lpCommand: lp }).print(job()));
    expect(err.code).toBe('PRINTER_QUEUE_FAILED');
    expect(err.message).toContain('lp: Error - The printer or class does not exist.');
    expect(err.message).toContain('zebra1');
  });

  it('lp missing is PRINTER_UNREACHABLE naming the Debian package cups-client', async () => {
    const err = await printerError(cups().print(job()));
    expect(err.code).toBe('PRINTER_UNREACHABLE');
    expect(err.message).toContain('cups-client');
  });

  it('lp that never returns is PRINTER_TIMEOUT (500 ms)', async () => {
    const lp = writeScriptedCommand(join(dir, 'lp-hangs'), { hang: true });
    const err = await printerError(cups({ lpCommand: lp, timeoutMs: 500 }).print(job()));
    expect(err.code).toBe('PRINTER_TIMEOUT');
    expect(err.message).toContain('500 ms');
  });

  it('status: an idle queue is ready, a disabled one is not (PRINTER_PAUSED)', async () => {
    const idle = writeScriptedCommand(join(dir, 'lpstat-idle'), { stdout: 'printer zebra1 is idle.  enabled since Fri 31 Jan 2025 09:00:00 AM UTC' });
    expect(await cups({ lpstatCommand: idle }).status()).toMatchObject({ ready: true, faults: [] });
    const disabled = writeScriptedCommand(join(dir, 'lpstat-disabled'), { stdout: 'printer zebra1 disabled since Fri 31 Jan 2025 09:00:00 AM UTC -\n\tPaused' });
    const s = await cups({ lpstatCommand: disabled }).status();
    expect(s).toMatchObject({ ready: false, faults: ['PRINTER_PAUSED'] });
    expect(s.detail).toContain('cupsenable zebra1');
  });

  it('status: lpstat failing is PRINTER_QUEUE_FAILED, lpstat missing is PRINTER_UNREACHABLE', async () => {
    const bad = writeScriptedCommand(join(dir, 'lpstat-bad'), { stderr: 'lpstat: Invalid destination name in list "zebra1".', exitCode: 1 });
    const err = await printerError(cups({ lpstatCommand: bad }).status());
    expect(err.code).toBe('PRINTER_QUEUE_FAILED');
    expect(err.message).toContain('Invalid destination name');
    expect((await printerError(cups().status())).code).toBe('PRINTER_UNREACHABLE');
  });
});

describe('FilePrinter', () => {
  it('writes <serial>-<timestamp>.<format> atomically, never overwriting', async () => {
    const dir = testDir('printer-faults-file');
    const clock = { now: () => new Date('2025-01-31T12:05:01.123Z'), monotonicMs: () => 0 };
    const p = new FilePrinter({ dir, format: 'zpl', clock });
    const first = await p.write(job());
    const second = await p.write(job());
    expect(first).toBe(join(dir, 'FAULT-000001-20250131T120501123Z.zpl'));
    expect(second).toBe(join(dir, 'FAULT-000001-20250131T120501123Z-2.zpl'));
  });

  it('a folder it cannot create is PRINTER_FAILED naming it', async () => {
    const dir = testDir('printer-faults-file');
    writeFileSync(join(dir, 'file'), '');
    const err = await printerError(new FilePrinter({ dir: join(dir, 'file', 'sub'), format: 'zpl' }).print(job()));
    expect(err.code).toBe('PRINTER_FAILED');
    expect(err.message).toContain(join(dir, 'file', 'sub'));
  });
});
