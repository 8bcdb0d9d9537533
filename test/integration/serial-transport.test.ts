/**
 * SerialTransport beyond the Transport contract (test/contract/transport.test.ts), on socat PTY
 * pairs, over both ways of moving bytes: `direct` (the binding's descriptor and poller, the
 * default on Linux) and `stream` (serialport's stream API, the fallback, forced here with the
 * `io` option and with STATION_SERIAL_IO). Both: the exclusive open, close while opening, writes
 * that must wait for room, a close that fails pending writes, unplug. Direct only: how it reads
 * a frame that arrives at the line rate (a timer for the rest of the frame, not a wake-up per
 * chunk) without holding back a link that is faster than its baud rate.
 */
import { closeSync, openSync, readSync, rmSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame } from '../../src/device/framing/frame-codec';
import { SERIAL_IO_ENV, SerialTransport, type SerialIoChoice } from '../../src/device/transport/serial-transport';
import type { TransportCloseReason } from '../../src/device/transport/transport';
import { PacedWriter } from '../../src/simulator/link-timing';
import { openPtyPair, type PtyPair } from '../../src/simulator/pty-pair';
import { testDir } from '../helpers/station-cli';
import { requireTool } from '../helpers/tools';
import { until } from '../helpers/until';


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function frame(payloadBytes: number, seq: number): Buffer {
  const payload = Buffer.alloc(payloadBytes);
  for (let i = 0; i < payloadBytes; i++) payload[i] = (i * 7 + seq) & 0xff;
  return encodeFrame({ version: 1, flags: 1, seq, command: 0x10, status: 0, payload });
}

async function openFar(path: string): Promise<SerialPort> {
  const far = new SerialPort({ path, baudRate: 115200, autoOpen: false, lock: false });
  await new Promise<void>((resolve, reject) => far.open((err) => (err ? reject(err) : resolve())));
  far.on('error', () => undefined);
  return far;
}

/** A PTY pair per test, the transports made on it, and everything to undo after. */
function ptyFixture(name: string) {
  const f = {
    dir: '',
    pty: undefined as unknown as PtyPair,
    cleanups: [] as Array<() => Promise<void> | void>,
    transport(baudRate = 115200, io?: SerialIoChoice): SerialTransport {
      const t = new SerialTransport({ path: f.pty.stationPath, baudRate, io });
      f.cleanups.push(() => t.close());
      return t;
    },
    async far(): Promise<SerialPort> {
      const p = await openFar(f.pty.devicePath);
      f.cleanups.push(() => new Promise<void>((resolve) => (p.isOpen ? p.close(() => resolve()) : resolve())));
      return p;
    },
    /** The device side opened raw, not read until the test reads it. */
    farFd(): number {
      const fd = openSync(f.pty.devicePath, fsc.O_RDWR | fsc.O_NOCTTY | fsc.O_NONBLOCK);
      f.cleanups.push(() => closeSync(fd));
      return fd;
    },
  };
  beforeEach(async () => {
    requireTool('socat', 'socat');
    f.dir = testDir(name);
    f.pty = await openPtyPair(join(f.dir, 'station'), join(f.dir, 'device'));
  });
  afterEach(async () => {
    for (const c of f.cleanups.splice(0).reverse()) await c();
    await f.pty.close();
    rmSync(f.dir, { recursive: true, force: true });
  });
  return f;
}

describe.each([
  { io: 'auto' as const, expected: 'direct' },
  { io: 'stream' as const, expected: 'stream' },
])('SerialTransport (io: $io) on a PTY pair', ({ io, expected }) => {
  const f = ptyFixture(`serial-transport-${io}`);

  it(`moves bytes ${expected === 'direct' ? 'through the descriptor (direct)' : "through serialport's stream"} both ways`, async () => {
    const t = f.transport(115200, io);
    expect(t.io).toBeUndefined();
    await t.open();
    expect(t.io).toBe(expected);
    expect(t.ioStats === undefined).toBe(expected === 'stream');
    const device = await f.far();
    const atDevice: Buffer[] = [];
    device.on('data', (c: Buffer) => atDevice.push(c));
    const atStation: Buffer[] = [];
    t.onData((c) => atStation.push(c));
    await t.write(frame(300, 1));
    device.write(frame(500, 2));
    await until('both frames', () => Buffer.concat(atDevice).length === 314 && Buffer.concat(atStation).length === 514);
    expect(Buffer.concat(atDevice).equals(frame(300, 1))).toBe(true);
    expect(Buffer.concat(atStation).equals(frame(500, 2))).toBe(true);
  });

  it('opens the port exclusively until it is closed', async () => {
    const first = f.transport(115200, io);
    await first.open();
    const second = f.transport(115200, io);
    const err = await second.open().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TRANSPORT_OPEN_FAILED', stage: 'connect', details: { port: f.pty.stationPath } });
    expect((err as Error).message).toContain(f.pty.stationPath);
    // the other way round too: a port the other path holds
    const other = f.transport(115200, io === 'stream' ? 'auto' : 'stream');
    await expect(other.open()).rejects.toMatchObject({ code: 'TRANSPORT_OPEN_FAILED' });
    await first.close();
    // a failed open may be retried, and the lock went with the close
    await second.open();
  });

  it('names the path when the port does not exist, and can be closed after', async () => {
    const t = new SerialTransport({ path: join(f.dir, 'nothing-here'), baudRate: 115200, io });
    await expect(t.open()).rejects.toMatchObject({ code: 'TRANSPORT_OPEN_FAILED', details: { port: join(f.dir, 'nothing-here') } });
    await t.close();
    await expect(t.write(Buffer.from([1]))).rejects.toMatchObject({ code: 'TRANSPORT_WRITE_FAILED' });
  });

  it('a close during the open releases the port: open rejects, onClose stays silent, the port can be opened again', async () => {
    const t = f.transport(115200, io);
    const reasons: TransportCloseReason[] = [];
    t.onClose((r) => reasons.push(r));
    const opening = t.open();
    const closing = t.close();
    await expect(opening).rejects.toMatchObject({ code: 'TRANSPORT_OPEN_FAILED' });
    await closing;
    expect(reasons).toEqual([]);
    const again = f.transport(115200, io);
    await again.open();
  });

  it('a write larger than the link takes at once waits for room, then completes in order', async () => {
    const t = f.transport(115200, io);
    await t.open();
    // the far end opens the device side but does not read yet
    const fd = f.farFd();
    const big = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    let written = false;
    const writing = t.write(big).then(() => (written = true));
    const second = t.write(Buffer.from('after'));
    await sleep(200);
    expect(written).toBe(false);

    const got: Buffer[] = [];
    let total = 0;
    const buf = Buffer.alloc(65536);
    const reader = setInterval(() => {
      for (;;) {
        let n = 0;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch {
          return;
        }
        if (n <= 0) return;
        got.push(Buffer.from(buf.subarray(0, n)));
        total += n;
      }
    }, 2);
    f.cleanups.push(() => clearInterval(reader));
    await writing;
    await second;
    await until('every byte at the far end', () => total >= big.length + 5);
    expect(Buffer.concat(got).equals(Buffer.concat([big, Buffer.from('after')]))).toBe(true);
  });

  it('a close while a write waits for room fails that write and every queued one, and fires onClose once', async () => {
    const t = f.transport(115200, io);
    await t.open();
    f.farFd();
    const reasons: TransportCloseReason[] = [];
    t.onClose((r) => reasons.push(r));
    const first = t.write(Buffer.alloc(2 * 1024 * 1024, 0x55)).catch((e: unknown) => e);
    const second = t.write(Buffer.alloc(10, 0x66)).catch((e: unknown) => e);
    await sleep(100);
    await t.close();
    expect(await first).toMatchObject({ code: 'TRANSPORT_WRITE_FAILED', details: { port: f.pty.stationPath } });
    expect(await second).toMatchObject({ code: 'TRANSPORT_WRITE_FAILED' });
    expect(reasons).toEqual(['closed']);
  });

  it('an unplug closes it once as disconnected; writes after fail, closes after settle', async () => {
    const t = f.transport(115200, io);
    await t.open();
    const reasons: TransportCloseReason[] = [];
    t.onClose((r) => reasons.push(r));
    await f.far();
    await f.pty.close();
    await until('onClose', () => reasons.length > 0);
    await sleep(50);
    expect(reasons).toEqual(['disconnected']);
    await expect(t.write(Buffer.from([1]))).rejects.toMatchObject({ code: 'TRANSPORT_WRITE_FAILED' });
    await t.close();
    await t.close();
    expect(reasons).toEqual(['disconnected']);
  });
});

describe(`${SERIAL_IO_ENV} chooses the path when the option does not`, () => {
  const f = ptyFixture('serial-transport-env');
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env[SERIAL_IO_ENV];
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[SERIAL_IO_ENV];
    else process.env[SERIAL_IO_ENV] = saved;
  });

  it('stream forces the stream API, auto or unset takes the descriptor, the option wins over it', async () => {
    process.env[SERIAL_IO_ENV] = 'stream';
    const forced = f.transport();
    await forced.open();
    expect(forced.io).toBe('stream');
    await forced.close();

    process.env[SERIAL_IO_ENV] = 'auto';
    const auto = f.transport();
    await auto.open();
    expect(auto.io).toBe('direct');
    await auto.close();

    process.env[SERIAL_IO_ENV] = 'stream';
    const option = f.transport(115200, 'auto');
    await option.open();
    expect(option.io).toBe('direct');
    await option.close();

    delete process.env[SERIAL_IO_ENV];
    const unset = f.transport();
    await unset.open();
    expect(unset.io).toBe('direct');
  });

  it('another value fails the open with a message that names the variable', async () => {
    process.env[SERIAL_IO_ENV] = 'turbo';
    const t = f.transport();
    const err = await t.open().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TRANSPORT_OPEN_FAILED', details: { port: f.pty.stationPath } });
    expect((err as Error).message).toContain(`${SERIAL_IO_ENV} is "turbo"`);
  });
});

describe('SerialTransport (direct) reading frames', () => {
  const f = ptyFixture('serial-transport-frames');

  it('a frame paced at the line rate arrives whole and in order, in a few wake-ups rather than one per chunk', async () => {
    const baud = 115200;
    const t = f.transport(baud);
    await t.open();
    const chunks: Buffer[] = [];
    const decoder = new FrameDecoder();
    let done = 0;
    t.onData((c) => {
      chunks.push(c);
      done += decoder.push(c).length;
    });
    const device = await f.far();
    const writer = new PacedWriter((b) => device.write(b), { baud, chunkBytes: 64 });
    f.cleanups.push(() => writer.cancel());

    const frames = [frame(1000, 1), frame(600, 2), frame(1000, 3)];
    let sentChunks = 0;
    for (const [i, fr] of frames.entries()) {
      sentChunks += Math.ceil(fr.length / 64);
      writer.send(fr);
      await until(`frame ${i + 1}`, () => done === i + 1);
    }
    expect(Buffer.concat(chunks).equals(Buffer.concat(frames))).toBe(true);
    // 42 chunks crossed the line; the transport woke a handful of times
    expect(sentChunks).toBe(42);
    // Far fewer wake-ups than chunks (11 or 12 on a quiet machine; the bound leaves room for a
    // loaded one, whose late timers make the far end burst): the exact count is the link
    // benchmark's figure, not a test's.
    const s = t.ioStats!;
    expect(s.pollWakeups + s.timerWakeups).toBeLessThan(sentChunks / 2);
    expect(chunks.length).toBeLessThan(sentChunks / 2);
  });

  it('replies to requests of a learnt shape are read on one wake-up each; a device that turns slower is still read whole', async () => {
    const baud = 115200;
    const t = f.transport(baud);
    await t.open();
    const decoder = new FrameDecoder();
    const replies: Buffer[] = [];
    t.onData((c) => {
      for (const fr of decoder.push(c)) replies.push(fr.payload);
    });
    const device = await f.far();
    const writer = new PacedWriter((b) => device.write(b), { baud, chunkBytes: 64 });
    f.cleanups.push(() => writer.cancel());
    // the device answers each request with 600 bytes after `latencyMs`, at the line rate
    let latencyMs = 20;
    const farDecoder = new FrameDecoder();
    device.on('data', (c: Buffer) => {
      for (const req of farDecoder.push(c)) setTimeout(() => writer.send(frame(600, req.seq)), latencyMs);
    });
    const exchange = async (seq: number) => {
      const before = replies.length;
      await t.write(encodeFrame({ version: 1, flags: 0, seq, command: 0x30, status: 0, payload: Buffer.from([0x30, 0, 1, 2]) }));
      await until(`reply ${seq}`, () => replies.length === before + 1);
      expect(replies.at(-1)!.equals(frame(600, seq).subarray(10, 610))).toBe(true);
    };
    for (let seq = 1; seq <= 4; seq++) await exchange(seq);
    const learnt = { ...t.ioStats! };
    for (let seq = 5; seq <= 16; seq++) await exchange(seq);
    const s = t.ioStats!;
    expect(s.pace).toBe('line');
    // replies of 10 chunks: unforetold, each takes two wake-ups (its first chunk, then the rest);
    // foretold, one. How many are foretold depends on the far end's timers (a reply that comes
    // late is learnt again); the wake-ups per device are the link benchmark's business
    expect(s.foretoldReplies - learnt.foretoldReplies).toBeGreaterThanOrEqual(1);

    // the device now takes longer: a foretold wake-up finds nothing, the poller takes over
    latencyMs = 150;
    for (let seq = 17; seq <= 20; seq++) await exchange(seq);
    expect(replies).toHaveLength(20);
  });

  it('a link faster than its baud rate is not held to it', async () => {
    // at 1200 baud an 8 KiB frame takes 68 s on the line; a PTY brings it at once (the 10 s
    // wait for each frame below would run out if the transport held it to the line rate)
    const t = f.transport(1200);
    await t.open();
    const decoder = new FrameDecoder();
    let frames = 0;
    t.onData((c) => (frames += decoder.push(c).length));
    const device = await f.far();
    for (let i = 1; i <= 10; i++) {
      device.write(frame(8192, i));
      await until(`frame ${i}`, () => frames === i);
    }
    expect(t.ioStats!.pace).toBe('fast');
  });

  it('an unplug while the rest of a frame is awaited closes it as disconnected', async () => {
    const baud = 115200;
    const t = f.transport(baud);
    await t.open();
    const reasons: TransportCloseReason[] = [];
    t.onClose((r) => reasons.push(r));
    let received = 0;
    t.onData((c) => (received += c.length));
    const device = await f.far();
    const writer = new PacedWriter((b) => device.write(b), { baud, chunkBytes: 64 });
    f.cleanups.push(() => writer.cancel());
    // a first whole frame teaches the transport the link's pace
    const first = frame(1000, 1);
    writer.send(first);
    await until('the first frame', () => received === first.length);
    expect(t.ioStats!.pace).toBe('line');
    // then the start of a long frame (the rest would take 700 ms), and the cable is pulled
    writer.send(frame(8000, 2).subarray(0, 256));
    await until('the start of the second frame', () => received > first.length);
    await f.pty.close();
    await until('onClose', () => reasons.length > 0);
    await sleep(50);
    expect(reasons).toEqual(['disconnected']);
    await expect(t.write(Buffer.from([1]))).rejects.toMatchObject({ code: 'TRANSPORT_WRITE_FAILED' });
  });
});
