/** Progress for batch runs: a bar on a terminal, one line per device otherwise (CI logs). */
import cliProgress from 'cli-progress';
import type { DeviceReport } from '../run/report';

export interface Progress {
  start(total: number): void;
  device(report: DeviceReport): void;
  stop(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  let done = 0;
  let failed = 0;
  let total = 0;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: ' {bar} {value}/{total} devices | passed {passed} | failed {failed} | {last}', hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    return {
      start: (t) => {
        total = t;
        bar.start(total, 0, { passed: 0, failed: 0, last: '' });
      },
      device: (r) => {
        done++;
        if (r.status === 'failed') failed++;
        bar.update(done, { passed: done - failed, failed, last: `${r.serial ?? r.port} ${r.status}${r.error ? ` ${r.error.code}` : ''}` });
      },
      stop: () => bar.stop(),
    };
  }
  return {
    start: (t) => {
      total = t;
      stream.write(`provisioning ${total} device(s)\n`);
    },
    device: (r) => {
      done++;
      const ms = Math.round(r.stages.reduce((a, s) => a + s.durationMs, 0));
      const why = r.error ? ` ${r.error.code}${r.error.stage ? ` at ${r.error.stage}` : ''}: ${r.error.message}` : '';
      stream.write(`[${done}/${total}] ${r.serial ?? '(no serial)'} on ${r.port}: ${r.status.toUpperCase()} in ${ms} ms${why}\n`);
    },
    stop: () => undefined,
  };
}
