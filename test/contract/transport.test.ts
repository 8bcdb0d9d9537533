/**
 * The Transport seam's contract (src/device/transport/transport.ts), one suite run against every
 * implementation with a real far end that reads v1 frames and answers them:
 *   serial  the real SerialTransport on a socat PTY pair; the far end opens the other PTY
 *   hid     the real HidTransport on a ScriptedHidDevice (no hidraw/uhid on this machine):
 *           the far end reassembles HID reports, reads the frames, answers in reports
 * Unplug: serial kills socat (the PTY disappears under the open port); HID makes the device
 * fail its read and every later write, as node-hid does when the cable is pulled.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceError } from '../../src/core/errors';
import { DeviceConnection } from '../../src/device/device-connection';
import { FLAG_RESPONSE, FRAME_OVERHEAD_BYTES, FrameDecoder, MAX_PAYLOAD_BYTES, encodeFrame, type Frame } from '../../src/device/framing/frame-codec';
import { HID_MAX_MESSAGE_BYTES } from '../../src/device/framing/hid-reports';
import { encodeTlv, tlv } from '../../src/device/framing/tlv';
import { Command, Tag } from '../../src/device/protocol/commands';
import { HidTransport } from '../../src/device/transport/hid-transport';
import { SerialTransport } from '../../src/device/transport/serial-transport';
import type { Transport, TransportCloseReason } from '../../src/device/transport/transport';
import { openPtyPair } from '../../src/simulator/pty-pair';
import { ScriptedHidDevice, echoFrames, hidFrameFarEnd, type FrameResponder } from '../helpers/scripted-hid-device';
import { testDir } from '../helpers/station-cli';
import { requireTool } from '../helpers/tools';
import { until } from '../helpers/until';

interface Harness {
  transport: Transport;
  /** The largest frame one write may carry on this link. */
  maxFrameBytes: number;
  /** What the far end answers to each frame it reads from now on. */
  answer(responder: FrameResponder): void;
  /** Pull the cable. */
  unplug(): Promise<void>;
  dispose(): Promise<void>;
}

interface Implementation {
  name: string;
  setup(): Promise<Harness>;
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: 'SerialTransport over a socat PTY pair',
    setup: async () => {
      requireTool('socat', 'socat');
      const dir = testDir('transport-contract');
      const pty = await openPtyPair(join(dir, 'station'), join(dir, 'device'));
      const far = new SerialPort({ path: pty.devicePath, baudRate: 115200, autoOpen: false, lock: false });
      await new Promise<void>((resolve, reject) => far.open((err) => (err ? reject(err) : resolve())));
      far.on('error', () => undefined);
      const decoder = new FrameDecoder();
      let responder: FrameResponder = () => [];
      far.on('data', (chunk: Buffer) => {
        for (const frame of decoder.push(chunk)) for (const m of responder(frame)) far.write(m);
      });
      const transport = new SerialTransport({ path: pty.stationPath, baudRate: 115200 });
      return {
        transport,
        maxFrameBytes: FRAME_OVERHEAD_BYTES + MAX_PAYLOAD_BYTES,
        answer: (r) => (responder = r),
        unplug: () => pty.close(),
        dispose: async () => {
          await transport.close();
          if (far.isOpen) await new Promise<void>((resolve) => far.close(() => resolve()));
          await pty.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'HidTransport over a ScriptedHidDevice',
    setup: async () => {
      const channel = 0x5a5a0001;
      let responder: FrameResponder = () => [];
      const device = new ScriptedHidDevice(hidFrameFarEnd(channel, (f) => responder(f)), { vendorId: 0x1209, productId: 0x0001 });
      const transport = new HidTransport({ path: '/dev/hidraw-scripted', vendorId: 0x1209, productId: 0x0001, channel, openDevice: async () => device });
      return {
        transport,
        maxFrameBytes: HID_MAX_MESSAGE_BYTES,
        answer: (r) => (responder = r),
        unplug: async () => device.unplug(),
        dispose: () => transport.close(),
      };
    },
  },
];


const settle = (ms = 100) => new Promise((r) => setTimeout(r, ms));

/** A promise that must settle: one that never does is a failure with a reason, not a hung test. */
function settles<T>(p: Promise<T>, what: string, timeoutMs = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const never = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([p, never]).finally(() => clearTimeout(timer));
}

function frameWith(payloadBytes: number, seq = 0x0102): Buffer {
  return encodeFrame({ version: 1, flags: 0, seq, command: Command.READ_ITEM, status: 0, payload: randomBytes(payloadBytes) });
}

/** Everything onData delivers, as chunks. */
function collect(transport: Transport): { chunks: Buffer[]; bytes(): Buffer } {
  const chunks: Buffer[] = [];
  transport.onData((c) => chunks.push(c));
  return { chunks, bytes: () => Buffer.concat(chunks) };
}

function closeReasons(transport: Transport): TransportCloseReason[] {
  const reasons: TransportCloseReason[] = [];
  transport.onClose((r) => reasons.push(r));
  return reasons;
}

const response = (req: Frame, payload: Buffer): Buffer =>
  encodeFrame({ version: req.version, flags: FLAG_RESPONSE, seq: req.seq, command: req.command, status: 0, payload });

describe.each(IMPLEMENTATIONS)('Transport contract: $name', (impl) => {
  let h: Harness;
  beforeEach(async () => {
    h = await impl.setup();
  });
  afterEach(async () => {
    await h.dispose();
  });

  it('opens, and a frame written comes back echoed byte for byte, with no leftover bytes', async () => {
    h.answer(echoFrames);
    await h.transport.open();
    const rx = collect(h.transport);
    const frame = frameWith(100);
    await h.transport.write(frame);
    await until('the echo', () => rx.bytes().length >= frame.length);
    await settle(50);
    expect(rx.bytes()).toEqual(frame);
  });

  it('carries frames of the largest size the link allows, in chunks of any size, in order', async () => {
    h.answer(echoFrames);
    await h.transport.open();
    const rx = collect(h.transport);
    const big = frameWith(h.maxFrameBytes - FRAME_OVERHEAD_BYTES, 1);
    const frames = [big, frameWith(0, 2), frameWith(h.maxFrameBytes - FRAME_OVERHEAD_BYTES - 1, 3), frameWith(57, 4)];
    expect(big.length).toBe(h.maxFrameBytes);
    for (const f of frames) await h.transport.write(f);
    const total = frames.reduce((n, f) => n + f.length, 0);
    await until(`${total} echoed bytes`, () => rx.bytes().length >= total);
    await settle(50);
    expect(rx.bytes().equals(Buffer.concat(frames))).toBe(true);
    expect(rx.chunks.every((c) => c.length > 0)).toBe(true);
  });

  it('close is idempotent: onClose fires once with "closed", and writes after it fail', async () => {
    await h.transport.open();
    const reasons = closeReasons(h.transport);
    await settles(Promise.all([h.transport.close(), h.transport.close()]), 'two concurrent closes');
    await settles(h.transport.close(), 'a third close');
    await until('onClose', () => reasons.length > 0);
    await settle();
    expect(reasons).toEqual(['closed']);
    const err = await settles(h.transport.write(frameWith(10)), 'a write after close').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect(err).toMatchObject({ code: 'TRANSPORT_WRITE_FAILED', details: { port: h.transport.path } });
  });

  it('on unplug, onClose fires once with "disconnected", a pending request fails and later writes fail', async () => {
    const seen: Frame[] = [];
    h.answer((f) => (seen.push(f), [])); // reads, never answers
    await h.transport.open();
    const reasons = closeReasons(h.transport);
    const connection = new DeviceConnection(h.transport);
    const pending = connection.request(Command.IDENTIFY, Buffer.alloc(0), 60_000);
    pending.catch(() => undefined);
    await until('the request at the far end', () => seen.length === 1);

    await h.unplug();
    await expect(pending).rejects.toMatchObject({ code: 'TRANSPORT_DISCONNECTED' });
    await until('onClose', () => reasons.length > 0);
    await settle();
    expect(reasons).toEqual(['disconnected']);
    await expect(settles(h.transport.write(frameWith(10)), 'a write after unplug')).rejects.toMatchObject({ code: 'TRANSPORT_WRITE_FAILED' });
    await expect(connection.request(Command.IDENTIFY, Buffer.alloc(0), 1000)).rejects.toMatchObject({ code: 'TRANSPORT_DISCONNECTED' });
    await settles(h.transport.close(), 'close after unplug');
    await settles(h.transport.close(), 'a second close after unplug');
    expect(reasons).toEqual(['disconnected']);
  });

  it('DeviceConnection does request/response over it, small and large replies', async () => {
    const requests: Frame[] = [];
    const bigValue = randomBytes(h.maxFrameBytes - FRAME_OVERHEAD_BYTES - 3); // one TLV filling the frame
    h.answer((req) => {
      requests.push(req);
      if (req.command === Command.HELLO) return [response(req, encodeTlv([tlv.u8(Tag.VERSION, 1)]))];
      return [response(req, encodeTlv([tlv.bytes(Tag.ITEM_VALUE, bigValue)]))];
    });
    await h.transport.open();
    const connection = new DeviceConnection(h.transport);
    const hello = await connection.request(Command.HELLO, encodeTlv([tlv.u8(Tag.VERSION_MIN, 1), tlv.u8(Tag.VERSION_MAX, 1)]), 10_000);
    expect(hello.u8(Tag.VERSION, 'VERSION')).toBe(1);
    const item = await connection.request(Command.READ_ITEM, encodeTlv([tlv.u8(Tag.ITEM_ID, 2)]), 10_000);
    expect(item.required(Tag.ITEM_VALUE, 'ITEM_VALUE').equals(bigValue)).toBe(true);

    expect(requests.map((r) => [r.command, r.flags])).toEqual([
      [Command.HELLO, 0],
      [Command.READ_ITEM, 0],
    ]);
    expect(requests[0]!.payload.toString('hex')).toBe('010001010200' + '0101');
    expect(requests[1]!.seq).toBe((requests[0]!.seq + 1) & 0xffff);
    expect(connection.stats.staleFrames).toBe(0);
    await connection.close();
  });
});
