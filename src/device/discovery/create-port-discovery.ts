/** The real discovery: udev serial ports, watched path globs and HID devices, with the configured filters. */
import type { DiscoveryConfig } from '../../core/config';
import type { Clock } from '../../core/clock';
import { GlobPortLister } from './glob-port-lister';
import { HidPortLister } from './hid-port-lister';
import { PortDiscovery, type Scheduler } from './port-discovery';
import { UdevSerialLister } from './udev-serial-lister';

export interface CreatePortDiscoveryOptions {
  /** More globs or folders to watch (`station ports --link-dir DIR`). */
  extraWatch?: readonly string[];
  /** List HID devices through node-hid (default true). */
  hid?: boolean;
  pollIntervalMs?: number;
  debounceMs?: number;
  scheduler?: Scheduler;
  clock?: Clock;
}

export function createPortDiscovery(config: DiscoveryConfig, options: CreatePortDiscoveryOptions = {}): PortDiscovery {
  const watch = [...config.watch, ...(options.extraWatch ?? [])];
  return new PortDiscovery({
    listers: [new UdevSerialLister(), new GlobPortLister(watch), ...(options.hid === false ? [] : [new HidPortLister()])],
    usbFilters: config.usbFilters,
    pollIntervalMs: options.pollIntervalMs,
    debounceMs: options.debounceMs,
    scheduler: options.scheduler,
    clock: options.clock,
  });
}
