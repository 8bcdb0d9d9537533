/**
 * What the operator does about a failed device, in words, by error code. The station's message
 * says what went wrong on which port; this says what to do next and whether Retry can help.
 * Unknown codes fall back to the stage.
 */
import type { StageName } from '../../core/errors';

export interface OperatorAdvice {
  action: string;
  retryable: boolean;
}

const RESEAT = 'Check the cable, reseat the device and press Retry.';

const BY_CODE: Readonly<Record<string, OperatorAdvice>> = {
  DEVICE_TIMEOUT: { action: `The device stopped answering. ${RESEAT}`, retryable: true },
  TRANSPORT_DISCONNECTED: { action: 'The device was unplugged or lost power. Plug it in again and press Retry.', retryable: true },
  TRANSPORT_OPEN_FAILED: { action: 'The station cannot open this port. Check the cable and the USB adapter, then press Retry.', retryable: true },
  TRANSPORT_WRITE_FAILED: { action: `The station could not send to the device. ${RESEAT}`, retryable: true },
  DEVICE_BAD_RESPONSE: { action: `The device answered with garbage. ${RESEAT} If it fails again, put it in the rework tray.`, retryable: true },
  DEVICE_PROTOCOL_VERSION: { action: 'The device firmware speaks another protocol version. Put it in the rework tray to be reflashed.', retryable: false },
  DEVICE_ALREADY_LOCKED: { action: 'This device was provisioned before. Do not retry: put it in the rework tray and tell the supervisor.', retryable: false },
  DEVICE_WRONG_MODEL: { action: 'This is the wrong product for the selected work order. Take it off the line, or ask the supervisor to change the work order.', retryable: false },
  DEVICE_FIRMWARE_UNSUPPORTED: { action: 'The device has firmware this product does not accept. Put it in the rework tray to be reflashed.', retryable: false },
  METHOD_UNSUPPORTED_BY_DEVICE: { action: 'The device cannot use this work order\'s method. Take it off the line and tell the supervisor.', retryable: false },
  DEVICE_NO_MAC: { action: 'The device reports no MAC address. Put it in the rework tray.', retryable: false },
  CSR_SERIAL_MISMATCH: { action: 'The device asked for a certificate with the wrong serial number. Press Retry once; if it fails again, put it in the rework tray.', retryable: true },
  CSR_SIGNATURE_INVALID: { action: 'The device\'s certificate request is damaged. Press Retry once; if it fails again, put it in the rework tray.', retryable: true },
  CSR_KEY_MISMATCH: { action: 'The device\'s key and request do not match. Put it in the rework tray and tell the supervisor.', retryable: false },
  CSR_MALFORMED: { action: 'The device sent an unreadable certificate request. Put it in the rework tray.', retryable: false },
  KEY_ALREADY_CERTIFIED: { action: 'Stop the line and call the supervisor: a key was reused.', retryable: false },
  READBACK_MISMATCH: { action: 'What the device stored differs from what was written. Press Retry once; if it fails again, put it in the rework tray.', retryable: true },
  CHALLENGE_FAILED: { action: 'The device cannot prove it holds its key. Do not ship it: put it in the rework tray.', retryable: false },
  DEVICE_KEY_CHANGED: { action: 'The device no longer holds the key in its certificate. Do not ship it: put it in the rework tray.', retryable: false },
  ISSUANCE_INTERRUPTED: { action: 'The station stopped while issuing this device\'s certificate. Press Retry to provision it again.', retryable: true },
  HSM_UNAVAILABLE: { action: 'The line is stopped: the HSM is not answering. Call the supervisor; check the HSM, then start the run again.', retryable: false },
  SERIAL_RANGE_EXHAUSTED: { action: 'The work order has no serials left. Ask the supervisor for the next work order.', retryable: false },
  MAC_BLOCK_EXHAUSTED: { action: 'The MAC address block is used up. Call the supervisor.', retryable: false },
  MAC_ALREADY_USED: { action: 'The device reports a MAC address that another device has. Put it in the rework tray and tell the supervisor.', retryable: false },
  RUN_INTERRUPTED: { action: 'The run was stopped before this device finished. Press Retry to provision it.', retryable: true },
  DB_DISK_FULL: { action: 'The station\'s disk is full. Call the supervisor; nothing was lost.', retryable: false },
  CSR_KEY_ALREADY_CERTIFIED: { action: 'Stop: this device\'s key is already in another device\'s certificate (a cloned or broken device). Set both aside and call the supervisor.', retryable: false },
  REPORT_MISMATCH_JOURNAL: { action: 'The device reports a credential other than the one the station issued. Do not ship it: put it in the rework tray and tell the supervisor.', retryable: false },
  RUN_CRASHED: { action: 'The station stopped while this device was being provisioned. Put it in the rework tray; it is provisioned again under a new serial.', retryable: false },
  DEVICE_MAC_FIXED: { action: 'This device\'s MAC addresses are burned in, but the product takes them from the station\'s block. Take it off the line and tell the supervisor.', retryable: false },
  PREPARED_KEYS_EXHAUSTED: { action: 'No prepared keys are left for this work order. Ask the supervisor to run "station prepare".', retryable: false },
  INJECTION_INTERRUPTED: { action: 'The station stopped while injecting this device\'s key; the key was burned. Press Retry to provision it again.', retryable: true },
  INJECTED_KEY_MISMATCH: { action: 'The device installed another key than the one injected. Do not ship it: put it in the rework tray.', retryable: false },
  INJECTED_KEY_HELD: { action: 'A key injected earlier is still reserved for this device. Put it in the rework tray and tell the supervisor.', retryable: false },
  HSM_WRAPPED_KEY_INVALID: { action: 'The prepared key for this device could not be unwrapped in the HSM; it was set aside. Press Retry to take the next key.', retryable: true },
  PREPARED_KEY_UNKNOWN: { action: 'The prepared key this device was given is not in the database. Stop the line and call the supervisor.', retryable: false },
  PREPARED_KEY_STATE_CONFLICT: { action: 'The prepared key changed state under the station (another station or a stop). Put the device in the rework tray and call the supervisor.', retryable: false },
  INJECTED_KEY_NOT_PROVEN: { action: 'The device did not prove it holds the key injected into it. Do not ship it: put it in the rework tray.', retryable: false },
  SE_UNKNOWN: { action: 'This secure element is in no imported vendor manifest. Take the device off the line and tell the supervisor (a manifest may be missing).', retryable: false },
  SE_KEY_MISMATCH: { action: 'The secure element holds another key than its vendor listed: a swapped or counterfeit part. Do not ship it: set it aside and call the supervisor.', retryable: false },
  SE_ALREADY_BOUND: { action: 'This secure element already belongs to another device: a reused or cloned part. Set it aside and call the supervisor.', retryable: false },
  SE_SERIAL_MISMATCH: { action: 'The secure element reports another serial than its certificate. Set the device aside and call the supervisor.', retryable: false },
  SE_CERTIFICATE_INVALID: { action: 'The secure element\'s vendor certificate is expired, not yet valid, or no longer chains to a trusted vendor CA. Set the device aside and call the supervisor.', retryable: false },
  SEED_UNKNOWN: { action: 'This chip is in no imported seed file. Take the device off the line and tell the supervisor (a seed file may be missing).', retryable: false },
  SEED_ALREADY_USED: { action: 'This chip\'s seed was used by another device: a reused or cloned chip. Set it aside and call the supervisor.', retryable: false },
  SEED_KEY_MISMATCH: { action: 'The chip derived another key than its seed on file. Do not ship it: put it in the rework tray and tell the supervisor.', retryable: false },
  DB_BUSY: { action: 'The database was busy. Press Retry.', retryable: true },
};

const BY_STAGE: Readonly<Record<StageName, OperatorAdvice>> = {
  connect: { action: `The device did not answer. ${RESEAT}`, retryable: true },
  identify: { action: `The device could not be identified. ${RESEAT}`, retryable: true },
  assign: { action: 'No serial number could be given. Call the supervisor.', retryable: false },
  'obtain-key': { action: 'The device could not make its key. Press Retry once; if it fails again, put it in the rework tray.', retryable: true },
  issue: { action: 'The certificate could not be issued. Call the supervisor.', retryable: false },
  install: { action: `Writing to the device failed. ${RESEAT}`, retryable: true },
  verify: { action: 'The device failed its check. Press Retry once; if it fails again, put it in the rework tray.', retryable: true },
  record: { action: 'The record could not be saved. Call the supervisor.', retryable: false },
  lock: { action: 'The device could not be locked. Press Retry once; if it fails again, put it in the rework tray.', retryable: true },
  label: { action: 'The label did not print; the device is good. Check the printer.', retryable: false },
  'queue-sync': { action: 'The record will be sent later; the device is good.', retryable: false },
};

export function adviceFor(code: string, stage: StageName | null): OperatorAdvice {
  return BY_CODE[code] ?? (stage ? BY_STAGE[stage] : undefined) ?? { action: 'Put the device in the rework tray and call the supervisor.', retryable: false };
}
