/**
 * createTransport: `hid:PATH` opens a HID transport only for a device the configured VID/PID
 * filters allow (as discovery does); other names are serial ports. The HID side runs over a
 * scripted node-hid device and a scripted hidapi listing (no HID device exists on this machine).
 */
import { describe, expect, it } from 'vitest';
import { HidTransport } from '../../../src/device/transport/hid-transport';
import { SerialTransport } from '../../../src/device/transport/serial-transport';
import { createTransport } from '../../../src/device/transport/transport-factory';
import type { HidDeviceListing } from '../../../src/device/transport/hid-device-list';
import { ScriptedHidDevice, echoFrames, hidFrameFarEnd } from '../../helpers/scripted-hid-device';
import { HID_DEFAULT_CHANNEL } from '../../../src/device/transport/hid-transport';

const listing: HidDeviceListing[] = [
  { path: '/dev/hidraw1', vendorId: 0x1209, productId: 0xa0f1, interface: 0 },
  { path: '/dev/hidraw2', vendorId: 0x046d, productId: 0xc52b, interface: 0 },
];

function factory(usbFilters: { vendorId: string; productId?: string }[]) {
  let opened = 0;
  const make = (port: string) =>
    createTransport(port, {
      baudRate: 115200,
      usbFilters,
      listHid: async () => listing,
      openHid: (path) =>
        new HidTransport({
          path,
          openDevice: async () => {
            opened++;
            return new ScriptedHidDevice(hidFrameFarEnd(HID_DEFAULT_CHANNEL, echoFrames));
          },
        }),
    });
  return { make, opened: () => opened };
}

describe('createTransport', () => {
  it('names a serial port by its path and a HID device by hid:PATH', () => {
    const { make } = factory([]);
    expect(make('/dev/ttyUSB0')).toBeInstanceOf(SerialTransport);
    const hid = make('hid:/dev/hidraw1');
    expect(hid).toBeInstanceOf(HidTransport);
    expect(hid.path).toBe('/dev/hidraw1');
  });

  it('opens a HID device whose ids a filter names', async () => {
    const { make, opened } = factory([{ vendorId: '1209' }]);
    const t = make('hid:/dev/hidraw1');
    await t.open();
    expect(opened()).toBe(1);
    await t.close();
  });

  it('refuses a HID device named on the command line that the filters do not allow, before opening it', async () => {
    const { make, opened } = factory([{ vendorId: '1209', productId: 'A0F1' }]);
    const t = make('hid:/dev/hidraw2');
    await expect(t.open()).rejects.toMatchObject({ code: 'HID_DEVICE_NOT_ALLOWED', message: expect.stringContaining('/dev/hidraw2 (046d:c52b)') });
    expect(opened()).toBe(0); // the device itself was never opened
  });

  it('refuses a HID path hidapi does not list', async () => {
    const { make } = factory([{ vendorId: '1209' }]);
    await expect(make('hid:/dev/hidraw9').open()).rejects.toMatchObject({ code: 'HID_DEVICE_NOT_FOUND', message: expect.stringContaining('/dev/hidraw9') });
  });
});
