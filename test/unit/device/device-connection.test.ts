import { describe, expect, it } from 'vitest';
import { DeviceConnection } from '../../../src/device/device-connection';
import { FLAG_RESPONSE, FrameDecoder, encodeFrame, type Frame } from '../../../src/device/framing/frame-codec';
import { encodeTlv, tlv } from '../../../src/device/framing/tlv';
import { Command, Tag } from '../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../src/device/protocol/status';
import type { Transport, TransportCloseReason } from '../../../src/device/transport/transport';

/** A Transport whose far end is a function from request frame to the bytes it answers with. */
class ScriptedTransport implements Transport {
  readonly path = '/dev/ttyTEST0';
  private readonly decoder = new FrameDecoder();
  private data: (c: Buffer) => void = () => undefined;
  private closeListener: (r: TransportCloseReason) => void = () => undefined;
  /** The far end answers this long after a request (0: on the next turn of the event loop). */
  replyDelayMs = 0;
  constructor(private readonly answer: (req: Frame) => Buffer[]) {}
  async open() {}
  async write(bytes: Buffer) {
    for (const req of this.decoder.push(bytes))
      for (const chunk of this.answer(req)) {
        if (this.replyDelayMs > 0) setTimeout(() => this.data(chunk), this.replyDelayMs);
        else setImmediate(() => this.data(chunk));
      }
  }
  async close() {}
  onData(l: (c: Buffer) => void) {
    this.data = l;
  }
  onClose(l: (r: TransportCloseReason) => void) {
    this.closeListener = l;
  }
  unplug() {
    this.closeListener('disconnected');
  }
}

const reply = (req: Frame, status: number, payload: Buffer = Buffer.alloc(0), seq = req.seq): Buffer =>
  encodeFrame({ version: 1, flags: FLAG_RESPONSE, seq, command: req.command, status, payload });

describe('DeviceConnection', () => {
  it('drops stale replies and returns the one with the matching sequence number', async () => {
    const t = new ScriptedTransport((req) => [reply(req, 0, encodeTlv([tlv.u8(Tag.VERSION, 9)]), req.seq - 1), reply(req, 0, encodeTlv([tlv.u8(Tag.VERSION, 1)]))]);
    const c = new DeviceConnection(t);
    const r = await c.request(Command.HELLO, Buffer.alloc(0), 1000);
    expect(r.u8(Tag.VERSION, 'VERSION')).toBe(1);
    expect(c.stats.staleFrames).toBe(1);
  });

  it('times out naming the port and the command', async () => {
    const c = new DeviceConnection(new ScriptedTransport(() => []));
    await expect(c.request(Command.IDENTIFY, Buffer.alloc(0), 50)).rejects.toMatchObject({
      code: 'DEVICE_TIMEOUT',
      message: expect.stringMatching(/\/dev\/ttyTEST0 did not answer IDENTIFY within 50 ms/),
    });
  });

  it('holds every frame to its own deadline (one timer watches them all)', async () => {
    let answer = true;
    const t = new ScriptedTransport((req) => (answer ? [reply(req, 0)] : []));
    const c = new DeviceConnection(t);
    // the watch set for the first frame's deadline comes before the second's: that frame still has its time
    await c.request(Command.LOCK, Buffer.alloc(0), 200);
    t.replyDelayMs = 250;
    await expect(c.request(Command.LOCK, Buffer.alloc(0), 1000)).resolves.toBeDefined();
    await c.close();

    // a short deadline after a long one is kept (were it the long one's, the test would outlast vitest's testTimeout)
    t.replyDelayMs = 0;
    const fresh = new DeviceConnection(new ScriptedTransport((req) => (answer ? [reply(req, 0)] : [])));
    await fresh.request(Command.LOCK, Buffer.alloc(0), 600_000);
    answer = false;
    await expect(fresh.request(Command.IDENTIFY, Buffer.alloc(0), 30)).rejects.toMatchObject({ code: 'DEVICE_TIMEOUT', message: expect.stringContaining('within 30 ms') });
    // and the connection goes on after a timeout
    answer = true;
    await expect(fresh.request(Command.LOCK, Buffer.alloc(0), 1000)).resolves.toBeDefined();
    await fresh.close();
  });

  it('turns a device status into a typed error with the device detail', async () => {
    const c = new DeviceConnection(new ScriptedTransport((req) => [reply(req, DeviceStatus.LOCKED, encodeTlv([tlv.string(Tag.ERROR_DETAIL, 'interface locked')]))]));
    await expect(c.request(Command.GENERATE_KEY, Buffer.alloc(0), 500)).rejects.toMatchObject({
      code: 'DEVICE_LOCKED',
      message: expect.stringContaining('interface locked'),
    });
  });

  it('fails the exchange in flight when the device goes away, and every later one', async () => {
    const t = new ScriptedTransport(() => []);
    const c = new DeviceConnection(t);
    const p = c.request(Command.IDENTIFY, Buffer.alloc(0), 5000);
    setTimeout(() => t.unplug(), 10);
    await expect(p).rejects.toMatchObject({ code: 'TRANSPORT_DISCONNECTED' });
    await expect(c.request(Command.IDENTIFY, Buffer.alloc(0), 5000)).rejects.toMatchObject({ code: 'TRANSPORT_DISCONNECTED' });
  });

  it('keeps one exchange in flight: concurrent requests are serialised', async () => {
    let awaitingReply = false;
    let overlapping = 0;
    const t = new ScriptedTransport((req) => {
      if (awaitingReply) overlapping++;
      awaitingReply = true;
      return [reply(req, 0)];
    });
    const c = new DeviceConnection(t);
    await Promise.all(
      [1, 2, 3, 4].map(async () => {
        await c.request(Command.LOCK, Buffer.alloc(0), 1000);
        awaitingReply = false;
      }),
    );
    expect(c.stats.requests).toBe(4);
    expect(overlapping).toBe(0);
  });
});
