/** Drive a VirtualDevice with TLV requests, as the link layer would, without a port. */
import { TlvReader, encodeTlv, type TlvItem } from '../../src/device/framing/tlv';
import { Tag } from '../../src/device/protocol/commands';
import { DeviceStatus } from '../../src/device/protocol/status';
import type { MethodId } from '../../src/core/method-id';
import { VirtualDevice, type VirtualDeviceOptions } from '../../src/simulator/virtual-device';

export interface Reply {
  status: number;
  items: TlvReader;
  detail: string | undefined;
}

export function call(device: VirtualDevice, command: number, items: TlvItem[] = []): Reply {
  const reply = device.handleRequest(command, encodeTlv(items));
  if (!reply) throw new Error('the device stayed silent');
  const reader = TlvReader.from(reply.payload);
  return { status: reply.status, items: reader, detail: reply.status === DeviceStatus.OK ? undefined : reader.optional(Tag.ERROR_DETAIL)?.toString('utf8') };
}

/** The reply's items when the status is OK; throws with the device's detail otherwise. */
export function ok(reply: Reply): TlvReader {
  if (reply.status !== DeviceStatus.OK) throw new Error(`device refused with status ${reply.status}: ${reply.detail}`);
  return reply.items;
}

export function virtualDevice(method: MethodId, extra: Partial<VirtualDeviceOptions> = {}): VirtualDevice {
  return new VirtualDevice({ model: 'DemoSensor-1', firmwareVersion: '1.0.0', method, faults: new Set(), se: undefined, ...extra });
}
