/**
 * Fuzzing both ends of the link with random and mutated frames (seeded, so a failure replays):
 *
 * - the station: DeviceClient -> DeviceConnection -> FrameDecoder -> TlvReader, over a transport
 *   whose far end answers every frame the station writes with noise (garbage, frames damaged
 *   after their CRC, valid frames that answer something else) and one frame that does answer it,
 *   whose TLV payload is a plausible reply for the command, mutated;
 * - the simulator: DeviceLink + VirtualDevice (on-device keygen, no SE) fed request frames with
 *   mutated TLV payloads, interleaved with noise, cut into random chunks.
 *
 * Asserted: nothing throws but typed errors (StationError on the station; a status reply with
 * ERROR_DETAIL on the device, never INTERNAL), nothing hangs (no exchange times out), the
 * decoders' buffers stay under one maximum frame, and both ends keep working afterwards.
 */
import { describe, expect, it } from 'vitest';
import { StationError } from '../../../src/core/errors';
import { DeviceClient } from '../../../src/device/device-client';
import { DeviceConnection } from '../../../src/device/device-connection';
import {
  FLAG_ACK,
  FLAG_MORE,
  FLAG_RESPONSE,
  FRAME_OVERHEAD_BYTES,
  FrameDecoder,
  MAX_PAYLOAD_BYTES,
  encodeFrame,
  type Frame,
} from '../../../src/device/framing/frame-codec';
import { decodeTlv, encodeTlv, tlv, type TlvItem } from '../../../src/device/framing/tlv';
import { Command, Item, KeyLocation, Tag } from '../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../src/device/protocol/status';
import type { Transport, TransportCloseReason } from '../../../src/device/transport/transport';
import { DeviceLink } from '../../../src/simulator/device-link';
import { VirtualDevice } from '../../../src/simulator/virtual-device';

const FRAMES_PER_SIDE = 100_000;
const MAX_FRAME_BYTES = FRAME_OVERHEAD_BYTES + MAX_PAYLOAD_BYTES;

/** mulberry32: small, fast, seeded. */
class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

const ALL_TAGS = Object.values(Tag) as number[];
const ALL_COMMANDS = Object.values(Command) as number[];
const ALL_STATUSES = [...(Object.values(DeviceStatus) as number[]), 0x09, 0x42, 0xff];

/** Mutations of a TLV item list and of its encoding: the "mutated TLV payloads". */
function mutateTlv(rng: Rng, items: TlvItem[]): Buffer {
  const list: TlvItem[] = items.map((i) => ({ tag: i.tag, value: Buffer.from(i.value) }));
  switch (rng.int(12)) {
    case 0:
    case 1:
    case 2:
      return encodeTlv(list); // as a device would send it
    case 3:
      if (list.length > 0) list.splice(rng.int(list.length), 1); // an item missing
      return encodeTlv(list);
    case 4:
      if (list.length > 0) list.push(list[rng.int(list.length)]!); // an item repeated
      return encodeTlv(list);
    case 5:
      if (list.length > 0) {
        const it = list[rng.int(list.length)]!;
        it.value = rng.bytes(rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 33, 65, 300])); // wrong width / garbage value
      }
      return encodeTlv(list);
    case 6:
      list.push({ tag: rng.chance(0.5) ? rng.pick(ALL_TAGS) : rng.int(256), value: rng.bytes(rng.int(20)) });
      return encodeTlv(list);
    case 7: {
      const b = encodeTlv(list);
      if (b.length > 0) b[rng.int(b.length)] ^= 1 << rng.int(8); // a bit flipped (lengths too)
      return b;
    }
    case 8: {
      const b = encodeTlv(list);
      return b.subarray(0, rng.int(b.length + 1)); // truncated
    }
    case 9:
      return Buffer.concat([encodeTlv(list), rng.bytes(1 + rng.int(4))]); // trailing garbage
    case 10:
      return rng.bytes(rng.int(64)); // random bytes
    default:
      return Buffer.alloc(0);
  }
}

function spkiLike(rng: Rng): Buffer {
  return Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), Buffer.from([4]), rng.bytes(64)]);
}

/** A plausible reply for the command, before mutation. */
function replyItems(rng: Rng, command: number): TlvItem[] {
  switch (command) {
    case Command.HELLO:
      return [tlv.u8(Tag.VERSION, rng.chance(0.9) ? 1 : rng.int(256)), tlv.u16(Tag.MAX_PAYLOAD, rng.pick([64, 100, 1024, 8192, rng.int(0x10000)]))];
    case Command.IDENTIFY:
      return [
        tlv.string(Tag.MODEL, 'DemoSensor-1'),
        tlv.bytes(Tag.HARDWARE_ID, rng.bytes(8)),
        tlv.string(Tag.FIRMWARE_VERSION, '1.0.0'),
        tlv.bytes(Tag.MAC, rng.bytes(6)),
        tlv.u32(Tag.CAPABILITIES, rng.int(0x80)),
        tlv.u32(Tag.METHODS, rng.int(0x20)),
        tlv.u8(Tag.VERSION_MIN, 1),
        tlv.u8(Tag.VERSION_MAX, 1),
        tlv.u8(Tag.LOCKED, rng.int(2)),
        tlv.u16(Tag.MAX_PAYLOAD, 1024),
        tlv.string(Tag.SE_TYPE, 'SE'),
        tlv.bytes(Tag.SE_SERIAL, rng.bytes(8)),
        tlv.bytes(Tag.CHIP_ID, rng.bytes(8)),
      ];
    case Command.GENERATE_KEY:
    case Command.GET_PUBLIC_KEY:
    case Command.GET_TRANSPORT_KEY:
    case Command.INSTALL_WRAPPED_KEY:
    case Command.DERIVE_SEED_KEY:
      return [tlv.bytes(Tag.PUBLIC_KEY, spkiLike(rng))];
    case Command.GET_CSR:
      return [tlv.bytes(Tag.CSR, rng.bytes(200 + rng.int(300)))];
    case Command.READ_SE_INFO:
      return [tlv.bytes(Tag.SE_SERIAL, rng.bytes(8)), tlv.bytes(Tag.CERTIFICATE, rng.bytes(300)), tlv.bytes(Tag.CERTIFICATE, rng.bytes(200))];
    case Command.READ_ITEM:
      return rng.chance(0.5) ? [tlv.bytes(Tag.CERTIFICATE, rng.bytes(500)), tlv.bytes(Tag.CERTIFICATE, rng.bytes(400))] : [tlv.string(Tag.ITEM_VALUE, 'DPP:K:abc;;')];
    case Command.SIGN_CHALLENGE:
      return [tlv.bytes(Tag.SIGNATURE, rng.bytes(70 + rng.int(3)))];
    case Command.BUILD_VOUCHER_REQUEST:
      return [tlv.bytes(Tag.VOUCHER_REQUEST, rng.bytes(300))];
    default:
      return [];
  }
}

/** Far end of the station's transport: answers every frame written with noise + one real answer. */
class FuzzFarEnd implements Transport {
  readonly path = '/dev/ttyFUZZ0';
  private readonly requests = new FrameDecoder();
  /** Fed exactly what the station's decoder is fed: tells when an answer is stuck behind noise. */
  private readonly mirror = new FrameDecoder();
  private dataListener: (c: Buffer) => void = () => undefined;
  framesSent = 0;
  validFramesSent = 0;
  answers = 0;
  paddingBytes = 0;
  /** Called after each chunk is delivered (the test samples the station's decoder there). */
  probe: () => void = () => undefined;

  constructor(
    private readonly rng: Rng,
    private readonly version: () => number,
  ) {}

  async open(): Promise<void> {}
  async close(): Promise<void> {}
  onData(l: (c: Buffer) => void): void {
    this.dataListener = l;
  }
  onClose(_l: (r: TransportCloseReason) => void): void {}

  /** The station's decoder was reset (after a timeout): so is the mirror. */
  resetMirror(): void {
    this.mirror.reset();
  }

  async write(bytes: Buffer): Promise<void> {
    for (const req of this.requests.push(bytes)) this.answer(req);
  }

  private noise(req: Frame): Buffer {
    const rng = this.rng;
    switch (rng.int(4)) {
      case 0:
        return rng.bytes(rng.int(48)); // line noise
      case 1: {
        // a valid frame that answers something else: the connection drops it as stale
        const f: Frame = { version: this.version(), flags: FLAG_RESPONSE, seq: req.seq, command: req.command, status: 0, payload: mutateTlv(rng, replyItems(rng, req.command)) };
        const which = rng.int(4);
        if (which === 0) f.seq = (req.seq + 1 + rng.int(0xfffe)) & 0xffff;
        else if (which === 1) f.command = rng.pick(ALL_COMMANDS.filter((c) => c !== req.command));
        else if (which === 2) f.flags = 0; // an echo of a request
        else f.version = this.version() + 1;
        this.framesSent++;
        this.validFramesSent++;
        return encodeFrame(f);
      }
      case 2: {
        // a frame damaged after its CRC was computed (length field included)
        const b = encodeFrame({ version: 1, flags: FLAG_RESPONSE, seq: req.seq, command: req.command, status: 0, payload: rng.bytes(rng.int(80)) });
        const flips = 1 + rng.int(3);
        for (let i = 0; i < flips; i++) b[2 + rng.int(b.length - 2)] ^= 1 << rng.int(8);
        this.framesSent++;
        return rng.chance(0.3) ? b.subarray(0, rng.int(b.length)) : b;
      }
      default: {
        // a header announcing more than any frame may carry
        const b = Buffer.from([0xa5, 0x5a, 1, FLAG_RESPONSE, 0, 0, req.command, 0, 0xff, 0xff]);
        this.framesSent++;
        return b;
      }
    }
  }

  /** Answer the next frame as a healthy device would (no noise, no mutation). */
  answerCleanly = false;

  private answer(req: Frame): void {
    const rng = this.rng;
    if (this.answerCleanly) {
      const ok = encodeFrame({ version: this.version(), flags: FLAG_RESPONSE, seq: req.seq, command: req.command, status: 0, payload: encodeTlv(replyItems(rng, req.command)) });
      this.mirror.push(ok);
      this.dataListener(ok);
      return;
    }
    const parts: Buffer[] = [];
    while (rng.chance(0.45)) parts.push(this.noise(req));
    const flagRoll = rng.next();
    const flags = FLAG_RESPONSE | (flagRoll < 0.07 ? FLAG_MORE : flagRoll < 0.15 ? FLAG_ACK : 0);
    const status = rng.chance(0.8) ? DeviceStatus.OK : rng.pick(ALL_STATUSES);
    const items = status === DeviceStatus.OK ? replyItems(rng, req.command) : [tlv.string(Tag.ERROR_DETAIL, 'refused')];
    const answer = encodeFrame({ version: this.version(), flags, seq: req.seq, command: req.command, status, payload: mutateTlv(rng, items) });
    parts.push(answer);
    this.framesSent++;
    this.validFramesSent++;
    this.answers++;
    let stream = Buffer.concat(parts);
    // If noise left a frame header waiting for bytes that will never come, the answer would sit
    // behind it until a timeout: pad with zeros (no magic) until the mirror sees the answer.
    let frames = this.mirror.push(stream);
    while (!frames.some((f) => encodeFrame(f).equals(answer))) {
      const pad = Buffer.alloc(1024);
      this.paddingBytes += pad.length;
      stream = Buffer.concat([stream, pad]);
      frames = this.mirror.push(pad);
      if (this.paddingBytes > 1e9) throw new Error('the mirror decoder never found the answer');
    }
    // delivered in random chunks, as a serial port does
    let off = 0;
    while (off < stream.length) {
      const n = 1 + rng.int(rng.chance(0.5) ? 16 : 600);
      this.dataListener(stream.subarray(off, off + n));
      this.probe();
      off += n;
    }
  }
}

function stationDecoderOf(connection: DeviceConnection): FrameDecoder {
  const decoder = (connection as unknown as { decoder: unknown }).decoder;
  if (!(decoder instanceof FrameDecoder)) throw new Error('DeviceConnection no longer keeps its FrameDecoder in "decoder"; update this test');
  return decoder;
}

describe('link fuzzing', () => {
  it(`the station survives ${FRAMES_PER_SIDE.toLocaleString('en-US')} random and mutated frames`, async () => {
    const rng = new Rng(0x5eed_0001);
    let connection!: DeviceConnection;
    const far = new FuzzFarEnd(rng, () => connection.version);
    connection = new DeviceConnection(far);
    const client = new DeviceClient(connection, { commandTimeoutMs: 250, keygenTimeoutMs: 250 });
    const decoder = stationDecoderOf(connection);
    const chain = [rng.bytes(700), rng.bytes(500), rng.bytes(450)];
    const calls: Array<() => Promise<unknown>> = [
      () => client.hello(),
      () => client.identify(),
      () => client.generateKey(KeyLocation.SECURE_ELEMENT),
      () => client.getPublicKey(),
      () => client.getCsr({ serial: 'DEMO-000001', commonName: 'DemoSensor-1' }),
      () => client.getTransportKey(),
      () => client.installWrappedKey({ hsmPublicKey: Buffer.alloc(65, 4), wrappedKey: Buffer.alloc(40, 1), serial: 'DEMO-000001' }),
      () => client.deriveSeedKey(),
      () => client.readSeInfo(),
      () => client.installChain(chain),
      () => client.installDppUri('DPP:C:81/1;M:020000000001;K:abc=;;'),
      () => client.readItem(Item.IDEVID_CHAIN),
      () => client.readItem(Item.DPP_URI),
      () => client.signChallenge(Buffer.alloc(32, 7), 'DEMO-000001', 'birth-credential-pop-v1'),
      () => client.buildVoucherRequest({ nonce: Buffer.alloc(16, 3) }),
      () => client.verifyVoucher(Buffer.alloc(100, 9)),
      () => client.lock(),
      () => client.rework(Buffer.alloc(8, 1)),
    ];
    const outcomes = new Map<string, number>();
    let maxPending = 0;
    far.probe = () => {
      maxPending = Math.max(maxPending, decoder.pendingBytes);
    };
    const started = Date.now();
    while (far.framesSent < FRAMES_PER_SIDE) {
      // every so often a HELLO resets the frame limit the fuzz may have shrunk to 64 bytes
      if (rng.chance(0.02)) connection.maxPayloadBytes = 1024;
      const call = rng.pick(calls);
      let outcome = 'ok';
      try {
        await call();
      } catch (err) {
        if (!(err instanceof StationError)) throw new Error(`an untyped ${(err as Error)?.constructor?.name} escaped: ${(err as Error)?.stack}`);
        expect(err.code).toMatch(/^[A-Z][A-Z_]+$/);
        expect(err.message).toContain(far.path);
        outcome = err.code;
        if (err.code === 'DEVICE_TIMEOUT') far.resetMirror();
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    const summary = Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1]));
    console.log(
      `station fuzz (seed ${rng.seed}): ${far.framesSent} frames (${far.validFramesSent} with valid length and CRC, ${far.answers} answers) in ${Date.now() - started} ms; ` +
        `outcomes ${JSON.stringify(summary)}; decoder ${JSON.stringify(decoder.stats)}, max pending ${maxPending} bytes, padding ${far.paddingBytes} bytes`,
    );
    expect(far.validFramesSent).toBeGreaterThanOrEqual(far.framesSent / 2);
    expect(maxPending).toBeLessThan(MAX_FRAME_BYTES);
    expect(outcomes.get('DEVICE_TIMEOUT') ?? 0).toBe(0); // nothing hung
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(1000); // the reply parsers were reached and passed...
    expect(outcomes.get('DEVICE_BAD_RESPONSE') ?? 0).toBeGreaterThan(1000); // ...and rejected
    expect(decoder.stats.crcErrors).toBeGreaterThan(1000);
    expect(connection.stats.staleFrames).toBeGreaterThan(1000);
    // and it still works: a clean exchange after all that
    connection.maxPayloadBytes = 1024;
    const clean = new DeviceClient(connection, { commandTimeoutMs: 250, keygenTimeoutMs: 250 });
    far.answerCleanly = true;
    await expect(clean.getPublicKey()).resolves.toHaveLength(91);
  }, 60_000);

  it(`the simulated device survives ${FRAMES_PER_SIDE.toLocaleString('en-US')} random and mutated frames`, () => {
    const rng = new Rng(0x5eed_0002);
    const device = new VirtualDevice({ model: 'DemoSensor-1', firmwareVersion: '1.0.0', method: 'on-device-keygen', faults: new Set(), se: undefined });
    const replies = new FrameDecoder();
    const statuses = new Map<number, number>();
    let bad: string | undefined;
    const link = new DeviceLink(device, (bytes) => {
      for (const r of replies.push(bytes)) {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (!(r.flags & FLAG_RESPONSE)) bad ??= `a reply without the response flag: ${JSON.stringify(r)}`;
        if (r.status !== DeviceStatus.OK) {
          // a refusal is a status with an ERROR_DETAIL, never an internal error
          const detail = decodeTlv(r.payload).find((i) => i.tag === Tag.ERROR_DETAIL);
          if (!detail) bad ??= `status 0x${r.status.toString(16)} without ERROR_DETAIL`;
          if (r.status === DeviceStatus.INTERNAL) bad ??= `INTERNAL on ${r.command.toString(16)}: ${detail?.value.toString()}`;
        }
      }
    });
    const requestItems = (command: number): TlvItem[] => {
      switch (command) {
        case Command.HELLO:
          return [tlv.u8(Tag.VERSION_MIN, 1), tlv.u8(Tag.VERSION_MAX, rng.pick([1, 1, 2, 0])), tlv.u16(Tag.MAX_PAYLOAD, rng.pick([64, 1024, 8192, 0]))];
        case Command.GENERATE_KEY:
          return [tlv.u8(Tag.KEY_LOCATION, rng.pick([KeyLocation.DEVICE, KeyLocation.SECURE_ELEMENT, 9]))];
        case Command.GET_CSR:
          return [tlv.string(Tag.SUBJECT_SERIAL, rng.pick(['DEMO-000001', 'bad;serial', ''])), tlv.string(Tag.SUBJECT_CN, 'X')];
        case Command.INSTALL_CHAIN:
          return [tlv.bytes(Tag.CERTIFICATE, rng.bytes(rng.int(400))), tlv.bytes(Tag.CERTIFICATE, rng.bytes(100))];
        case Command.WRITE_ITEM:
          return [tlv.u8(Tag.ITEM_ID, rng.int(7)), tlv.bytes(Tag.ITEM_VALUE, rng.chance(0.5) ? Buffer.from('DPP:K:abc;;') : rng.bytes(rng.int(100)))];
        case Command.READ_ITEM:
          return [tlv.u8(Tag.ITEM_ID, rng.int(7))];
        case Command.SIGN_CHALLENGE:
          return [tlv.bytes(Tag.NONCE, rng.bytes(rng.pick([32, 31, 0]))), tlv.string(Tag.SUBJECT_SERIAL, 'DEMO-000001'), tlv.string(Tag.CONTEXT, 'birth-credential-pop-v1')];
        case Command.REWORK:
          return [tlv.bytes(Tag.REWORK_AUTH, rng.bytes(8))];
        case Command.INSTALL_WRAPPED_KEY:
          return [tlv.bytes(Tag.PEER_PUBLIC_KEY, spkiLike(rng)), tlv.bytes(Tag.WRAPPED_KEY, rng.bytes(40)), tlv.string(Tag.SUBJECT_SERIAL, 'DEMO-000001')];
        case Command.BUILD_VOUCHER_REQUEST:
          return [tlv.bytes(Tag.NONCE, rng.bytes(16))];
        case Command.VERIFY_VOUCHER:
          return [tlv.bytes(Tag.VOUCHER, rng.bytes(rng.int(200)))];
        default:
          return [];
      }
    };
    let frames = 0;
    let valid = 0;
    let maxPending = 0;
    let seq = 0;
    const started = Date.now();
    while (frames < FRAMES_PER_SIDE) {
      const parts: Buffer[] = [];
      const n = 1 + rng.int(4);
      for (let i = 0; i < n; i++) {
        frames++;
        const command = rng.chance(0.9) ? rng.pick(ALL_COMMANDS) : rng.int(256);
        const roll = rng.next();
        const flags = roll < 0.08 ? FLAG_MORE : roll < 0.12 ? FLAG_ACK : roll < 0.14 ? FLAG_RESPONSE : roll < 0.15 ? rng.int(256) : 0;
        seq = rng.chance(0.2) ? seq : (seq + 1) & 0xffff;
        const frame = encodeFrame({ version: rng.chance(0.95) ? 1 : rng.int(256), flags, seq, command, status: 0, payload: mutateTlv(rng, requestItems(command)) });
        if (rng.chance(0.75)) {
          valid++;
          parts.push(frame);
        } else if (rng.chance(0.6)) {
          for (let k = 0; k < 1 + rng.int(3); k++) frame[2 + rng.int(frame.length - 2)] ^= 1 << rng.int(8);
          parts.push(frame);
        } else {
          parts.push(rng.bytes(rng.int(64)));
        }
      }
      const stream = Buffer.concat(parts);
      let off = 0;
      while (off < stream.length) {
        const size = 1 + rng.int(rng.chance(0.5) ? 8 : 500);
        link.push(stream.subarray(off, off + size));
        off += size;
        maxPending = Math.max(maxPending, link.pendingBytes);
      }
    }
    console.log(
      `device fuzz (seed ${rng.seed}): ${frames} frames (${valid} with valid length and CRC) in ${Date.now() - started} ms; ` +
        `replies by status ${JSON.stringify(Object.fromEntries(statuses))}; link ${JSON.stringify(link.stats)}; max pending ${maxPending} bytes; ${device.devicesPresented} devices presented`,
    );
    expect(bad).toBeUndefined();
    expect(valid).toBeGreaterThanOrEqual(frames / 2);
    expect(maxPending).toBeLessThan(FRAME_OVERHEAD_BYTES + device.maxPayloadBytes);
    expect(statuses.get(DeviceStatus.OK) ?? 0).toBeGreaterThan(1000);
    expect(statuses.get(DeviceStatus.BAD_REQUEST) ?? 0).toBeGreaterThan(1000);

    // and it still works: a clean HELLO, then IDENTIFY
    const before = statuses.get(DeviceStatus.OK) ?? 0;
    link.push(Buffer.alloc(FRAME_OVERHEAD_BYTES + device.maxPayloadBytes)); // flush any half frame
    link.push(encodeFrame({ version: 1, flags: 0, seq: 0x4242, command: Command.HELLO, status: 0, payload: encodeTlv(requestItems(Command.HELLO).slice(0, 1).concat(tlv.u8(Tag.VERSION_MAX, 1))) }));
    link.push(encodeFrame({ version: 1, flags: 0, seq: 0x4243, command: Command.IDENTIFY, status: 0, payload: Buffer.alloc(0) }));
    expect((statuses.get(DeviceStatus.OK) ?? 0) - before).toBe(2);
  }, 60_000);
});
