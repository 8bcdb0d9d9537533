/**
 * The benchmark harness's vocabulary (contracts.md §4): a group measures named figures; a figure
 * may carry a target, which is printed and flagged when missed but never fails the run.
 */

export interface FigureTarget {
  op: '>=' | '<=';
  value: number;
}

export interface Figure {
  /** snake_case, unique across all groups (it is the key in the --json output). */
  name: string;
  value: number;
  /** e.g. "issuances/s", "ms", "ratio" (ratios are fractions: 0.25, not 25). */
  unit: string;
  target?: FigureTarget;
}

export interface BenchContext {
  /** A fresh temporary data dir for this group alone (under os.tmpdir()), removed after the group. */
  readonly dataDir: string;
  /** An environment or parameter line printed with the table (tool versions, batch sizes, ...). */
  note(label: string, value: string): void;
  /** Progress on stderr; never part of the table. */
  log(message: string): void;
}

export interface BenchGroup {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Figure[]>;
}
