/**
 * Method 5's certificates issued ahead of the run (`station prepare` on a seed-derived work
 * order; implemented by manufacturer-db: src/manufacturer-db/prepared-seed-store.ts). A prepared
 * chip has a serial, a device record waiting for its device (status `issued`, port `prepare`),
 * and an active certificate over the key its seed derives. The device that presents the chip
 * takes that serial at the assign stage.
 */
import type { DeviceAttachment } from './prepared-keys';

export interface PreparedSeedCertificate {
  serial: string;
  certificateDer: Buffer;
}

export interface PreparedSeedCertificates {
  /**
   * The serial and certificate prepared for this chip in this work order, now attached to the device presenting it
   * (one transaction, audited); undefined when the chip has none waiting (never prepared, or its
   * prepared record failed): the method then assigns and issues at the line as usual. A chip
   * whose prepared record already went to another device is not returned again (the seed binding
   * then refuses the clone).
   */
  claim(chipId: string, workOrderId: string, device: DeviceAttachment): PreparedSeedCertificate | undefined;
}
