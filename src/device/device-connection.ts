/**
 * Request/response over a Transport: sequence numbers, one exchange in flight, fragmentation
 * of messages larger than the peer's MAX_PAYLOAD (acknowledged fragment by fragment), a timeout
 * per frame awaited naming the port and command, stale or unsolicited frames dropped, and
 * device status codes turned into typed DeviceErrors.
 */
import { DeviceError } from '../core/errors';
import type { Logger } from '../core/logger';
import { silentLogger } from '../core/logger';
import { FLAG_ACK, FLAG_MORE, FLAG_RESPONSE, FrameDecoder, MAX_PAYLOAD_BYTES, encodeFrame, type Frame } from './framing/frame-codec';
import { FragmentError, MAX_MESSAGE_BYTES, splitMessage } from './framing/fragments';
import { TlvReader } from './framing/tlv';
import { Tag, commandName } from './protocol/commands';
import { DEVICE_STATUS_INFO, DeviceStatus } from './protocol/status';
import type { Transport } from './transport/transport';

interface Waiter {
  seq: number;
  command: number;
  resolve: (frame: Frame) => void;
  reject: (err: Error) => void;
  timeoutMs: number;
  /** performance.now() by which the frame must have come. */
  deadline: number;
}

/** The payload of a fragment acknowledgement. */
const NO_PAYLOAD = Buffer.alloc(0);

export interface ExchangeStats {
  requests: number;
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Payload bytes (TLV messages) both ways: the rest of the bytes is framing. */
  payloadBytes: number;
  /** Time from each frame written to the first byte of the frame that answers it, summed. */
  deviceWaitMs: number;
  staleFrames: number;
}

export interface DeviceConnectionOptions {
  /** The seq of the first request (default: random); transcript tests fix it. */
  firstSeq?: number;
}

export class DeviceConnection {
  private readonly decoder = new FrameDecoder(MAX_PAYLOAD_BYTES);
  private waiter: Waiter | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = Math.floor(Math.random() * 0xffff);
  private closedError: DeviceError | undefined;
  private writtenAt = 0;
  private awaitingFirstByte = false;
  /**
   * One timer watches the deadline of whichever frame is awaited (see expectFrame); it fires
   * at deadlineTimerAt (performance.now() time), and holds the process open only while a frame
   * is awaited.
   */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineTimerAt = Infinity;
  version = 1;
  /** The device's MAX_PAYLOAD (from HELLO): larger requests are fragmented. */
  maxPayloadBytes: number;
  /** What this side can take in one frame on this link (announced in HELLO). */
  readonly localMaxPayloadBytes: number;
  readonly stats: ExchangeStats = {
    requests: 0,
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    payloadBytes: 0,
    deviceWaitMs: 0,
    staleFrames: 0,
  };

  constructor(
    private readonly transport: Transport,
    private readonly log: Logger = silentLogger,
    options: DeviceConnectionOptions = {},
  ) {
    if (options.firstSeq !== undefined) this.seq = (options.firstSeq - 1) & 0xffff;
    this.localMaxPayloadBytes = Math.min(transport.maxPayloadBytes ?? MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES);
    this.maxPayloadBytes = this.localMaxPayloadBytes;
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose((reason) => {
      this.closedError = new DeviceError('TRANSPORT_DISCONNECTED', `The device on ${transport.path} went away (${reason}).`, {
        retryable: true,
        details: { port: transport.path },
      });
      this.failWaiter(this.closedError);
      this.stopDeadlineTimer();
    });
  }

  get port(): string {
    return this.transport.path;
  }

  /** Send one request message and wait for its whole reply; requests are serialised. */
  request(command: number, payload: Buffer, timeoutMs: number): Promise<TlvReader> {
    const run = () => this.exchange(command, payload, timeoutMs);
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async exchange(command: number, payload: Buffer, timeoutMs: number): Promise<TlvReader> {
    if (this.closedError) throw this.closedError;
    this.seq = (this.seq + 1) & 0xffff;
    const seq = this.seq;
    this.stats.requests++;
    let fragments: Buffer[];
    try {
      fragments = splitMessage(payload, this.maxPayloadBytes);
    } catch (err) {
      throw new DeviceError('DEVICE_PAYLOAD_TOO_LARGE', `${commandName(command)} for ${this.transport.path} is too large: ${(err as FragmentError).message}.`, {
        details: { port: this.transport.path, command: commandName(command) },
      });
    }
    this.stats.payloadBytes += payload.length;

    for (let i = 0; i < fragments.length; i++) {
      const more = i < fragments.length - 1;
      const next = this.expectFrame(seq, command, timeoutMs);
      await this.writeFrame({ version: this.version, flags: more ? FLAG_MORE : 0, seq, command, status: 0, payload: fragments[i]! }, next);
      if (!more) {
        // the reply is awaited below with the waiter armed here
        return this.readReply(seq, command, timeoutMs, next);
      }
      const ack = await next;
      if (ack.status !== DeviceStatus.OK) throw this.statusError(command, ack);
      if (!(ack.flags & FLAG_ACK)) {
        throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${this.transport.path} answered fragment ${i + 1} of ${commandName(command)} with something other than an acknowledgement.`, {
          details: { port: this.transport.path },
        });
      }
    }
    throw new Error('unreachable');
  }

  private async readReply(seq: number, command: number, timeoutMs: number, first: Promise<Frame>): Promise<TlvReader> {
    const parts: Buffer[] = [];
    let total = 0;
    let pending = first;
    for (;;) {
      const frame = await pending;
      if (frame.status !== DeviceStatus.OK) throw this.statusError(command, frame);
      if (frame.flags & FLAG_ACK) {
        throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${this.transport.path} acknowledged a fragment that was not sent (${commandName(command)}).`, {
          details: { port: this.transport.path },
        });
      }
      total += frame.payload.length;
      if (total > MAX_MESSAGE_BYTES) {
        throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${this.transport.path} sent a ${commandName(command)} reply over ${MAX_MESSAGE_BYTES} bytes.`, {
          details: { port: this.transport.path },
        });
      }
      parts.push(frame.payload);
      if (!(frame.flags & FLAG_MORE)) break;
      pending = this.expectFrame(seq, command, timeoutMs);
      await this.writeFrame({ version: this.version, flags: FLAG_ACK, seq, command, status: 0, payload: NO_PAYLOAD }, pending);
    }
    const message = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.stats.payloadBytes += message.length;
    try {
      return TlvReader.from(message);
    } catch (err) {
      throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${this.transport.path} sent a malformed ${commandName(command)} reply: ${(err as Error).message}.`, {
        details: { port: this.transport.path },
      });
    }
  }

  private statusError(command: number, frame: Frame): DeviceError {
    const info = DEVICE_STATUS_INFO[frame.status];
    let detail = '';
    try {
      detail = TlvReader.from(frame.payload).optional(Tag.ERROR_DETAIL)?.toString('utf8') ?? '';
    } catch {
      detail = '';
    }
    return new DeviceError(
      info?.errorCode ?? 'DEVICE_ERROR',
      `The device on ${this.transport.path} refused ${commandName(command)}: ${info?.meaning ?? `status 0x${frame.status.toString(16)}`}${detail ? ` (${detail})` : ''}.`,
      { details: { port: this.transport.path, command: commandName(command), status: info?.name ?? frame.status } },
    );
  }

  /**
   * Arm a waiter for the next frame answering (seq, command), due within timeoutMs.
   *
   * The deadline is watched by one long-lived timer rather than a timer per frame: creating and
   * clearing a Node timer for every frame was about a tenth of the link's JS per round trip, and
   * a frame almost always comes long before its deadline (milliseconds against seconds). The
   * timer is moved only when this deadline comes before the time it is set for; when it fires
   * before the deadline of the frame now awaited, it is set again for the rest (reckoned from
   * the time it was set for, not from a clock read: like the timer, the deadline is never early).
   */
  private expectFrame(seq: number, command: number, timeoutMs: number): Promise<Frame> {
    const p = new Promise<Frame>((resolve, reject) => {
      const deadline = performance.now() + timeoutMs;
      this.waiter = { seq, command, resolve, reject, timeoutMs, deadline };
      if (deadline < this.deadlineTimerAt) this.setDeadlineTimer(deadline, timeoutMs);
      else this.deadlineTimer?.ref();
    });
    // a rejection before anyone awaits must not be reported as unhandled
    p.catch(() => undefined);
    return p;
  }

  private setDeadlineTimer(at: number, ms: number): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = at;
    this.deadlineTimer = setTimeout(this.onDeadlineTimer, Math.ceil(ms));
  }

  private stopDeadlineTimer(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Infinity;
  }

  private readonly onDeadlineTimer = (): void => {
    const firedFor = this.deadlineTimerAt;
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Infinity;
    const w = this.waiter;
    if (!w) return; // nothing awaited: set again by the next expectFrame
    if (w.deadline > firedFor) {
      this.setDeadlineTimer(w.deadline, w.deadline - firedFor);
      return;
    }
    this.waiter = undefined;
    this.decoder.reset();
    w.reject(
      new DeviceError(
        'DEVICE_TIMEOUT',
        `The device on ${this.transport.path} did not answer ${commandName(w.command)} within ${w.timeoutMs} ms. Check the cable and that the device is powered.`,
        { retryable: true, details: { port: this.transport.path, command: commandName(w.command), timeoutMs: w.timeoutMs } },
      ),
    );
  };

  /** The frame awaited came (or failed): the deadline timer no longer holds the process open. */
  private settleWaiter(): Waiter | undefined {
    const w = this.waiter;
    this.waiter = undefined;
    this.deadlineTimer?.unref();
    return w;
  }

  private async writeFrame(frame: Frame, armed: Promise<Frame>): Promise<void> {
    if (this.closedError) throw this.closedError;
    const bytes = encodeFrame(frame, MAX_PAYLOAD_BYTES);
    this.log.trace({ tx: bytes.length, command: commandName(frame.command), seq: frame.seq, flags: frame.flags }, 'tx');
    this.awaitingFirstByte = true;
    this.writtenAt = performance.now();
    this.stats.framesSent++;
    this.stats.bytesSent += bytes.length;
    try {
      await this.transport.write(bytes);
    } catch (err) {
      this.failWaiter(err as Error);
      await armed.catch(() => undefined);
      throw err;
    }
  }

  private onData(chunk: Buffer): void {
    if (this.awaitingFirstByte) {
      this.awaitingFirstByte = false;
      this.stats.deviceWaitMs += performance.now() - this.writtenAt;
    }
    this.stats.bytesReceived += chunk.length;
    for (const frame of this.decoder.push(chunk)) {
      this.stats.framesReceived++;
      const w = this.waiter;
      if (!w || (frame.flags & FLAG_RESPONSE) === 0 || frame.seq !== w.seq || frame.command !== w.command || frame.version !== this.version) {
        this.stats.staleFrames++;
        this.log.debug({ seq: frame.seq, command: commandName(frame.command) }, 'dropped a stale or unsolicited frame');
        continue;
      }
      this.settleWaiter();
      w.resolve(frame);
    }
  }

  private failWaiter(err: Error): void {
    this.settleWaiter()?.reject(err);
  }

  async close(): Promise<void> {
    this.failWaiter(new DeviceError('TRANSPORT_CLOSED', `The connection to ${this.transport.path} was closed.`));
    this.stopDeadlineTimer();
    await this.transport.close();
  }
}
