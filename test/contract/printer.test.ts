/**
 * The Printer port's contract, run against every implementation with a real far end:
 *   file     a folder
 *   tcp9100  the virtual Zebra (PrinterSink) on loopback, with the ~HS status query on
 *   serial   a socat PTY pair, read at the device end
 *   cups     a RecordingLp stub script in place of `lp` (a real cupsd is not run in tests)
 * Whatever the printer, the far end must get exactly the job's bytes, and every fault must be a
 * PrinterError of family 'printer' at stage 'label'.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PrinterError } from '../../src/core/errors';
import type { PrintJob, Printer } from '../../src/core/ports/printer';
import { CupsPrinter } from '../../src/label-printer/printers/cups-printer';
import { FilePrinter } from '../../src/label-printer/printers/file-printer';
import { SerialPrinter } from '../../src/label-printer/printers/serial-printer';
import { Tcp9100Printer } from '../../src/label-printer/printers/tcp9100-printer';
import { PrinterSink } from '../../src/simulator/printer-sink';
import { openPtyPair } from '../../src/simulator/pty-pair';
import { RecordingSerialEnd, writeRecordingLp, writeScriptedCommand } from '../helpers/printer-doubles';
import { testDir } from '../helpers/station-cli';
import { closedPort } from '../helpers/station-sim-printer';
import { requireTool } from '../helpers/tools';
import { until } from '../helpers/until';

interface Harness {
  printer: Printer;
  /** Every byte the far end has taken, in order, once at least `bytes` have arrived. */
  received(bytes: number): Promise<Buffer>;
  close(): Promise<void>;
}

interface Implementation {
  name: string;
  setup(dir: string): Promise<Harness>;
  /** The same printer with nothing at the far end, and the code it must fail with. */
  unreachable(dir: string): Promise<{ printer: Printer; code: string }>;
}


function concatWhen(files: () => Buffer[], bytes: number): Promise<Buffer> {
  return until(`${bytes} bytes at the far end`, () => {
    const all = Buffer.concat(files());
    return all.length >= bytes ? all : undefined;
  });
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: 'FilePrinter',
    setup: async (dir) => {
      const out = join(dir, 'printed');
      const files = (): Buffer[] => {
        try {
          return readdirSync(out)
            .filter((f) => f.endsWith('.zpl'))
            .sort()
            .map((f) => readFileSync(join(out, f)));
        } catch {
          return [];
        }
      };
      return { printer: new FilePrinter({ dir: out, format: 'zpl' }), received: (n) => concatWhen(files, n), close: async () => undefined };
    },
    unreachable: async (dir) => {
      writeFileSync(join(dir, 'not-a-folder'), '');
      return { printer: new FilePrinter({ dir: join(dir, 'not-a-folder', 'printed'), format: 'zpl' }), code: 'PRINTER_FAILED' };
    },
  },
  {
    name: 'Tcp9100Printer',
    setup: async (dir) => {
      const jobsDir = join(dir, 'jobs');
      const sink = await PrinterSink.start({ jobsDir, mode: 'ok' });
      const files = (): Buffer[] =>
        readdirSync(jobsDir)
          .filter((f) => /^job-\d+\.zpl$/.test(f))
          .sort((a, b) => Number(a.slice(4, -4)) - Number(b.slice(4, -4)))
          .map((f) => readFileSync(join(jobsDir, f)));
      return {
        printer: new Tcp9100Printer({ host: '127.0.0.1', port: sink.port, timeoutMs: 5000, statusQuery: true }),
        received: (n) => concatWhen(files, n),
        close: () => sink.stop(),
      };
    },
    unreachable: async () => ({
      printer: new Tcp9100Printer({ host: '127.0.0.1', port: await closedPort(), timeoutMs: 5000, statusQuery: true }),
      code: 'PRINTER_UNREACHABLE',
    }),
  },
  {
    name: 'SerialPrinter',
    setup: async (dir) => {
      requireTool('socat', 'socat');
      const pair = await openPtyPair(join(dir, 'printer-station'), join(dir, 'printer-device'));
      const farEnd = await RecordingSerialEnd.open(pair.devicePath);
      return {
        printer: new SerialPrinter({ path: pair.stationPath, baudRate: 115200, timeoutMs: 5000 }),
        received: (n) => farEnd.waitFor(n),
        close: async () => {
          await farEnd.close();
          await pair.close();
        },
      };
    },
    unreachable: async (dir) => ({ printer: new SerialPrinter({ path: join(dir, 'no-such-tty'), baudRate: 9600, timeoutMs: 5000 }), code: 'PRINTER_UNREACHABLE' }),
  },
  {
    name: 'CupsPrinter',
    setup: async (dir) => {
      const lp = writeRecordingLp(dir);
      const lpstat = writeScriptedCommand(join(dir, 'lpstat'), { stdout: 'printer zebra1 is idle.  enabled since Fri 31 Jan 2025 09:00:00 AM UTC' });
      return {
        printer: new CupsPrinter({ queue: 'zebra1', format: 'zpl', timeoutMs: 5000, lpCommand: lp.command, lpstatCommand: lpstat }),
        received: (n) => concatWhen(() => lp.calls().map((c) => c.stdin), n),
        close: async () => undefined,
      };
    },
    unreachable: async (dir) => ({ printer: new CupsPrinter({ queue: 'zebra1', format: 'zpl', timeoutMs: 5000, lpCommand: join(dir, 'no-lp-here') }), code: 'PRINTER_UNREACHABLE' }),
  },
];

const LABEL = Buffer.from(
  '^XA^CI28^PW600^LL300^FO20,20^BQN,2,4^FH_^FDQA,DPP:C:81/1;M:0211223344aa;I:CONTRACT-000001;V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAC;;^FS' +
    '^FO300,40^A0N,40,30^FH_^FDCONTRACT-000001^FS^XZ',
  'latin1',
);

function zpl(serial: string, bytes: Buffer): PrintJob {
  return { serial, format: 'zpl', bytes };
}

for (const impl of IMPLEMENTATIONS) {
  describe(`Printer contract: ${impl.name}`, () => {
    let dir: string;
    let h: Harness;

    beforeEach(async () => {
      dir = testDir(`printer-contract-${impl.name}`);
      h = await impl.setup(dir);
    });

    afterEach(async () => {
      await h?.close();
    });

    it('says what it is and that it takes ZPL', () => {
      expect(h.printer.description).toMatch(/^(file|tcp9100|serial|cups) \S/);
      expect(h.printer.format).toBe('zpl');
    });

    it('takes a ZPL job: the far end gets exactly its bytes', async () => {
      await h.printer.print(zpl('CONTRACT-000001', LABEL));
      expect((await h.received(LABEL.length)).equals(LABEL)).toBe(true);
    });

    it('takes jobs one after another, in order', async () => {
      const jobs = [1, 2, 3].map((n) => zpl(`CONTRACT-00000${n}`, Buffer.from(LABEL.toString('latin1').replaceAll('CONTRACT-000001', `CONTRACT-00000${n}`), 'latin1')));
      for (const job of jobs) await h.printer.print(job);
      const all = Buffer.concat(jobs.map((j) => j.bytes));
      expect((await h.received(all.length)).equals(all)).toBe(true);
    });

    it('takes a 1 MiB job with every byte value intact', async () => {
      const bytes = Buffer.alloc(1 << 20);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
      await h.printer.print(zpl('CONTRACT-000009', bytes));
      const got = await h.received(bytes.length);
      expect(got.length).toBe(bytes.length);
      expect(got.equals(bytes)).toBe(true);
    });

    it('reports its status as ready with no faults', async () => {
      const status = await h.printer.status();
      expect(status).toEqual({ ready: true, faults: [], detail: expect.any(String) });
    });

    it('refuses a job in a format it does not take, before sending anything', async () => {
      const err = await h.printer.print({ serial: 'CONTRACT-000001', format: 'png', bytes: Buffer.from('png') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PrinterError);
      expect((err as PrinterError).code).toBe('PRINTER_FAILED');
      // Nothing went out: the next job arrives alone.
      await h.printer.print(zpl('CONTRACT-000001', LABEL));
      expect((await h.received(LABEL.length)).equals(LABEL)).toBe(true);
    });

    it('fails with a typed PrinterError naming the printer when nothing is at the far end', async () => {
      const { printer, code } = await impl.unreachable(dir);
      const err = await printer.print(zpl('CONTRACT-000001', LABEL)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PrinterError);
      const e = err as PrinterError;
      expect([e.family, e.stage, e.code]).toEqual(['printer', 'label', code]);
      expect(e.message.length).toBeGreaterThan(20);
    });
  });
}
