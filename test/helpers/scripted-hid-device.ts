/**
 * A stand-in for node-hid's HIDAsync object (the reference machine has no hidraw and no uhid, so
 * HidTransport is tested against this). Its far end is a function from each output report written
 * to the input reports it answers with; it can be unplugged.
 *
 * Behaviour copied from node-hid 3.4 (nodehid.js, src/read.cc, src/HIDAsync.cc):
 * - `write` takes the report-id byte first, and rejects once the device is gone or closed;
 * - input reports arrive as Buffers through 'data', only while a 'data' listener exists,
 *   asynchronously (here: on setImmediate), without the report-id byte for unnumbered reports;
 * - a read failure is emitted once as 'error' with a *string*, and reading stops;
 * - `close` fails writes still queued, rejects on a second call ("device is already closed") and
 *   removes all listeners.
 */
import { EventEmitter } from 'node:events';
import type { HidDeviceLike } from '../../src/device/transport/hid-transport';
import { FrameDecoder, encodeFrame, type Frame } from '../../src/device/framing/frame-codec';
import { HidReportAssembler, HidReportCodec } from '../../src/device/framing/hid-reports';

/** The far end: one output report (without its report-id byte) in, input reports out. */
export type HidFarEnd = (report: Buffer) => Buffer[];

export interface ScriptedHidDeviceOptions {
  vendorId?: number;
  productId?: number;
}

export class ScriptedHidDevice extends EventEmitter implements HidDeviceLike {
  /** Every write as it was made: report-id byte first. */
  readonly writes: Buffer[] = [];
  private unplugged = false;
  private closed = false;
  private held: Array<() => void> | undefined;
  private readonly pendingWrites = new Set<(err: Error) => void>();

  constructor(
    private farEnd: HidFarEnd,
    private readonly info: ScriptedHidDeviceOptions = {},
  ) {
    super();
  }

  /** Replace the far end (the contract suite sets one per test). */
  answerWith(farEnd: HidFarEnd): void {
    this.farEnd = farEnd;
  }

  /** Hold every write until `release()`: a write then stays in flight, as on a busy USB bus. */
  holdWrites(): { release(): void } {
    this.held = [];
    return {
      release: () => {
        const held = this.held ?? [];
        this.held = undefined;
        for (const go of held) go();
      },
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async write(values: number[]): Promise<number> {
    if (this.closed) throw new TypeError('device has been closed');
    if (this.unplugged) throw new Error('Cannot write to hid device');
    const bytes = Buffer.from(values);
    this.writes.push(bytes);
    if (this.held) {
      await new Promise<void>((resolve, reject) => {
        this.held!.push(resolve);
        this.pendingWrites.add(reject);
      });
      if (this.unplugged) throw new Error('Cannot write to hid device');
    }
    const answers = this.farEnd(bytes.subarray(1));
    for (const a of answers) this.deliver(a);
    return values.length;
  }

  /** Send an input report the far end did not answer with (garbage, another channel). */
  inject(report: Buffer): void {
    this.deliver(report);
  }

  /** The cable is pulled: reads fail once (as a string, like node-hid), writes fail from now on. */
  unplug(): void {
    if (this.unplugged) return;
    this.unplugged = true;
    for (const reject of this.pendingWrites) reject(new Error('Cannot write to hid device'));
    this.pendingWrites.clear();
    if (!this.closed) this.emit('error', 'could not read from HID device: No such device');
  }

  async close(): Promise<void> {
    if (this.closed) throw new TypeError('device is already closed');
    this.closed = true;
    for (const reject of this.pendingWrites) reject(new TypeError('device has been closed'));
    this.pendingWrites.clear();
    this.removeAllListeners();
  }

  async getDeviceInfo(): Promise<{ vendorId: number; productId: number }> {
    if (this.closed) throw new TypeError('device has been closed');
    return { vendorId: this.info.vendorId ?? 0x1209, productId: this.info.productId ?? 0x0001 };
  }

  private deliver(report: Buffer): void {
    setImmediate(() => {
      if (this.closed || this.unplugged || this.listenerCount('data') === 0) return;
      this.emit('data', Buffer.from(report));
    });
  }
}

/** The far end's reply to one v1 frame: the messages (v1 frames as bytes) it sends back. */
export type FrameResponder = (frame: Frame) => Buffer[];

/**
 * A far end that speaks HID reports on `channel`: it reassembles each message, reads the v1
 * frames in it and answers each with the responder's messages, cut into reports again.
 */
export function hidFrameFarEnd(channel: number, respond: FrameResponder): HidFarEnd {
  const codec = new HidReportCodec();
  const assembler = new HidReportAssembler(channel, codec);
  const decoder = new FrameDecoder();
  return (report) => {
    const message = assembler.push(report);
    if (!message) return [];
    return decoder.push(message).flatMap((frame) => respond(frame).flatMap((m) => codec.encode(m, channel)));
  };
}

/** Echo: the same frame back, byte for byte. */
export const echoFrames: FrameResponder = (frame) => [encodeFrame(frame)];
