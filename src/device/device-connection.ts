/**
 * Request/response over a Transport: sequence numbers, one exchange in flight, a timeout per
 * exchange naming the port and command, stale or unsolicited replies dropped, and device status
 * codes turned into typed DeviceErrors.
 */
import { DeviceError } from '../core/errors';
import type { Logger } from '../core/logger';
import { silentLogger } from '../core/logger';
import { FLAG_RESPONSE, FrameDecoder, MAX_PAYLOAD_BYTES, encodeFrame, type Frame } from './framing/frame-codec';
import { commandName } from './protocol/commands';
import { DEVICE_STATUS_INFO, DeviceStatus } from './protocol/status';
import { Tag } from './protocol/commands';
import { TlvReader } from './framing/tlv';
import type { Transport } from './transport/transport';

interface Pending {
  seq: number;
  command: number;
  resolve: (frame: Frame) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface ExchangeStats {
  requests: number;
  bytesSent: number;
  bytesReceived: number;
  /** Time from each request written to the first byte of its reply, summed. */
  deviceWaitMs: number;
  staleFrames: number;
}

export class DeviceConnection {
  private readonly decoder = new FrameDecoder(MAX_PAYLOAD_BYTES);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = Math.floor(Math.random() * 0xffff);
  private closedError: DeviceError | undefined;
  private writtenAt = 0;
  private firstByteSeen = false;
  version = 1;
  /** The device's advertised maximum payload (IDENTIFY); requests above it are refused here. */
  maxPayloadBytes = MAX_PAYLOAD_BYTES;
  readonly stats: ExchangeStats = { requests: 0, bytesSent: 0, bytesReceived: 0, deviceWaitMs: 0, staleFrames: 0 };

  constructor(
    private readonly transport: Transport,
    private readonly log: Logger = silentLogger,
  ) {
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose((reason) => {
      this.closedError = new DeviceError(
        'TRANSPORT_DISCONNECTED',
        `The device on ${transport.path} went away (${reason}).`,
        { retryable: true, details: { port: transport.path } },
      );
      this.failPending(this.closedError);
    });
  }

  get port(): string {
    return this.transport.path;
  }

  /** Send one request and wait for its reply; requests are serialised. */
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
    if (payload.length > this.maxPayloadBytes) {
      throw new DeviceError(
        'DEVICE_PAYLOAD_TOO_LARGE',
        `${commandName(command)} needs ${payload.length} bytes, more than the ${this.maxPayloadBytes} bytes the device on ${this.transport.path} accepts in one frame.`,
        { details: { port: this.transport.path, command: commandName(command) } },
      );
    }
    const bytes = encodeFrame({ version: this.version, flags: 0, seq, command, status: 0, payload });
    const reply = new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.decoder.reset();
        reject(
          new DeviceError(
            'DEVICE_TIMEOUT',
            `The device on ${this.transport.path} did not answer ${commandName(command)} within ${timeoutMs} ms. Check the cable and that the device is powered.`,
            { retryable: true, details: { port: this.transport.path, command: commandName(command), timeoutMs } },
          ),
        );
      }, timeoutMs);
      this.pending = { seq, command, resolve, reject, timer };
    });
    this.log.trace({ tx: bytes.toString('hex'), command: commandName(command), seq }, 'tx');
    this.firstByteSeen = false;
    this.writtenAt = performance.now();
    this.stats.requests++;
    this.stats.bytesSent += bytes.length;
    try {
      await this.transport.write(bytes);
    } catch (err) {
      if (this.pending) {
        clearTimeout(this.pending.timer);
        this.pending = undefined;
      }
      throw err;
    }
    const frame = await reply;
    if (frame.status !== DeviceStatus.OK) {
      const info = DEVICE_STATUS_INFO[frame.status];
      let detail = '';
      try {
        detail = TlvReader.from(frame.payload).optional(Tag.ERROR_DETAIL)?.toString('utf8') ?? '';
      } catch {
        detail = '';
      }
      throw new DeviceError(
        info?.errorCode ?? 'DEVICE_ERROR',
        `The device on ${this.transport.path} refused ${commandName(command)}: ${info?.meaning ?? `status 0x${frame.status.toString(16)}`}${detail ? ` (${detail})` : ''}.`,
        { details: { port: this.transport.path, command: commandName(command), status: info?.name ?? frame.status } },
      );
    }
    try {
      return TlvReader.from(frame.payload);
    } catch (err) {
      throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${this.transport.path} sent a malformed ${commandName(command)} reply: ${(err as Error).message}.`, {
        details: { port: this.transport.path },
      });
    }
  }

  private onData(chunk: Buffer): void {
    if (!this.firstByteSeen && this.pending) {
      this.firstByteSeen = true;
      this.stats.deviceWaitMs += performance.now() - this.writtenAt;
    }
    this.stats.bytesReceived += chunk.length;
    for (const frame of this.decoder.push(chunk)) {
      const p = this.pending;
      if (!p || (frame.flags & FLAG_RESPONSE) === 0 || frame.seq !== p.seq || frame.command !== p.command || frame.version !== this.version) {
        this.stats.staleFrames++;
        this.log.debug({ seq: frame.seq, command: commandName(frame.command) }, 'dropped a stale or unsolicited frame');
        continue;
      }
      this.log.trace({ rx: frame.payload.length, status: frame.status, seq: frame.seq }, 'rx');
      clearTimeout(p.timer);
      this.pending = undefined;
      p.resolve(frame);
    }
  }

  private failPending(err: Error): void {
    const p = this.pending;
    if (!p) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    p.reject(err);
  }

  async close(): Promise<void> {
    this.failPending(new DeviceError('TRANSPORT_CLOSED', `The connection to ${this.transport.path} was closed.`));
    await this.transport.close();
  }
}
