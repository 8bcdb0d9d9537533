/**
 * The device's side of the link, independent of the wire: decodes frames, reassembles request
 * fragments (acknowledging each), hands whole messages to the firmware, and sends replies in
 * fragments no larger than the station's MAX_PAYLOAD, each after the station's acknowledgement.
 */
import { FLAG_ACK, FLAG_MORE, FLAG_RESPONSE, FrameDecoder, encodeFrame, type Frame } from '../device/framing/frame-codec';
import { FragmentError, MessageAssembler, splitMessage } from '../device/framing/fragments';
import { encodeTlv, tlv } from '../device/framing/tlv';
import { Tag } from '../device/protocol/commands';
import { DeviceStatus } from '../device/protocol/status';

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
}

export class DeviceLink {
  private readonly decoder: FrameDecoder;
  private readonly assembler = new MessageAssembler();
  /** Reply fragments still to send, after the station acknowledges the previous one. */
  private outgoing: { seq: number; command: number; version: number; fragments: Buffer[] } | undefined;

  constructor(
    private readonly firmware: Firmware,
    private readonly send: (bytes: Buffer) => void,
  ) {
    this.decoder = new FrameDecoder(firmware.maxPayloadBytes);
  }

  push(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) this.onFrame(frame);
  }

  private reply(frame: Frame, flags: number, status: number, payload: Buffer): void {
    this.send(encodeFrame({ version: frame.version, flags: FLAG_RESPONSE | flags, seq: frame.seq, command: frame.command, status, payload }));
  }

  private onFrame(frame: Frame): void {
    if (frame.flags & FLAG_RESPONSE) return;
    if (frame.flags & FLAG_ACK) {
      const out = this.outgoing;
      if (!out || out.seq !== frame.seq || out.command !== frame.command) return;
      const next = out.fragments.shift()!;
      if (out.fragments.length === 0) this.outgoing = undefined;
      this.reply(frame, this.outgoing ? FLAG_MORE : 0, DeviceStatus.OK, next);
      return;
    }
    this.outgoing = undefined; // a new request abandons an unfinished reply
    let message: Buffer | undefined;
    try {
      message = this.assembler.push(frame.seq, frame.command, frame.payload, (frame.flags & FLAG_MORE) !== 0);
    } catch (err) {
      const detail = err instanceof FragmentError ? err.message : String(err);
      this.reply(frame, 0, DeviceStatus.BAD_REQUEST, encodeTlv([tlv.string(Tag.ERROR_DETAIL, detail)]));
      return;
    }
    if (message === undefined) {
      this.reply(frame, FLAG_ACK, DeviceStatus.OK, Buffer.alloc(0));
      return;
    }
    const result = this.firmware.handleRequest(frame.command, message);
    if (!result) return;
    const fragments = result.status === DeviceStatus.OK ? splitMessage(result.payload, this.firmware.peerMaxPayloadBytes) : [result.payload];
    const first = fragments.shift()!;
    if (fragments.length > 0) this.outgoing = { seq: frame.seq, command: frame.command, version: frame.version, fragments };
    this.reply(frame, fragments.length > 0 ? FLAG_MORE : 0, result.status, first);
  }
}
