/**
 * Runs benchmark groups one after another, each in its own temporary data dir, and turns their
 * figures into one table and one flat JSON object. It never exits the process: the CLI does.
 *
 * Exit codes: 0 = every figure measured (missed targets included); 1 = a figure could not be
 * measured (a group threw, returned a non-finite number, or repeated a name); 2 = bad usage
 * (an unknown group).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext, BenchGroup, Figure } from './types';

export interface MeasuredFigure extends Figure {
  group: string;
  /** A target exists and the value does not meet it. */
  missed: boolean;
}

export interface BenchFailure {
  group: string;
  /** The figure concerned, when the failure is about one figure. */
  figure?: string;
  message: string;
}

export interface BenchNote {
  group: string;
  label: string;
  value: string;
}

export interface BenchResult {
  figures: MeasuredFigure[];
  failures: BenchFailure[];
  notes: BenchNote[];
  /** Figure name -> finite value, for --json. */
  json: Record<string, number>;
  table: string;
  exitCode: 0 | 1 | 2;
}

export interface RunBenchOptions {
  /** Group names to run (empty or absent: all, in registry order). */
  only?: readonly string[];
  /** Progress lines (stderr in the CLI). */
  log?: (message: string) => void;
  /** Extra environment lines printed above the table (runtime, CPU, ...). */
  environment?: ReadonlyArray<readonly [string, string]>;
  /** Where the groups' temporary data dirs go; os.tmpdir() by default. */
  tmpRoot?: string;
}

export function isTargetMissed(figure: Figure): boolean {
  if (!figure.target) return false;
  const { op, value } = figure.target;
  return op === '>=' ? !(figure.value >= value) : !(figure.value <= value);
}

/** Resolve --only against the registry; unknown names are returned separately. */
export function selectGroups(groups: readonly BenchGroup[], only: readonly string[] | undefined): { selected: BenchGroup[]; unknown: string[] } {
  if (!only || only.length === 0) return { selected: [...groups], unknown: [] };
  const wanted = new Set(only);
  const known = new Set(groups.map((g) => g.name));
  return { selected: groups.filter((g) => wanted.has(g.name)), unknown: [...wanted].filter((n) => !known.has(n)) };
}

export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (Number.isInteger(v)) return String(v);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

function formatTarget(f: Figure): string {
  return f.target ? `${f.target.op} ${formatValue(f.target.value)}` : '';
}

/** The figure table, with the environment and group notes above it and failures below. */
export function formatTable(figures: readonly MeasuredFigure[], failures: readonly BenchFailure[], notes: readonly BenchNote[], environment: ReadonlyArray<readonly [string, string]> = []): string {
  const lines: string[] = [];
  const envLines: Array<readonly [string, string]> = [...environment, ...notes.map((n) => [`${n.group}: ${n.label}`, n.value] as const)];
  if (envLines.length > 0) {
    const w = Math.max(...envLines.map(([k]) => k.length));
    for (const [k, v] of envLines) lines.push(`${k.padEnd(w)}  ${v}`);
    lines.push('');
  }
  const failedFigures = new Set(failures.filter((f) => f.figure).map((f) => f.figure!));
  const header = ['figure', 'value', 'unit', 'target', 'flag'];
  const rows = figures.map((f) => [
    f.name,
    Number.isFinite(f.value) ? formatValue(f.value) : 'n/a',
    f.unit,
    formatTarget(f),
    failedFigures.has(f.name) ? 'FAILED' : f.missed ? 'MISSED' : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const align = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  lines.push(align(header));
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) lines.push(align(r));
  if (rows.length === 0) lines.push('(no figures)');
  if (failures.length > 0) {
    lines.push('');
    for (const f of failures) lines.push(`FAILED ${f.group}${f.figure ? ` ${f.figure}` : ''}: ${f.message}`);
  }
  const missed = figures.filter((f) => f.missed).length;
  if (missed > 0) lines.push(`${missed} target${missed === 1 ? '' : 's'} missed (informational; not a failure).`);
  return lines.join('\n') + '\n';
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && code !== '' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export async function runBench(groups: readonly BenchGroup[], options: RunBenchOptions = {}): Promise<BenchResult> {
  const log = options.log ?? (() => undefined);
  const environment = options.environment ?? [];
  const { selected, unknown } = selectGroups(groups, options.only);
  if (unknown.length > 0) {
    const failures = unknown.map((name) => ({
      group: name,
      message: `unknown benchmark group "${name}"; groups: ${groups.map((g) => g.name).join(', ') || '(none)'}`,
    }));
    return { figures: [], failures, notes: [], json: {}, table: failures.map((f) => f.message).join('\n') + '\n', exitCode: 2 };
  }

  const figures: MeasuredFigure[] = [];
  const failures: BenchFailure[] = [];
  const notes: BenchNote[] = [];
  const json: Record<string, number> = {};

  for (const group of selected) {
    const dataDir = mkdtempSync(join(options.tmpRoot ?? tmpdir(), `bench-${group.name}-`));
    const ctx: BenchContext = {
      dataDir,
      note: (label, value) => notes.push({ group: group.name, label, value }),
      log: (message) => log(`[${group.name}] ${message}`),
    };
    log(`[${group.name}] ${group.description}`);
    let produced: Figure[] = [];
    const t0 = Date.now();
    try {
      produced = await group.run(ctx);
      if (!Array.isArray(produced)) throw new TypeError('the group did not return a list of figures');
    } catch (err) {
      failures.push({ group: group.name, message: errorMessage(err) });
      produced = [];
    } finally {
      try {
        rmSync(dataDir, { recursive: true, force: true });
      } catch (err) {
        log(`[${group.name}] could not remove ${dataDir}: ${errorMessage(err)}`);
      }
    }
    log(`[${group.name}] done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const f of produced) {
      const measured: MeasuredFigure = { ...f, group: group.name, missed: false };
      if (typeof f.value !== 'number' || !Number.isFinite(f.value)) {
        failures.push({ group: group.name, figure: f.name, message: `not a finite number (${String(f.value)})` });
      } else if (!/^[a-z][a-z0-9_]*$/.test(f.name)) {
        failures.push({ group: group.name, figure: f.name, message: 'a figure name must be snake_case' });
      } else if (Object.prototype.hasOwnProperty.call(json, f.name)) {
        failures.push({ group: group.name, figure: f.name, message: 'this figure name was already reported' });
      } else {
        measured.missed = isTargetMissed(f);
        json[f.name] = f.value;
      }
      figures.push(measured);
    }
  }

  const table = formatTable(figures, failures, notes, environment);
  return { figures, failures, notes, json, table, exitCode: failures.length > 0 ? 1 : 0 };
}
