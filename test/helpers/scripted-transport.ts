/**
 * ScriptedTransport: a Transport that plays a device transcript (test/helpers/transcript.ts),
 * after LedgerHQ's hw-transport-mocker RecordStore. Each frame the station writes must be the
 * next `=>` line (outside its masked bytes); the `<=` lines that follow it are then delivered,
 * in order and asynchronously, as the device's answer. It fails on
 *
 * - a wrong frame: the write is rejected, naming the transcript line, field and offset;
 * - a leftover frame: the station writes when the transcript expects nothing (more) from it;
 * - a missing frame: `assertComplete()` finds lines the station never reached.
 *
 * Failures are also kept, so `assertComplete()` reports them even when the code under test
 * swallowed the rejected write.
 */
import { FRAME_HEADER_BYTES, FRAME_OVERHEAD_BYTES } from '../../src/device/framing/frame-codec';
import type { Transport, TransportCloseReason } from '../../src/device/transport/transport';
import { fieldAt, firstDifference, type Transcript, type TranscriptLine } from './transcript';

export class TranscriptMismatch extends Error {}

function describe(line: TranscriptLine): string {
  const hex = line.bytes.toString('hex');
  return `line ${line.lineNo} (${line.dir} ${hex.length > 48 ? `${hex.slice(0, 48)}...` : hex})`;
}

export class ScriptedTransport implements Transport {
  private next = 0;
  private pending = Buffer.alloc(0);
  private readonly dataListeners: Array<(chunk: Buffer) => void> = [];
  private readonly closeListeners: Array<(reason: TransportCloseReason, error?: Error) => void> = [];
  private opened = false;
  private closed = false;
  readonly failures: string[] = [];

  constructor(
    private readonly transcript: Transcript,
    readonly path = '/dev/ttySCRIPTED0',
  ) {}

  async open(): Promise<void> {
    this.opened = true;
    this.playDeviceFrames(); // a transcript may start with frames the device sends unasked
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (reason: TransportCloseReason, error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners) l('closed');
  }

  private fail(message: string): never {
    this.failures.push(message);
    throw new TranscriptMismatch(message);
  }

  async write(bytes: Buffer): Promise<void> {
    if (this.closed) this.fail('the station wrote after closing the transport');
    this.pending = Buffer.concat([this.pending, bytes]);
    while (this.pending.length > 0) {
      const line = this.transcript.lines[this.next];
      if (!line || line.dir !== '=>') {
        const wrote = this.pending.toString('hex');
        this.pending = Buffer.alloc(0);
        this.fail(
          line
            ? `leftover frame: the station wrote ${wrote} but the device speaks next (${describe(line)})`
            : `leftover frame: the station wrote ${wrote} after the end of the transcript`,
        );
      }
      const expected = line.bytes;
      // a frame's own length field says how long it is: a shorter or longer one is wrong at once
      const actualLength = this.pending.length >= FRAME_HEADER_BYTES ? FRAME_OVERHEAD_BYTES + this.pending.readUInt16BE(8) : undefined;
      if (actualLength !== undefined && actualLength !== expected.length) {
        const wrote = this.pending.subarray(0, actualLength).toString('hex');
        this.pending = Buffer.alloc(0);
        this.fail(`wrong frame at ${describe(line)}: the station wrote a ${actualLength}-byte frame ${wrote}, the transcript has ${expected.length} bytes`);
      }
      if (this.pending.length < expected.length) return; // the rest of the frame comes in a later write
      const actual = this.pending.subarray(0, expected.length);
      const at = firstDifference(actual, expected, line.mask);
      if (at >= 0) {
        this.pending = Buffer.alloc(0);
        this.fail(
          `wrong frame at ${describe(line)}: ${fieldAt(at, expected.length)} (offset ${at}) is ${actual[at]?.toString(16).padStart(2, '0')}, ` +
            `the transcript has ${expected[at]?.toString(16).padStart(2, '0')}; the station wrote ${actual.toString('hex')}`,
        );
      }
      this.pending = this.pending.subarray(expected.length);
      this.next++;
      this.playDeviceFrames();
    }
  }

  /** Deliver the `<=` lines up to the next `=>` (asynchronously, in order, like a device). */
  private playDeviceFrames(): void {
    if (!this.opened) return;
    while (this.transcript.lines[this.next]?.dir === '<=') {
      const frame = this.transcript.lines[this.next++]!.bytes;
      setImmediate(() => {
        if (this.closed) return;
        for (const l of this.dataListeners) l(Buffer.from(frame));
      });
    }
  }

  /** Lines not played yet. */
  get remaining(): number {
    return this.transcript.lines.length - this.next;
  }

  /** Throws unless every line was played, no write failed, and nothing half-written is left. */
  assertComplete(): void {
    const problems = [...this.failures];
    if (this.pending.length > 0) problems.push(`the station left ${this.pending.length} bytes of an unfinished frame: ${this.pending.toString('hex')}`);
    const missing = this.transcript.lines[this.next];
    if (missing) problems.push(`missing frame: the station never got to ${describe(missing)} (${this.remaining} line(s) left)`);
    if (problems.length > 0) throw new TranscriptMismatch(problems.join('\n'));
  }
}
