/**
 * The device's side of the link, independent of the wire: decodes frames, reassembles request
 * fragments (acknowledging each), hands whole messages to the firmware, and sends replies in
 * fragments no larger than the station's MAX_PAYLOAD, each after the station's acknowledgement.
 *
 * Like a single-threaded device, it handles one request at a time: while a reply is held back
 * (a latency floor, a `delay` or `slow-se` fault) the frames that arrive wait in a small receive
 * buffer, and are lost when it is full. It also plays the link faults (faults.ts).
 */
import { FLAG_ACK, FLAG_MORE, FLAG_RESPONSE, FRAME_HEADER_BYTES, FrameDecoder, encodeFrame, type Frame } from '../device/framing/frame-codec';
import { FragmentError, MessageAssembler, splitMessage } from '../device/framing/fragments';
import { encodeTlv, tlv } from '../device/framing/tlv';
import { Command, Tag } from '../device/protocol/commands';
import { DeviceStatus } from '../device/protocol/status';
import { SE_COMMANDS, linkFaultsFor, type LinkFault, type LinkFaultKind } from './faults';
import { latencyFloorMs, type SimTiming } from './link-timing';

export interface FirmwareReply {
  status: number;
  payload: Buffer;
}

export interface Firmware {
  /** Handle one whole request; undefined means the device stays silent. */
  handleRequest(command: number, payload: Buffer): FirmwareReply | undefined;
  /** The station's MAX_PAYLOAD from HELLO. */
  readonly peerMaxPayloadBytes: number;
  /** This device's MAX_PAYLOAD. */
  readonly maxPayloadBytes: number;
  /** Devices presented on the port so far: a HELLO that changes it boots a new device. */
  readonly devicesPresented?: number;
}

export interface DeviceLinkOptions {
  /** Link faults to play (faults.ts). */
  faults?: readonly LinkFault[];
  /** Latency floors (SE keygen, flash writes, boot); undefined = answer as fast as possible. */
  timing?: SimTiming;
  /** The device went away (a `disconnect` fault): the port owner closes the wire. */
  onDisconnect?: () => void;
  /** Frames held while the device is busy; the default is 8. */
  receiveBufferFrames?: number;
  now?: () => number;
}

export interface DeviceLinkStats {
  framesIn: number;
  framesOut: number;
  /** Frames lost to a `drop` fault or a full receive buffer. */
  framesLost: number;
  framesCorrupted: number;
}

export class DeviceLink {
  private readonly decoder: FrameDecoder;
  private readonly assembler = new MessageAssembler();
  private readonly faults: readonly LinkFault[];
  private readonly now: () => number;
  private readonly receiveBufferFrames: number;
  /** Reply fragments still to send, after the station acknowledges the previous one. */
  private outgoing: { seq: number; command: number; version: number; fragments: Buffer[] } | undefined;
  private readonly inbox: Frame[] = [];
  private busyTimer: NodeJS.Timeout | undefined;
  private bootedDevice: number | undefined;
  private gone = false;
  readonly stats: DeviceLinkStats = { framesIn: 0, framesOut: 0, framesLost: 0, framesCorrupted: 0 };

  constructor(
    private readonly firmware: Firmware,
    private readonly send: (bytes: Buffer) => void,
    private readonly options: DeviceLinkOptions = {},
  ) {
    this.decoder = new FrameDecoder(firmware.maxPayloadBytes);
    this.faults = options.faults ?? [];
    this.now = options.now ?? (() => performance.now());
    this.receiveBufferFrames = options.receiveBufferFrames ?? 8;
  }

  /** The device went away (it plays no more frames). */
  get disconnected(): boolean {
    return this.gone;
  }

  /** Bytes held by the frame decoder that do not form a frame yet. */
  get pendingBytes(): number {
    return this.decoder.pendingBytes;
  }

  push(chunk: Buffer): void {
    if (this.gone) return;
    for (const frame of this.decoder.push(chunk)) {
      this.stats.framesIn++;
      if (this.inbox.length >= this.receiveBufferFrames) {
        this.stats.framesLost++;
        continue;
      }
      this.inbox.push(frame);
      this.pump(); // an idle device handles it at once; a busy one leaves it in the buffer
    }
  }

  /** Stop: cancel a reply held back, forget queued frames. */
  close(): void {
    if (this.busyTimer) clearTimeout(this.busyTimer);
    this.busyTimer = undefined;
    this.inbox.length = 0;
    this.outgoing = undefined;
  }

  private pump(): void {
    while (!this.busyTimer && !this.gone && this.inbox.length > 0) this.onFrame(this.inbox.shift()!);
  }

  private has(kind: LinkFaultKind, command: number): LinkFault[] {
    return this.faults.length === 0 ? [] : linkFaultsFor(this.faults, kind, command);
  }

  private encodeReply(req: Frame, flags: number, status: number, payload: Buffer): Buffer {
    const wrongSeq = this.has('wrong-seq', req.command).length > 0;
    const bytes = encodeFrame({
      version: req.version,
      flags: FLAG_RESPONSE | flags,
      seq: wrongSeq ? (req.seq + 0x8000) & 0xffff : req.seq,
      command: req.command,
      status,
      payload,
    });
    if (this.has('corrupt', req.command).length > 0) {
      // a bit error past the header: the frame still looks like one, but its CRC fails
      bytes[Math.max(FRAME_HEADER_BYTES, bytes.length >> 1)] ^= 0x10;
      this.stats.framesCorrupted++;
    }
    return bytes;
  }

  /** Send now, or after `delayMs` during which the device handles nothing else. */
  private emit(bytes: Buffer, delayMs: number): void {
    if (delayMs <= 0) {
      this.stats.framesOut++;
      this.send(bytes);
      return;
    }
    this.busyTimer = setTimeout(() => {
      this.busyTimer = undefined;
      if (this.gone) return;
      this.stats.framesOut++;
      this.send(bytes);
      this.pump();
    }, delayMs);
  }

  private disconnect(): void {
    this.gone = true;
    this.close();
    this.options.onDisconnect?.();
  }

  private onFrame(frame: Frame): void {
    if (frame.flags & FLAG_RESPONSE) return;
    if (this.has('drop', frame.command).length > 0) {
      this.stats.framesLost++;
      return;
    }
    if (this.has('disconnect', frame.command).length > 0) {
      this.disconnect();
      return;
    }
    if (frame.flags & FLAG_ACK) {
      const out = this.outgoing;
      if (!out || out.seq !== frame.seq || out.command !== frame.command) return;
      const next = out.fragments.shift()!;
      if (out.fragments.length === 0) this.outgoing = undefined;
      this.emit(this.encodeReply(frame, this.outgoing ? FLAG_MORE : 0, DeviceStatus.OK, next), 0);
      return;
    }
    this.outgoing = undefined; // a new request abandons an unfinished reply
    let message: Buffer | undefined;
    const more = (frame.flags & FLAG_MORE) !== 0;
    try {
      try {
        message = this.assembler.push(frame.seq, frame.command, frame.payload, more);
      } catch (err) {
        // The station only sends another message once it has given up on the unfinished one
        // (a timeout): the assembler has dropped that one, so this frame starts afresh.
        if (!(err instanceof FragmentError && err.code === 'FRAGMENT_MISMATCH')) throw err;
        message = this.assembler.push(frame.seq, frame.command, frame.payload, more);
      }
    } catch (err) {
      const detail = err instanceof FragmentError ? err.message : String(err);
      this.emit(this.encodeReply(frame, 0, DeviceStatus.BAD_REQUEST, encodeTlv([tlv.string(Tag.ERROR_DETAIL, detail)])), 0);
      return;
    }
    if (message === undefined) {
      this.emit(this.encodeReply(frame, FLAG_ACK, DeviceStatus.OK, Buffer.alloc(0)), 0);
      return;
    }
    const started = this.now();
    const result = this.firmware.handleRequest(frame.command, message);
    const elapsed = this.now() - started;
    if (!result) return;

    let delayMs = 0;
    if (this.options.timing) {
      let boot = false;
      if (frame.command === Command.HELLO && result.status === DeviceStatus.OK) {
        const presented = this.firmware.devicesPresented;
        boot = presented === undefined || presented !== this.bootedDevice;
        this.bootedDevice = presented;
      }
      delayMs = Math.max(0, latencyFloorMs(this.options.timing, frame.command, message.length, boot) - elapsed);
    }
    for (const f of this.has('delay', frame.command)) delayMs += f.ms ?? 0;
    if (SE_COMMANDS.has(frame.command)) for (const f of this.has('slow-se', frame.command)) delayMs += f.ms ?? 0;

    let fragments: Buffer[];
    try {
      fragments = result.status === DeviceStatus.OK ? splitMessage(result.payload, this.firmware.peerMaxPayloadBytes) : [result.payload];
    } catch (err) {
      const detail = err instanceof FragmentError ? err.message : 'reply too large';
      this.emit(this.encodeReply(frame, 0, DeviceStatus.INTERNAL, encodeTlv([tlv.string(Tag.ERROR_DETAIL, detail)])), delayMs);
      return;
    }
    const first = fragments.shift()!;
    if (fragments.length > 0) this.outgoing = { seq: frame.seq, command: frame.command, version: frame.version, fragments };
    this.emit(this.encodeReply(frame, fragments.length > 0 ? FLAG_MORE : 0, result.status, first), delayMs);
  }
}
