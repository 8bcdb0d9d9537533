/** Serial ports as udev knows them, through serialport's listing (it runs `udevadm`). */
import { realpath } from 'node:fs/promises';
import { listSerialPorts, type SerialPortListing } from '../transport/serial-port-list';
import { normalizeUsbId, type PortCandidate, type PortLister } from './port-candidate';

export class UdevSerialLister implements PortLister {
  readonly name = 'udev serial ports';

  constructor(private readonly listPorts: () => Promise<SerialPortListing[]> = listSerialPorts) {}

  async list(): Promise<PortCandidate[]> {
    const ports = await this.listPorts();
    return Promise.all(
      ports.map(async (p): Promise<PortCandidate> => ({
        kind: 'serial',
        path: p.path,
        realPath: await realpath(p.path).catch(() => p.path),
        vendorId: normalizeUsbId(p.vendorId),
        productId: normalizeUsbId(p.productId),
        serialNumber: p.serialNumber,
        manufacturer: p.manufacturer,
        source: 'udev',
      })),
    );
  }
}
