/**
 * Test doubles at the edges of the printers: stand-ins for the CUPS client commands (small shell
 * scripts, so the real CupsPrinter spawns a real process) and the far end of a serial PTY pair.
 * A real cupsd is not run in tests: CupsPrinter's contract ends where `lp` takes the job.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';

function script(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

export interface RecordingLp {
  command: string;
  /** Each call's arguments and stdin, in call order. */
  calls(): Array<{ args: string[]; stdin: Buffer }>;
}

/** `lp` that records its arguments and stdin and answers like CUPS does. */
export function writeRecordingLp(dir: string): RecordingLp {
  mkdirSync(join(dir, 'calls'), { recursive: true });
  const command = script(
    join(dir, 'lp'),
    [
      '# RecordingLp: stands in for CUPS lp; one <n>.args and <n>.stdin per call.',
      'calls="$(dirname "$0")/calls"',
      'n=$(( $(ls "$calls" | grep -c "\\.args$") + 1 ))',
      'cat > "$calls/$n.stdin"',
      'for a in "$@"; do printf "%s\\n" "$a"; done > "$calls/$n.args"',
      'echo "request id is stub-$n (0 file(s))"',
    ].join('\n'),
  );
  return {
    command,
    calls: () => {
      const d = join(dir, 'calls');
      const ns = readdirSync(d)
        .filter((f) => f.endsWith('.args'))
        .map((f) => Number(f.slice(0, -5)))
        .sort((a, b) => a - b);
      return ns.map((n) => ({ args: readFileSync(join(d, `${n}.args`), 'utf8').split('\n').slice(0, -1), stdin: readFileSync(join(d, `${n}.stdin`)) }));
    },
  };
}

/** A CUPS command that plays back a fixed answer: stdout, stderr, exit code; optionally hangs. */
export function writeScriptedCommand(path: string, answer: { stdout?: string; stderr?: string; exitCode?: number; hang?: boolean }): string {
  const lines = ['# Scripted CUPS client: plays back a fixed answer.'];
  if (answer.hang) lines.push('exec sleep 60');
  if (answer.stdout) lines.push(`printf '%s\\n' '${answer.stdout.replace(/'/g, `'\\''`)}'`);
  if (answer.stderr) lines.push(`printf '%s\\n' '${answer.stderr.replace(/'/g, `'\\''`)}' >&2`);
  lines.push(`exit ${answer.exitCode ?? 0}`);
  return script(path, lines.join('\n'));
}

/** The far end of a serial PTY pair: records every byte that arrives. */
export class RecordingSerialEnd {
  private readonly chunks: Buffer[] = [];
  private received = 0;

  private constructor(private readonly port: SerialPort) {
    port.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.received += chunk.length;
    });
    port.on('error', () => undefined);
  }

  static async open(path: string): Promise<RecordingSerialEnd> {
    if (!existsSync(path)) throw new Error(`${path} does not exist`);
    const port = new SerialPort({ path, baudRate: 115200, autoOpen: false, lock: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new RecordingSerialEnd(port);
  }

  /** Everything received, once at least `bytes` have arrived (fails after `timeoutMs`). */
  async waitFor(bytes: number, timeoutMs = 10_000): Promise<Buffer> {
    const start = Date.now();
    while (this.received < bytes) {
      if (Date.now() - start > timeoutMs) throw new Error(`the serial far end got ${this.received} of ${bytes} bytes within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
    // Anything extra would arrive right behind; give it a moment so leftovers are caught.
    await new Promise((r) => setTimeout(r, 50));
    return Buffer.concat(this.chunks);
  }

  close(): Promise<void> {
    if (!this.port.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.port.close(() => resolve()));
  }
}
