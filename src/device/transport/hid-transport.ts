/**
 * Transport over USB HID (node-hid). With hid-device-list.ts (listing), the only files that
 * import node-hid.
 *
 * Each `write` is one complete protocol v1 frame (the DeviceConnection above writes whole frames,
 * one exchange at a time); it travels as one HID message: 64-byte reports made by
 * HidReportCodec on this transport's channel. Reports coming back are reassembled per channel
 * by HidReportAssembler and each completed message reaches `onData` as one chunk, which the
 * FrameDecoder above reads like any other byte stream. Reports that break the HID framing rules
 * are dropped and counted in `stats.rejected` (by code); the link stays up.
 *
 * node-hid API: the asynchronous `HIDAsync`, not the synchronous `HID`. With `HID`, `write` and
 * `new HID()` block the event loop (one stuck USB write would stall every port of the station
 * and its timers), and each device's reads hold one of libuv's 4 default thread-pool workers,
 * which the station shares with fs, crypto and zlib; `HIDAsync` opens, writes and closes on
 * its own work queue, reads on its own thread, and reports failures as promise rejections.
 *
 * Unplug: node-hid emits one 'error' (a string, from its read thread) and stops reading; a write
 * to a device that is gone rejects. Either one closes the link: `onClose('disconnected')` fires
 * once, a write in flight rejects, later writes reject. A failed write always closes the link,
 * since half a message may be on the wire. `close` is idempotent. An instance is single-use:
 * after it closed, make a new one.
 */
import { HIDAsync } from 'node-hid';
import { DeviceError } from '../../core/errors';
import { FRAME_OVERHEAD_BYTES } from '../framing/frame-codec';
import {
  HID_MAX_MESSAGE_BYTES,
  HidReportAssembler,
  HidReportCodec,
  HidReportError,
  type HidReportErrorCode,
} from '../framing/hid-reports';
import type { Transport, TransportCloseReason } from './transport';

/** The largest v1 payload one HID message carries: 7609 - 14 = 7595 bytes (serial: 8192). */
export const HID_MAX_V1_PAYLOAD_BYTES = HID_MAX_MESSAGE_BYTES - FRAME_OVERHEAD_BYTES;
/** The channel used unless configured: 0 and 0xffffffff are avoided (CTAPHID reserves them). */
export const HID_DEFAULT_CHANNEL = 0x00000001;

/** The part of node-hid's HIDAsync this transport uses (a test double implements just this). */
export interface HidDeviceLike {
  /** Input reports, as node-hid delivers them (starting with the report id for numbered reports). */
  on(event: 'data', listener: (report: Buffer) => void): unknown;
  /** A read failure (node-hid passes a string); node-hid stops reading after it. */
  on(event: 'error', listener: (error: unknown) => void): unknown;
  /** One output report, report-id byte first; resolves once hidapi wrote it. */
  write(values: number[]): Promise<number>;
  close(): Promise<void>;
  getDeviceInfo(): Promise<{ vendorId: number; productId: number }>;
}

export interface HidTransportOptions {
  /** The hidapi path (on Linux with hidraw: `/dev/hidrawN`). */
  path: string;
  /** Checked against the opened device when given; named in error messages. */
  vendorId?: number;
  productId?: number;
  /** HID channel id (u32) of this link; the device answers on the same channel. */
  channel?: number;
  /** Report id written in front of every output report: 0x00 for a device without numbered reports. */
  reportId?: number;
  /** Opens the device; default `HIDAsync.open(path)`. Tests pass a scripted device. */
  openDevice?: (path: string) => Promise<HidDeviceLike>;
  /** For the wording of open failures (udev hint on Linux); default process.platform. */
  platform?: NodeJS.Platform;
}

export interface HidTransportStats {
  reportsWritten: number;
  reportsRead: number;
  messagesWritten: number;
  messagesRead: number;
  /** Input reports dropped, by HidReportError code. */
  rejected: Partial<Record<HidReportErrorCode, number>>;
}

interface InFlight {
  reject: (err: Error) => void;
}

export class HidTransport implements Transport {
  readonly maxPayloadBytes = HID_MAX_V1_PAYLOAD_BYTES;
  readonly path: string;
  /** The largest frame one `write` takes (HID_MAX_MESSAGE_BYTES). */
  readonly maxFrameBytes = HID_MAX_MESSAGE_BYTES;
  readonly channel: number;
  readonly stats: HidTransportStats = { reportsWritten: 0, reportsRead: 0, messagesWritten: 0, messagesRead: 0, rejected: {} };
  private readonly options: HidTransportOptions;
  private readonly codec = new HidReportCodec();
  private readonly assembler: HidReportAssembler;
  private readonly dataListeners: Array<(chunk: Buffer) => void> = [];
  private readonly closeListeners: Array<(reason: TransportCloseReason, error?: Error) => void> = [];
  private device: HidDeviceLike | undefined;
  private opening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private closed = false;
  private writeQueue: Promise<unknown> = Promise.resolve();
  private readonly inFlight = new Set<InFlight>();

  constructor(options: HidTransportOptions) {
    this.options = options;
    this.path = options.path;
    this.channel = options.channel ?? HID_DEFAULT_CHANNEL;
    this.assembler = new HidReportAssembler(this.channel, this.codec);
  }

  /** "VID:PID 1234:abcd", or "VID:PID unknown". */
  get usbId(): string {
    const { vendorId, productId } = this.options;
    return vendorId === undefined || productId === undefined ? 'VID:PID unknown' : `VID:PID ${hex4(vendorId)}:${hex4(productId)}`;
  }

  open(): Promise<void> {
    if (this.closed || this.closing) return Promise.reject(this.openFailed('the transport was closed; open a new one'));
    if (!this.opening) {
      const opening = this.doOpen();
      this.opening = opening;
      // a failed open may be retried
      opening.catch(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    }
    return this.opening;
  }

  private async doOpen(): Promise<void> {
    const openDevice = this.options.openDevice ?? ((path: string) => HIDAsync.open(path));
    let device: HidDeviceLike;
    try {
      device = await openDevice(this.path);
    } catch (err) {
      throw this.openFailed(errorMessage(err), err);
    }
    const { vendorId, productId } = this.options;
    if (vendorId !== undefined || productId !== undefined) {
      let info: { vendorId: number; productId: number };
      try {
        info = await device.getDeviceInfo();
      } catch (err) {
        await device.close().catch(() => undefined);
        throw this.openFailed(`cannot read its device descriptor: ${errorMessage(err)}`, err);
      }
      if ((vendorId !== undefined && info.vendorId !== vendorId) || (productId !== undefined && info.productId !== productId)) {
        await device.close().catch(() => undefined);
        throw this.openFailed(`it is ${hex4(info.vendorId)}:${hex4(info.productId)}, not the configured device (HID paths move when devices are replugged)`, undefined, false);
      }
    }
    if (this.closed || this.closing) {
      await device.close().catch(() => undefined);
      throw this.openFailed('the transport was closed while opening');
    }
    this.device = device;
    device.on('error', (error: unknown) => this.disconnect(toError(error)));
    device.on('data', (report: Buffer) => this.onReport(report));
  }

  /** Send one v1 frame as one HID message. */
  write(bytes: Buffer): Promise<void> {
    const run = () => this.writeMessage(bytes);
    const p = this.writeQueue.then(run, run);
    this.writeQueue = p.catch(() => undefined);
    return p;
  }

  private async writeMessage(bytes: Buffer): Promise<void> {
    const device = this.device;
    if (!device || this.closed || this.closing) {
      throw this.writeFailed(this.closed || this.closing ? 'the link is closed' : 'the device is not open');
    }
    if (bytes.length === 0) return;
    if (bytes.length > HID_MAX_MESSAGE_BYTES) {
      throw new DeviceError(
        'DEVICE_PAYLOAD_TOO_LARGE',
        `A ${bytes.length}-byte frame does not fit in one HID message to ${this.path} (at most ${HID_MAX_MESSAGE_BYTES} bytes, a v1 payload of ${HID_MAX_V1_PAYLOAD_BYTES}).`,
        { details: { port: this.path, frameBytes: bytes.length, maxFrameBytes: HID_MAX_MESSAGE_BYTES } },
      );
    }
    const reportId = this.options.reportId ?? 0;
    const reports = this.codec.encode(bytes, this.channel);
    let entry: InFlight | undefined;
    const aborted = new Promise<never>((_, reject) => {
      entry = { reject };
      this.inFlight.add(entry);
    });
    aborted.catch(() => undefined);
    try {
      for (const report of reports) {
        if (this.closed) break;
        const values = new Array<number>(report.length + 1);
        values[0] = reportId;
        for (let i = 0; i < report.length; i++) values[i + 1] = report[i]!;
        try {
          await Promise.race([device.write(values), aborted]);
        } catch (err) {
          if (err instanceof DeviceError) throw err; // aborted by close or unplug
          const failure = this.writeFailed(errorMessage(err), err);
          this.disconnect(failure);
          throw failure;
        }
        this.stats.reportsWritten++;
      }
      if (this.closed) await aborted;
      this.stats.messagesWritten++;
    } finally {
      this.inFlight.delete(entry!);
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // wait for an open in progress, so its device is closed too
    await this.opening?.catch(() => undefined);
    if (this.closed) return;
    this.closed = true;
    this.abortWrites(this.writeFailed('the link was closed'));
    const device = this.device;
    if (!device) return;
    await device.close().catch(() => undefined);
    this.emitClose('closed');
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (reason: TransportCloseReason, error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  private onReport(raw: Buffer): void {
    if (this.closed) return;
    this.stats.reportsRead++;
    const reportId = this.options.reportId ?? 0;
    const report = reportId !== 0 && raw[0] === reportId ? raw.subarray(1) : raw;
    let message: Buffer | undefined;
    try {
      message = this.assembler.push(report);
    } catch (err) {
      if (!(err instanceof HidReportError)) throw err;
      this.stats.rejected[err.code] = (this.stats.rejected[err.code] ?? 0) + 1;
      return;
    }
    if (message === undefined || message.length === 0) return;
    this.stats.messagesRead++;
    for (const l of this.dataListeners) l(message);
  }

  /** The device went away (a read error or a failed write). */
  private disconnect(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    const failure = error instanceof DeviceError ? error : this.writeFailed(`the device went away (${error.message})`, error);
    this.abortWrites(failure);
    const device = this.device;
    // release the handle; node-hid stopped reading already
    if (device) void device.close().catch(() => undefined);
    this.emitClose('disconnected', error);
  }

  private abortWrites(err: Error): void {
    for (const w of this.inFlight) w.reject(err);
    this.inFlight.clear();
  }

  private emitClose(reason: TransportCloseReason, error?: Error): void {
    for (const l of this.closeListeners) l(reason, error);
  }

  private openFailed(reason: string, cause?: unknown, hint = true): DeviceError {
    const { vendorId, productId } = this.options;
    const platform = this.options.platform ?? process.platform;
    let message = `Cannot open HID device ${this.path} (${this.usbId}): ${reason}.`;
    if (hint && platform === 'linux') {
      const vid = vendorId === undefined ? '<vid>' : hex4(vendorId);
      const pid = productId === undefined ? '<pid>' : hex4(productId);
      message +=
        ` On Linux, /dev/hidraw* nodes are readable by root only unless a udev rule grants access: for example` +
        ` KERNEL=="hidraw*", ATTRS{idVendor}=="${vid}", ATTRS{idProduct}=="${pid}", MODE="0660", GROUP="plugdev"` +
        ` in /etc/udev/rules.d/70-provisioning-station.rules, then \`udevadm control --reload-rules && udevadm trigger\` and replug the device.`;
    }
    return new DeviceError('TRANSPORT_OPEN_FAILED', message, {
      stage: 'connect',
      cause,
      details: {
        port: this.path,
        vendorId: vendorId === undefined ? null : hex4(vendorId),
        productId: productId === undefined ? null : hex4(productId),
      },
    });
  }

  private writeFailed(reason: string, cause?: unknown): DeviceError {
    return new DeviceError('TRANSPORT_WRITE_FAILED', `Writing to HID device ${this.path} failed: ${reason}.`, {
      retryable: true,
      cause,
      details: { port: this.path },
    });
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
