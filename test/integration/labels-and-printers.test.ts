/**
 * Labels end to end: the batch prints ZPL to a loopback Zebra sink; a dead printer leaves the
 * devices passed with their labels pending; `station label print` prints them later; a reprint
 * is audited with the operator and the reason.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/station/run/report';
import { startSimPrinter, type SimPrinter } from '../helpers/station-sim-printer';
import { validateReport } from '../helpers/report-schema';
import { cleanEnv, runStation, testDir } from '../helpers/station-cli';
import { zbarDecode } from '../helpers/tools';

function zplQrData(zpl: string): string {
  const m = /\^BQN[^\^]*\^FH_?\^FD[LMQH]A,([^\^]*)\^FS|\^BQN[^\^]*\^FD[LMQH]A,([^\^]*)\^FS/.exec(zpl);
  if (!m) throw new Error(`no ^BQ field in ${zpl}`);
  return (m[1] ?? m[2]!).replace(/_([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

describe('labels and printers', () => {
  let dir: string;
  let sink: SimPrinter;
  let sinkUri: string;

  beforeAll(async () => {
    dir = testDir('labels');
    mkdirSync(join(dir, 'jobs'));
    sink = await startSimPrinter('ok', join(dir, 'jobs'));
    sinkUri = `tcp://127.0.0.1:${sink.port}?timeoutMs=1500`;
  });
  afterAll(async () => {
    await sink?.stop();
  });

  it('prints one ZPL job per passed device, carrying exactly the DPP URI in the database', async () => {
    const out = join(dir, 'run1');
    const r = await runStation(['batch', '--simulate', '2', '--count', '3', '--out', out, '--printer', sinkUri]);
    expect(r.stderr).toContain('3/3 passed');
    expect(r.code).toBe(0);
    const report = validateReport(join(out, 'report.json')) as RunReport;
    const jobs = sink.jobs().map((j) => j.toString('latin1'));
    expect(jobs).toHaveLength(3);
    const db = new BetterSqlite3(join(out, 'data', 'station.db'), { readonly: true });
    try {
      const uris = (db.prepare('SELECT dpp_uri FROM devices ORDER BY serial').all() as { dpp_uri: string }[]).map((x) => x.dpp_uri);
      expect(jobs.map(zplQrData).sort()).toEqual(uris.sort());
      const prints = db.prepare("SELECT COUNT(*) AS n FROM label_prints WHERE result = 'printed' AND kind = 'first'").get() as { n: number };
      expect(prints.n).toBe(3);
    } finally {
      db.close();
    }
    for (const d of report.devices) {
      expect(d.label).toEqual({ state: 'printed' });
      expect(zbarDecode(join(out, d.labelPngPath!))).toBe(d.dppUri);
    }
  });

  it('keeps devices passed with labels pending when the printer is down, then prints them with "label print"', async () => {
    const out = join(dir, 'run2');
    const r = await runStation(['batch', '--simulate', '2', '--out', out, '--printer', 'tcp://127.0.0.1:1?timeoutMs=500']);
    expect(r.code).toBe(0); // every device passed; the labels are pending
    const report = validateReport(join(out, 'report.json')) as RunReport;
    expect(report.counts).toMatchObject({ passed: 2, failed: 0, labelPending: 2 });
    for (const d of report.devices) {
      expect(d.status).toBe('passed');
      expect(d.label.state).toBe('pending');
      expect(d.label.reason).toMatch(/^PRINTER_UNREACHABLE: /);
    }
    expect(r.stderr).toContain('2 label(s) pending');

    const before = sink.jobs().length;
    const p = await runStation(['--data-dir', join(out, 'data'), 'label', 'print', '--printer', sinkUri, '--operator', 'bob']);
    expect(p.stderr).toContain('2 printed, 0 still pending');
    expect(p.code).toBe(0);
    expect(sink.jobs().length).toBe(before + 2);
    const db = new BetterSqlite3(join(out, 'data', 'station.db'), { readonly: true });
    try {
      const states = db.prepare('SELECT label_state FROM devices').all() as { label_state: string }[];
      expect(states.every((s) => s.label_state === 'printed')).toBe(true);
      const kinds = db.prepare('SELECT kind, result, error_code FROM label_prints ORDER BY id').all();
      expect(kinds).toEqual([
        { kind: 'first', result: 'failed', error_code: 'PRINTER_UNREACHABLE' },
        { kind: 'first', result: 'failed', error_code: 'PRINTER_UNREACHABLE' },
        { kind: 'retry', result: 'printed', error_code: null },
        { kind: 'retry', result: 'printed', error_code: null },
      ]);
    } finally {
      db.close();
    }
  });

  it('reprints a label with the operator and reason in the audit trail, and refuses one without a reason', async () => {
    const data = join(dir, 'run1', 'data');
    const serial = 'DEMO-000002';
    const before = sink.jobs().length;
    const r = await runStation(['--data-dir', data, 'label', 'reprint', '--serial', serial, '--reason', 'label torn', '--operator', 'alice', '--printer', sinkUri]);
    expect(r.stderr).toContain(`${serial}: REPRINTED`);
    expect(r.code).toBe(0);
    expect(sink.jobs().length).toBe(before + 1);
    const db = new BetterSqlite3(join(data, 'station.db'), { readonly: true });
    try {
      const ev = db.prepare("SELECT data FROM audit_events WHERE type = 'label.reprint.printed' AND serial = ?").get(serial) as { data: string };
      expect(JSON.parse(ev.data)).toMatchObject({ operator: 'alice', reason: 'label torn', kind: 'reprint' });
    } finally {
      db.close();
    }
    const noReason = await runStation(['--data-dir', data, 'label', 'reprint', '--serial', serial, '--reason', ' '], { env: cleanEnv() });
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('REASON_REQUIRED');
    const unknown = await runStation(['--data-dir', data, 'label', 'reprint', '--serial', 'NOPE-1', '--reason', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('DEVICE_UNKNOWN');
  });
});
