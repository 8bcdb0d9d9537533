/**
 * Products whose MACs the station allocates (`products.<p>.macSource: { kind: 'block' }`,
 * docs/configuration.md): which block request a device makes, writing the allocated MACs to the
 * device (WRITE_ITEM MAC_ADDRESSES) and reading them back in verify.
 * The allocation itself is the database's (src/manufacturer-db/blocks.ts): never twice.
 */
import type { ProductProfile, WorkOrder } from '../../core/config';
import { DeviceError, StationError } from '../../core/errors';
import type { DeviceClient } from '../../device/device-client';

export interface MacBlockRequest {
  /** The product id (the key under `products`), as MAC blocks name it. */
  product: string;
  count: number;
}

/** The block request for a device of this work order, or undefined when the device brings its own MACs. */
export function macBlockRequest(product: ProductProfile, workOrder: WorkOrder): MacBlockRequest | undefined {
  const source = product.macSource;
  return source?.kind === 'block' ? { product: workOrder.product, count: source.count } : undefined;
}

const formatMac = (mac: string): string => mac.replace(/(..)(?!$)/g, '$1:');

/**
 * Give the device the MACs allocated to it. A device whose MACs are burned in refuses
 * (UNSUPPORTED): DEVICE_MAC_FIXED. The MACs stay with its serial (burned, never given again).
 */
export async function writeBlockMacs(client: DeviceClient, macs: readonly string[], productId: string): Promise<void> {
  try {
    await client.writeMacs(macs);
  } catch (err) {
    if (err instanceof StationError && err.code === 'DEVICE_UNSUPPORTED') {
      throw new DeviceError(
        'DEVICE_MAC_FIXED',
        `The device on ${client.port} refused the MAC address${macs.length > 1 ? 'es' : ''} ${macs.map(formatMac).join(', ')} allocated to it: its MACs are burned in, but product ${productId} takes its MACs from the station's MAC block (macSource "block"). Set the device aside (a firmware or board for this product takes written MACs); the allocated addresses are burned, never given again.`,
        { stage: 'assign', details: { port: client.port, macs: macs.join(',') } },
      );
    }
    throw err;
  }
}

/** Verify: the device holds exactly the MACs written to it (READBACK_MISMATCH naming the item). */
export async function verifyBlockMacs(client: DeviceClient, macs: readonly string[]): Promise<void> {
  const back = await client.readMacs();
  if (back.length !== macs.length || back.some((m, i) => m !== macs[i])) {
    throw new DeviceError(
      'READBACK_MISMATCH',
      `The MAC addresses (item MAC_ADDRESSES) read back from the device on ${client.port} differ from what was written: ${back.map(formatMac).join(', ') || 'none'} instead of ${macs.map(formatMac).join(', ')}.`,
      { stage: 'verify' },
    );
  }
}
