/**
 * HidTransport behaviour beyond the Transport contract (test/contract/transport.test.ts): open
 * failures, the report-id byte, the HID size limit, writes in flight at unplug and close, and
 * input reports that break the framing. Against a ScriptedHidDevice, plus one open through the
 * real node-hid (no HID device exists on this machine, so only its failure can be checked).
 */
import { describe, expect, it } from 'vitest';
import { DeviceError } from '../../../src/core/errors';
import { encodeFrame } from '../../../src/device/framing/frame-codec';
import { HID_MAX_MESSAGE_BYTES, HID_REPORT_BYTES, HidReportCodec, hidReportCount } from '../../../src/device/framing/hid-reports';
import { HID_DEFAULT_CHANNEL, HID_MAX_V1_PAYLOAD_BYTES, HidTransport, type HidTransportOptions } from '../../../src/device/transport/hid-transport';
import type { TransportCloseReason } from '../../../src/device/transport/transport';
import { ScriptedHidDevice, echoFrames, hidFrameFarEnd } from '../../helpers/scripted-hid-device';
import { until } from '../../helpers/until';

const codec = new HidReportCodec();
const frame = (payloadBytes: number, seq = 1) =>
  encodeFrame({ version: 1, flags: 0, seq, command: 0x30, status: 0, payload: Buffer.alloc(payloadBytes, seq & 0xff) });

function setup(options: Partial<HidTransportOptions> = {}, device = new ScriptedHidDevice(hidFrameFarEnd(options.channel ?? HID_DEFAULT_CHANNEL, echoFrames))) {
  const transport = new HidTransport({ path: '/dev/hidraw3', vendorId: 0x1209, productId: 0x0001, openDevice: async () => device, ...options });
  const reasons: TransportCloseReason[] = [];
  const errors: Array<Error | undefined> = [];
  transport.onClose((r, e) => (reasons.push(r), errors.push(e)));
  const chunks: Buffer[] = [];
  transport.onData((c) => chunks.push(c));
  return { transport, device, reasons, errors, chunks };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('HidTransport: open', () => {
  it('fails with TRANSPORT_OPEN_FAILED naming the path and VID:PID, with a udev hint on Linux', async () => {
    const denied = new Error("cannot open device with path /dev/hidraw3: Failed to open a device with path '/dev/hidraw3': Permission denied");
    const t = new HidTransport({ path: '/dev/hidraw3', vendorId: 0x1209, productId: 0xa0f1, platform: 'linux', openDevice: () => Promise.reject(denied) });
    const err = (await t.open().catch((e: unknown) => e)) as DeviceError;
    expect(err).toBeInstanceOf(DeviceError);
    expect(err).toMatchObject({ code: 'TRANSPORT_OPEN_FAILED', stage: 'connect', cause: denied, details: { port: '/dev/hidraw3', vendorId: '1209', productId: 'a0f1' } });
    expect(err.message).toContain('/dev/hidraw3 (VID:PID 1209:a0f1): cannot open device');
    expect(err.message).toContain('Permission denied');
    expect(err.message).toContain('ATTRS{idVendor}=="1209", ATTRS{idProduct}=="a0f1"');
    expect(err.message).toContain('udevadm control --reload-rules');

    const mac = new HidTransport({ path: 'DevSrvsID:4294971234', platform: 'darwin', openDevice: () => Promise.reject(new Error('nope')) });
    const macErr = (await mac.open().catch((e: unknown) => e)) as DeviceError;
    expect(macErr.message).toBe('Cannot open HID device DevSrvsID:4294971234 (VID:PID unknown): nope.');
  });

  it('through the real node-hid (HIDAsync), a path that does not exist fails the same way', async () => {
    const t = new HidTransport({ path: '/dev/hidraw-does-not-exist', vendorId: 0x1209, productId: 0x0001 });
    await expect(t.open()).rejects.toMatchObject({
      code: 'TRANSPORT_OPEN_FAILED',
      message: expect.stringMatching(/^Cannot open HID device \/dev\/hidraw-does-not-exist \(VID:PID 1209:0001\): cannot open device/),
    });
    await t.close(); // nothing was opened: resolves, no onClose
  });

  it('refuses a device whose VID:PID is not the configured one, and closes it', async () => {
    const device = new ScriptedHidDevice(() => [], { vendorId: 0x046d, productId: 0xc52b });
    const { transport } = setup({}, device);
    await expect(transport.open()).rejects.toMatchObject({ code: 'TRANSPORT_OPEN_FAILED', message: expect.stringContaining('it is 046d:c52b, not the configured device') });
    expect(device.isClosed).toBe(true);
  });

  it('may be opened again after a failed open', async () => {
    const device = new ScriptedHidDevice(hidFrameFarEnd(HID_DEFAULT_CHANNEL, echoFrames));
    let attempts = 0;
    const t = new HidTransport({ path: '/dev/hidraw3', openDevice: async () => (++attempts === 1 ? Promise.reject(new Error('busy')) : device) });
    await expect(t.open()).rejects.toMatchObject({ code: 'TRANSPORT_OPEN_FAILED' });
    await t.open();
    expect(attempts).toBe(2);
    await t.close();
  });

  it('is single-use: open after close fails', async () => {
    const { transport } = setup();
    await transport.open();
    await transport.close();
    await expect(transport.open()).rejects.toMatchObject({ code: 'TRANSPORT_OPEN_FAILED' });
  });
});

describe('HidTransport: writing', () => {
  it('writes one 64-byte report per write call with the report-id byte 0x00 first, on its channel', async () => {
    const { transport, device } = setup({ channel: 0x0badcafe });
    await transport.open();
    const f = frame(300);
    await transport.write(f);
    expect(device.writes).toHaveLength(hidReportCount(f.length));
    expect(device.writes.every((w) => w.length === HID_REPORT_BYTES + 1 && w[0] === 0x00)).toBe(true);
    expect(device.writes.map((w) => w.subarray(1))).toEqual(codec.encode(f, 0x0badcafe));
    expect(transport.stats).toMatchObject({ messagesWritten: 1, reportsWritten: hidReportCount(f.length) });
  });

  it('uses a numbered report id both ways when configured', async () => {
    const device = new ScriptedHidDevice((r) => [Buffer.concat([Buffer.from([0x02]), r])]); // echo each report, id in front
    const { transport, chunks } = setup({ reportId: 0x02 }, device);
    await transport.open();
    const f = frame(100);
    await transport.write(f);
    expect(device.writes.every((w) => w[0] === 0x02)).toBe(true);
    await until('the echo', () => chunks.length === 1);
    expect(chunks[0]).toEqual(f);
  });

  it('refuses a frame over 7609 bytes (a v1 payload over 7595) before writing anything; the link stays up', async () => {
    expect(HID_MAX_V1_PAYLOAD_BYTES).toBe(7595);
    const { transport, device, chunks, reasons } = setup();
    await transport.open();
    await expect(transport.write(frame(HID_MAX_V1_PAYLOAD_BYTES + 1))).rejects.toMatchObject({
      code: 'DEVICE_PAYLOAD_TOO_LARGE',
      details: { frameBytes: HID_MAX_MESSAGE_BYTES + 1, maxFrameBytes: HID_MAX_MESSAGE_BYTES },
    });
    expect(device.writes).toHaveLength(0);
    await transport.write(frame(HID_MAX_V1_PAYLOAD_BYTES));
    await until('the echo', () => chunks.length === 1);
    expect(chunks[0]!.length).toBe(HID_MAX_MESSAGE_BYTES);
    expect(reasons).toEqual([]);
  });

  it('serialises writes made without waiting: reports of two messages never interleave', async () => {
    const { transport, device, chunks } = setup();
    await transport.open();
    const a = frame(500, 1);
    const b = frame(400, 2);
    await Promise.all([transport.write(a), transport.write(b)]);
    expect(device.writes.map((w) => w.subarray(1))).toEqual([...codec.encode(a, HID_DEFAULT_CHANNEL), ...codec.encode(b, HID_DEFAULT_CHANNEL)]);
    await until('both echoes', () => chunks.length === 2);
    expect(chunks).toEqual([a, b]);
  });

  it('a write in flight when the device is unplugged fails, and onClose fires once with "disconnected"', async () => {
    const { transport, device, reasons } = setup();
    await transport.open();
    device.holdWrites();
    const inFlight = transport.write(frame(200));
    inFlight.catch(() => undefined);
    await until('the first report at the device', () => device.writes.length === 1);
    device.unplug();
    await expect(inFlight).rejects.toMatchObject({ code: 'TRANSPORT_WRITE_FAILED' });
    await tick();
    expect(reasons).toEqual(['disconnected']);
    expect(device.isClosed).toBe(true); // the handle was released
  });

  it('a write in flight when the station closes fails, and onClose fires once with "closed"', async () => {
    const { transport, device, reasons } = setup();
    await transport.open();
    device.holdWrites();
    const inFlight = transport.write(frame(200));
    inFlight.catch(() => undefined);
    await until('the first report at the device', () => device.writes.length === 1);
    await transport.close();
    await expect(inFlight).rejects.toMatchObject({ code: 'TRANSPORT_WRITE_FAILED', message: expect.stringContaining('closed') });
    expect(reasons).toEqual(['closed']);
  });

  it('a failed write closes the link as "disconnected" (half a message may be on the wire)', async () => {
    const device = new ScriptedHidDevice(() => []);
    let n = 0;
    const realWrite = device.write.bind(device);
    device.write = async (values: number[]) => {
      if (++n === 2) throw new Error('Cannot write to hid device');
      return realWrite(values);
    };
    const { transport, reasons, errors } = setup({}, device);
    await transport.open();
    const err = await transport.write(frame(200)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TRANSPORT_WRITE_FAILED', message: expect.stringContaining('Cannot write to hid device') });
    expect(reasons).toEqual(['disconnected']);
    expect(errors[0]).toBe(err);
    await expect(transport.write(frame(1))).rejects.toMatchObject({ code: 'TRANSPORT_WRITE_FAILED' });
    expect(n).toBe(2);
  });
});

describe('HidTransport: reading', () => {
  it('drops reports that break the framing, counts them by code, and still delivers the next message', async () => {
    const channel = 0x01020304;
    const { transport, device, chunks, reasons } = setup({ channel });
    await transport.open();
    const stray = codec.encode(Buffer.alloc(100, 7), channel)[1]!; // a continuation, nothing in progress
    device.inject(codec.encode(Buffer.from('not for us'), 0x99)[0]!);
    device.inject(stray);
    device.inject(Buffer.alloc(10));
    const f = frame(150);
    await transport.write(f);
    await until('the echo', () => chunks.length === 1);
    expect(chunks).toEqual([f]);
    expect(transport.stats.rejected).toEqual({ HID_BAD_CHANNEL: 1, HID_UNEXPECTED_CONTINUATION: 1, HID_BAD_REPORT_SIZE: 1 });
    expect(reasons).toEqual([]);
  });

  it('an unplug while idle closes once with "disconnected" and the node-hid error text', async () => {
    const { transport, device, reasons, errors } = setup();
    await transport.open();
    device.unplug();
    device.unplug();
    await transport.close();
    expect(reasons).toEqual(['disconnected']);
    expect(errors[0]?.message).toBe('could not read from HID device: No such device');
  });
});
