/**
 * One place that turns a port name into a Transport: `hid:PATH` is a USB HID device (hidapi
 * path), anything else a serial port. A HID device named on the command line must still pass
 * the configured VID/PID filters (discovery.usbFilters), as a discovered one does: the check
 * runs when the transport opens, against hidapi's listing, and refuses a device that is not in
 * the listing or whose ids no filter names.
 */
import type { UsbFilter } from '../../core/config';
import { DeviceError } from '../../core/errors';
import { normalizeUsbId } from '../discovery/port-candidate';
import { listHidDevices, type HidDeviceListing } from './hid-device-list';
import { HidTransport } from './hid-transport';
import { SerialTransport } from './serial-transport';
import { DelegatingTransport } from './delegating-transport';
import type { Transport } from './transport';

export const HID_PREFIX = 'hid:';

export interface TransportFactoryOptions {
  baudRate: number;
  usbFilters: readonly UsbFilter[];
  /** hidapi's listing (tests give a scripted one). */
  listHid?: () => Promise<HidDeviceListing[]>;
  /** Makes the HID transport (tests give one over a scripted node-hid device). */
  openHid?: (path: string) => Transport;
}

/** Throws HID_DEVICE_NOT_ALLOWED unless `path` is listed with ids one of `filters` names (no filters: any listed device). */
export async function assertHidAllowed(path: string, filters: readonly UsbFilter[], list: () => Promise<HidDeviceListing[]>): Promise<void> {
  if (filters.length === 0) return;
  const device = (await list()).find((d) => d.path === path);
  if (!device) throw new DeviceError('HID_DEVICE_NOT_FOUND', `No USB HID device at ${path}: it is not in hidapi's listing (unplugged, or no permission on its hidraw node).`);
  const vid = normalizeUsbId(device.vendorId);
  const pid = normalizeUsbId(device.productId);
  if (!filters.some((f) => normalizeUsbId(f.vendorId) === vid && (f.productId === undefined || normalizeUsbId(f.productId) === pid))) {
    throw new DeviceError(
      'HID_DEVICE_NOT_ALLOWED',
      `The USB HID device at ${path} (${vid}:${pid}) is not one the configuration allows (discovery.usbFilters: ${filters.map((f) => `${f.vendorId}${f.productId ? `:${f.productId}` : ''}`).join(', ')}).`,
    );
  }
}

/** A transport whose open() first runs a check (the HID VID/PID filter). */
class CheckedTransport extends DelegatingTransport {
  constructor(
    inner: Transport,
    private readonly check: () => Promise<void>,
  ) {
    super(inner);
  }
  override async open(): Promise<void> {
    await this.check();
    await this.inner.open();
  }
}

export function createTransport(port: string, options: TransportFactoryOptions): Transport {
  if (!port.startsWith(HID_PREFIX)) return new SerialTransport({ path: port, baudRate: options.baudRate });
  const path = port.slice(HID_PREFIX.length);
  const hid = options.openHid ? options.openHid(path) : new HidTransport({ path });
  if (options.usbFilters.length === 0) return hid;
  return new CheckedTransport(hid, () => assertHidAllowed(path, options.usbFilters, options.listHid ?? listHidDevices));
}
