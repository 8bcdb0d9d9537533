/**
 * The GUI's hot-plug source over the station's port discovery (src/device/discovery): serial
 * ports by path (the stable link name when a watched folder has one), HID devices as `hid:PATH`,
 * with the configured VID/PID filters. See docs/discovery.md.
 */
import type { DiscoveryConfig } from '../../core/config';
import { createPortDiscovery, type CreatePortDiscoveryOptions } from '../../device/discovery/create-port-discovery';
import type { PortDiscovery } from '../../device/discovery/port-discovery';
import type { PortCandidate } from '../../device/discovery/port-candidate';
import type { PortHotPlug } from './station-api-service';

export function portName(c: PortCandidate): string {
  return c.kind === 'hid' ? `hid:${c.path}` : c.path;
}

export function hotPlugOver(discovery: PortDiscovery): PortHotPlug {
  return {
    watch(onChange) {
      return discovery.watch((e) => onChange({ type: e.type === 'port-added' ? 'added' : 'removed', port: portName(e.port) }));
    },
  };
}

export function discoveryHotPlug(config: DiscoveryConfig, options: CreatePortDiscoveryOptions = {}): PortHotPlug {
  return hotPlugOver(createPortDiscovery(config, options));
}
