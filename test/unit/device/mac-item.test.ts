/**
 * The MAC_ADDRESSES item: the station's verbs (DeviceClient.writeMacs / readMacs and the run's
 * block-macs steps) against the simulator's firmware (VirtualDevice), frame by frame over an
 * in-memory link: the device adopts written MACs (IDENTIFY reports them), refuses group
 * addresses, refuses when locked, and a device whose MACs are burned in (fault mac-fixed)
 * refuses with UNSUPPORTED, which the station reports as DEVICE_MAC_FIXED.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/core/logger';
import { DeviceClient } from '../../../src/device/device-client';
import { DeviceConnection } from '../../../src/device/device-connection';
import { FLAG_RESPONSE, FrameDecoder, encodeFrame } from '../../../src/device/framing/frame-codec';
import { encodeTlv, tlv, TlvReader } from '../../../src/device/framing/tlv';
import { Command, Item, Tag } from '../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../src/device/protocol/status';
import type { Transport, TransportCloseReason } from '../../../src/device/transport/transport';
import type { Fault } from '../../../src/simulator/faults';
import type { VirtualDevice } from '../../../src/simulator/virtual-device';
import { verifyBlockMacs, writeBlockMacs } from '../../../src/station/run/block-macs';
import { call, ok, virtualDevice } from '../../helpers/virtual-device-calls';

/** One frame each way (these messages are small): the firmware answers each request frame. */
class LoopbackTransport implements Transport {
  readonly path = '/loop/port0';
  private listener: (chunk: Buffer) => void = () => undefined;
  private readonly decoder = new FrameDecoder();

  constructor(
    private readonly device: VirtualDevice,
    /** Changes a reply payload before it is sent (a device reading back something else). */
    private readonly tamper: (command: number, payload: Buffer) => Buffer = (_c, p) => p,
  ) {}

  async open(): Promise<void> {}
  async close(): Promise<void> {}
  onClose(_listener: (reason: TransportCloseReason) => void): void {}
  onData(listener: (chunk: Buffer) => void): void {
    this.listener = listener;
  }

  async write(bytes: Buffer): Promise<void> {
    for (const frame of this.decoder.push(bytes)) {
      const reply = this.device.handleRequest(frame.command, frame.payload)!;
      const payload = reply.status === DeviceStatus.OK ? this.tamper(frame.command, reply.payload) : reply.payload;
      const out = encodeFrame({ version: frame.version, flags: FLAG_RESPONSE, seq: frame.seq, command: frame.command, status: reply.status, payload });
      setImmediate(() => this.listener(out));
    }
  }
}

function client(device: VirtualDevice, tamper?: (command: number, payload: Buffer) => Buffer): DeviceClient {
  return new DeviceClient(new DeviceConnection(new LoopbackTransport(device, tamper), silentLogger), { commandTimeoutMs: 2000, keygenTimeoutMs: 2000 });
}

const withFaults = (...faults: Fault[]) => virtualDevice('on-device-keygen', { faults: new Set(faults) });

describe('MAC_ADDRESSES item', () => {
  it('the device adopts written MACs: READ_ITEM and IDENTIFY report them', async () => {
    const device = withFaults();
    const c = client(device);
    const own = (await c.identify()).macs;
    expect(await c.readMacs()).toEqual(own);
    await c.writeMacs(['02005e100000', '02005e100001']);
    expect(await c.readMacs()).toEqual(['02005e100000', '02005e100001']);
    expect((await c.identify()).macs).toEqual(['02005e100000', '02005e100001']);
    await expect(verifyBlockMacs(c, ['02005e100000', '02005e100001'])).resolves.toBeUndefined();
  });

  it('a group address or a value that is not 6 bytes per MAC is BAD_REQUEST; a locked device refuses with LOCKED', () => {
    const device = withFaults();
    const write = (value: Buffer) => call(device, Command.WRITE_ITEM, [tlv.u8(Tag.ITEM_ID, Item.MAC_ADDRESSES), tlv.bytes(Tag.ITEM_VALUE, value)]);
    expect(write(Buffer.from('01005e000001', 'hex')).status).toBe(DeviceStatus.BAD_REQUEST);
    expect(write(Buffer.alloc(7, 2)).status).toBe(DeviceStatus.BAD_REQUEST);
    expect(write(Buffer.alloc(54, 2)).status).toBe(DeviceStatus.BAD_REQUEST);
    ok(write(Buffer.from('02005e000001', 'hex')));
    // LOCK needs a whole birth credential; the locked state is what it leaves
    (device.current as { locked: boolean }).locked = true;
    expect(write(Buffer.from('02005e000001', 'hex')).status).toBe(DeviceStatus.LOCKED);
  });

  it('mac-fixed: UNSUPPORTED on the link, DEVICE_MAC_FIXED for the station, naming the MACs', async () => {
    const device = withFaults('mac-fixed');
    const own = device.current.macs.map((m) => m.toString('hex'));
    const c = client(device);
    await expect(c.writeMacs(['02005e100000'])).rejects.toMatchObject({ code: 'DEVICE_UNSUPPORTED' });
    await expect(writeBlockMacs(c, ['02005e100000'], 'demo-sensor')).rejects.toMatchObject({
      code: 'DEVICE_MAC_FIXED',
      stage: 'assign',
      message: expect.stringContaining('02:00:5e:10:00:00'),
    });
    expect((await c.identify()).macs).toEqual(own);
  });

  it('verify: MACs read back other than written are READBACK_MISMATCH naming the item', async () => {
    const device = withFaults();
    const c = client(device, (command, payload) => {
      if (command !== Command.READ_ITEM) return payload;
      const value = TlvReader.from(payload).required(Tag.ITEM_VALUE, 'ITEM_VALUE');
      return value.length === 6 ? encodeTlv([tlv.bytes(Tag.ITEM_VALUE, Buffer.from('02005e1000ff', 'hex'))]) : payload;
    });
    await c.writeMacs(['02005e100000']);
    await expect(verifyBlockMacs(c, ['02005e100000'])).rejects.toMatchObject({
      code: 'READBACK_MISMATCH',
      stage: 'verify',
      message: expect.stringContaining('MAC addresses (item MAC_ADDRESSES)'),
    });
  });
});
