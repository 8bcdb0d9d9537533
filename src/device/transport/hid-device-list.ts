/**
 * HID device listing through node-hid's `devicesAsync()` (hidapi; on Linux the hidraw backend,
 * which needs /dev/hidraw* nodes). With hid-transport.ts, the only files of the station that
 * import node-hid; discovery sees only `HidDeviceListing`.
 */
import { devicesAsync } from 'node-hid';
import { DeviceError } from '../../core/errors';

export interface HidDeviceListing {
  /** The platform path hidapi opens (/dev/hidrawN on Linux). */
  path: string;
  vendorId: number;
  productId: number;
  serialNumber?: string;
  manufacturer?: string;
  product?: string;
  interface: number;
  usagePage?: number;
  usage?: number;
}

const defined = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

export async function listHidDevices(): Promise<HidDeviceListing[]> {
  let devices: Awaited<ReturnType<typeof devicesAsync>>;
  try {
    devices = await devicesAsync();
  } catch (err) {
    throw new DeviceError('HID_LIST_FAILED', `Listing HID devices failed (node-hid): ${(err as Error).message}`, { retryable: true, cause: err });
  }
  const out: HidDeviceListing[] = [];
  for (const d of devices) {
    if (!d.path) continue; // hidapi cannot open a device without a path
    out.push({
      path: d.path,
      vendorId: d.vendorId,
      productId: d.productId,
      serialNumber: defined(d.serialNumber),
      manufacturer: defined(d.manufacturer),
      product: defined(d.product),
      interface: d.interface,
      usagePage: d.usagePage,
      usage: d.usage,
    });
  }
  return out;
}
