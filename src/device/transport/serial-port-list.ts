/**
 * Serial port listing through serialport's `SerialPort.list()`, which runs `udevadm` on Linux
 * (Debian package udev). Besides serial-transport.ts, the only file of the station that imports
 * serialport; discovery sees only `SerialPortListing`.
 */
import { SerialPort } from 'serialport';
import { DeviceError } from '../../core/errors';

/** One port as udev describes it. USB ids are as udev prints them (4 hex digits). */
export interface SerialPortListing {
  path: string;
  manufacturer?: string;
  serialNumber?: string;
  vendorId?: string;
  productId?: string;
  pnpId?: string;
}

const defined = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

export async function listSerialPorts(): Promise<SerialPortListing[]> {
  let ports: Awaited<ReturnType<typeof SerialPort.list>>;
  try {
    ports = await SerialPort.list();
  } catch (err) {
    throw new DeviceError('PORT_LIST_FAILED', `Listing serial ports failed (serialport runs udevadm; install the Debian package udev): ${(err as Error).message}`, {
      retryable: true,
      cause: err,
    });
  }
  return ports.map((p) => ({
    path: p.path,
    manufacturer: defined(p.manufacturer),
    serialNumber: defined(p.serialNumber),
    vendorId: defined(p.vendorId),
    productId: defined(p.productId),
    pnpId: defined(p.pnpId),
  }));
}
