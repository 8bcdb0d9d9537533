/** HID devices through node-hid (hidapi). */
import { listHidDevices, type HidDeviceListing } from '../transport/hid-device-list';
import { normalizeUsbId, type PortCandidate, type PortLister } from './port-candidate';

export class HidPortLister implements PortLister {
  readonly name = 'HID devices';

  constructor(private readonly listDevices: () => Promise<HidDeviceListing[]> = listHidDevices) {}

  async list(): Promise<PortCandidate[]> {
    const devices = await this.listDevices();
    return devices.map((d) => ({
      kind: 'hid',
      path: d.path,
      vendorId: normalizeUsbId(d.vendorId),
      productId: normalizeUsbId(d.productId),
      serialNumber: d.serialNumber,
      manufacturer: d.manufacturer,
      source: 'hid',
    }));
  }
}
