import { describe, expect, it } from 'vitest';
import { DeviceError } from '../../../../src/core/errors';
import type { PortCandidate } from '../../../../src/device/discovery/port-candidate';
import { probePort } from '../../../../src/device/discovery/probe';
import { FLAG_RESPONSE, FrameDecoder, encodeFrame, type Frame } from '../../../../src/device/framing/frame-codec';
import { encodeTlv, tlv } from '../../../../src/device/framing/tlv';
import { Command, Tag } from '../../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../../src/device/protocol/status';
import type { Transport, TransportCloseReason } from '../../../../src/device/transport/transport';

const HW_ID = Buffer.from('0011223344556677', 'hex');

function identifyReply(): Buffer {
  return encodeTlv([
    tlv.string(Tag.MODEL, 'DemoSensor-1'),
    tlv.bytes(Tag.HARDWARE_ID, HW_ID),
    tlv.string(Tag.FIRMWARE_VERSION, '1.2.3'),
    tlv.bytes(Tag.MAC, Buffer.from('020000000001', 'hex')),
    tlv.u32(Tag.CAPABILITIES, 1),
    tlv.u32(Tag.METHODS, 1),
    tlv.u8(Tag.VERSION_MIN, 1),
    tlv.u8(Tag.VERSION_MAX, 1),
    tlv.u8(Tag.LOCKED, 0),
    tlv.u16(Tag.MAX_PAYLOAD, 1024),
  ]);
}

type Behaviour = 'answers' | 'silent' | 'refuses' | 'open-fails' | 'open-hangs' | 'close-hangs';

/** A device on a scripted transport; records whether it was opened and closed. */
class RecordingTransport implements Transport {
  readonly path: string;
  opened = false;
  closeCalls = 0;
  releaseOpen: (() => void) | undefined;
  private readonly decoder = new FrameDecoder();
  private data: (c: Buffer) => void = () => undefined;

  constructor(
    private readonly behaviour: Behaviour,
    path = '/dev/ttyPROBE0',
  ) {
    this.path = path;
  }

  open(): Promise<void> {
    if (this.behaviour === 'open-fails') return Promise.reject(new DeviceError('TRANSPORT_OPEN_FAILED', `Cannot open ${this.path}: Resource temporarily unavailable Cannot lock port`));
    if (this.behaviour === 'open-hangs') {
      return new Promise((resolve) => {
        this.releaseOpen = () => {
          this.opened = true;
          resolve();
        };
      });
    }
    this.opened = true;
    return Promise.resolve();
  }

  async write(bytes: Buffer): Promise<void> {
    for (const req of this.decoder.push(bytes)) {
      const answer = this.answer(req);
      if (answer) setImmediate(() => this.data(answer));
    }
  }

  private answer(req: Frame): Buffer | undefined {
    if (this.behaviour === 'silent') return undefined;
    const reply = (status: number, payload: Buffer) => encodeFrame({ version: 1, flags: FLAG_RESPONSE, seq: req.seq, command: req.command, status, payload });
    if (this.behaviour === 'refuses') return reply(DeviceStatus.LOCKED, encodeTlv([tlv.string(Tag.ERROR_DETAIL, 'interface locked')]));
    if (req.command === Command.HELLO) return reply(DeviceStatus.OK, encodeTlv([tlv.u8(Tag.VERSION, 1), tlv.u16(Tag.MAX_PAYLOAD, 1024)]));
    if (req.command === Command.IDENTIFY) return reply(DeviceStatus.OK, identifyReply());
    return reply(DeviceStatus.OK, Buffer.alloc(0));
  }

  close(): Promise<void> {
    this.closeCalls++;
    if (this.behaviour === 'close-hangs') return new Promise(() => undefined);
    this.opened = false;
    return Promise.resolve();
  }

  onData(l: (c: Buffer) => void): void {
    this.data = l;
  }

  onClose(_l: (r: TransportCloseReason) => void): void {}
}

const serialPort: PortCandidate = { kind: 'serial', path: '/dev/ttyPROBE0', source: 'udev' };
const hidDevice: PortCandidate = { kind: 'hid', path: '/dev/hidraw0', vendorId: '1209', productId: 'b0b0', source: 'hid' };

function probeWith(behaviour: Behaviour, opts: { commandTimeoutMs?: number; deadlineMs?: number; closeTimeoutMs?: number } = {}) {
  const transport = new RecordingTransport(behaviour);
  const result = probePort(serialPort, { baudRate: 115200, commandTimeoutMs: 100, ...opts, openSerial: () => transport });
  return { transport, result };
}

describe('probePort', () => {
  it('returns the identity from HELLO + IDENTIFY and closes the port', async () => {
    const { transport, result } = probeWith('answers');
    expect(await result).toMatchObject({
      status: 'identified',
      identity: { model: 'DemoSensor-1', hardwareId: '0011223344556677', firmwareVersion: '1.2.3', macs: ['020000000001'], locked: false, protocolVersion: 1 },
    });
    expect(transport.closeCalls).toBe(1);
    expect(transport.opened).toBe(false);
  });

  it('a silent port fails with DEVICE_TIMEOUT after the command timeout, and is closed', async () => {
    const { transport, result } = probeWith('silent', { commandTimeoutMs: 50 });
    const r = await result;
    expect(r).toMatchObject({ status: 'failed', error: { code: 'DEVICE_TIMEOUT' } });
    expect(r.status === 'failed' && r.durationMs).toBeLessThan(1000);
    expect(transport.closeCalls).toBe(1);
  });

  it('a device status becomes its typed error', async () => {
    const { result } = probeWith('refuses');
    expect(await result).toMatchObject({ status: 'failed', error: { code: 'DEVICE_LOCKED', message: expect.stringContaining('interface locked') } });
  });

  it('a port that cannot be opened (held by a batch) is reported, not thrown, and not closed', async () => {
    const { transport, result } = probeWith('open-fails');
    expect(await result).toMatchObject({ status: 'failed', error: { code: 'TRANSPORT_OPEN_FAILED' } });
    expect(transport.closeCalls).toBe(0);
  });

  it('an open that never finishes ends at the deadline; the port is closed if the open completes later', async () => {
    const { transport, result } = probeWith('open-hangs', { deadlineMs: 80 });
    expect(await result).toMatchObject({ status: 'failed', error: { code: 'PROBE_TIMEOUT' } });
    expect(transport.closeCalls).toBe(0);
    transport.releaseOpen!();
    await expect.poll(() => transport.closeCalls).toBe(1);
    expect(transport.opened).toBe(false);
  });

  it('a close that never finishes does not hold the probe', async () => {
    const { result } = probeWith('close-hangs', { closeTimeoutMs: 50 });
    expect(await result).toMatchObject({ status: 'identified' });
  });

  it('a transport factory that throws gives a typed error', async () => {
    const r = await probePort(serialPort, {
      baudRate: 115200,
      openSerial: () => {
        throw new Error('boom');
      },
    });
    expect(r).toMatchObject({ status: 'failed', error: { code: 'PROBE_FAILED', message: expect.stringContaining('boom') } });
  });

  it('does not probe a HID device without a HID transport, and probes it with one', async () => {
    expect(await probePort(hidDevice, { baudRate: 115200 })).toEqual({ status: 'not-probed', reason: expect.stringContaining('HID') });
    const transport = new RecordingTransport('answers', hidDevice.path);
    const r = await probePort(hidDevice, { baudRate: 115200, openHid: () => transport });
    expect(r).toMatchObject({ status: 'identified', identity: { model: 'DemoSensor-1' } });
    expect(transport.closeCalls).toBe(1);
  });
});
