/** Device status codes in response frames, and the station error each maps to. */

export const DeviceStatus = {
  OK: 0x00,
  UNKNOWN_COMMAND: 0x01,
  BAD_REQUEST: 0x02,
  BAD_STATE: 0x03,
  LOCKED: 0x04,
  SE_ERROR: 0x05,
  UNSUPPORTED_VERSION: 0x06,
  UNSUPPORTED: 0x07,
  VERIFY_FAILED: 0x08,
  INTERNAL: 0x7f,
} as const;

export type DeviceStatusCode = (typeof DeviceStatus)[keyof typeof DeviceStatus];

export const DEVICE_STATUS_INFO: Record<number, { name: string; errorCode: string; meaning: string }> = {
  [DeviceStatus.UNKNOWN_COMMAND]: { name: 'UNKNOWN_COMMAND', errorCode: 'DEVICE_UNKNOWN_COMMAND', meaning: 'the device firmware does not know this command' },
  [DeviceStatus.BAD_REQUEST]: { name: 'BAD_REQUEST', errorCode: 'DEVICE_BAD_REQUEST', meaning: 'the device rejected the request as malformed' },
  [DeviceStatus.BAD_STATE]: { name: 'BAD_STATE', errorCode: 'DEVICE_BAD_STATE', meaning: 'the device is not in a state to do this (a step was skipped)' },
  [DeviceStatus.LOCKED]: { name: 'LOCKED', errorCode: 'DEVICE_LOCKED', meaning: 'the device is already locked' },
  [DeviceStatus.SE_ERROR]: { name: 'SE_ERROR', errorCode: 'DEVICE_SE_ERROR', meaning: 'the device\'s secure element reported an error' },
  [DeviceStatus.UNSUPPORTED_VERSION]: { name: 'UNSUPPORTED_VERSION', errorCode: 'DEVICE_PROTOCOL_VERSION', meaning: 'no protocol version in common' },
  [DeviceStatus.UNSUPPORTED]: { name: 'UNSUPPORTED', errorCode: 'DEVICE_UNSUPPORTED', meaning: 'the device does not support this option' },
  [DeviceStatus.VERIFY_FAILED]: { name: 'VERIFY_FAILED', errorCode: 'DEVICE_VERIFY_FAILED', meaning: 'the device found what it was sent inconsistent' },
  [DeviceStatus.INTERNAL]: { name: 'INTERNAL', errorCode: 'DEVICE_INTERNAL_ERROR', meaning: 'the device reported an internal error' },
};
