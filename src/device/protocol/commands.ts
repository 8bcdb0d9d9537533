/** Protocol v1 command ids, TLV tags and item ids (docs/device-protocol.md). */

export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 1;

export const Command = {
  HELLO: 0x01,
  IDENTIFY: 0x02,
  GENERATE_KEY: 0x10,
  GET_CSR: 0x11,
  INSTALL_CHAIN: 0x20,
  WRITE_ITEM: 0x21,
  READ_ITEM: 0x30,
  SIGN_CHALLENGE: 0x31,
  LOCK: 0x40,
} as const;

export type CommandName = keyof typeof Command;
export type CommandId = (typeof Command)[CommandName];

export function commandName(id: number): string {
  for (const [name, value] of Object.entries(Command)) if (value === id) return name;
  return `0x${id.toString(16).padStart(2, '0')}`;
}

export const Tag = {
  VERSION_MIN: 0x01,
  VERSION_MAX: 0x02,
  VERSION: 0x03,
  MAX_PAYLOAD: 0x04,
  MODEL: 0x10,
  HARDWARE_ID: 0x11,
  FIRMWARE_VERSION: 0x12,
  MAC: 0x13,
  CAPABILITIES: 0x14,
  LOCKED: 0x15,
  KEY_LOCATION: 0x20,
  PUBLIC_KEY: 0x21,
  SUBJECT_SERIAL: 0x22,
  CSR: 0x23,
  CERTIFICATE: 0x30,
  ITEM_ID: 0x31,
  ITEM_VALUE: 0x32,
  NONCE: 0x40,
  CONTEXT: 0x41,
  SIGNATURE: 0x42,
  ERROR_DETAIL: 0x50,
} as const;

/** Where GENERATE_KEY makes the key. */
export const KeyLocation = { SECURE_ELEMENT: 1, DEVICE: 2 } as const;
export type KeyLocationId = (typeof KeyLocation)[keyof typeof KeyLocation];

/** Items that WRITE_ITEM / READ_ITEM address. INSTALL_CHAIN writes IDEVID_CHAIN. */
export const Item = { IDEVID_CHAIN: 0x01, DPP_URI: 0x02 } as const;
export type ItemId = (typeof Item)[keyof typeof Item];

/** Capability bits in IDENTIFY's CAPABILITIES (u32). */
export const Capability = {
  SECURE_ELEMENT: 1 << 0,
  DEVICE_KEYGEN: 1 << 1,
  SE_KEYGEN: 1 << 2,
} as const;
