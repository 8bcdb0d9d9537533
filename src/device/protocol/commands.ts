/** Protocol v1 command ids, TLV tags and item ids (docs/device-protocol.md). */

export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 1;

export const Command = {
  HELLO: 0x01,
  IDENTIFY: 0x02,
  GENERATE_KEY: 0x10,
  GET_CSR: 0x11,
  GET_PUBLIC_KEY: 0x12,
  GET_TRANSPORT_KEY: 0x13,
  INSTALL_WRAPPED_KEY: 0x14,
  DERIVE_SEED_KEY: 0x15,
  READ_SE_INFO: 0x16,
  INSTALL_CHAIN: 0x20,
  WRITE_ITEM: 0x21,
  READ_ITEM: 0x30,
  SIGN_CHALLENGE: 0x31,
  BUILD_VOUCHER_REQUEST: 0x32,
  VERIFY_VOUCHER: 0x33,
  LOCK: 0x40,
  REWORK: 0x41,
} as const;

export type CommandName = keyof typeof Command;
export type CommandId = (typeof Command)[CommandName];

/**
 * Names by id, built once: DeviceConnection names the command of every frame it writes (its
 * trace line), and a search of Object.entries per frame was a tenth of the link's hot JS.
 */
const COMMAND_NAMES = new Map<number, string>(Object.entries(Command).map(([name, id]) => [id, name]));

export function commandName(id: number): string {
  return COMMAND_NAMES.get(id) ?? `0x${id.toString(16).padStart(2, '0')}`;
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
  METHODS: 0x16,
  SE_TYPE: 0x17,
  SE_SERIAL: 0x18,
  CHIP_ID: 0x19,
  KEY_LOCATION: 0x20,
  PUBLIC_KEY: 0x21,
  SUBJECT_SERIAL: 0x22,
  CSR: 0x23,
  SUBJECT_CN: 0x24,
  SUBJECT_O: 0x25,
  PEER_PUBLIC_KEY: 0x26,
  WRAPPED_KEY: 0x27,
  CERTIFICATE: 0x30,
  ITEM_ID: 0x31,
  ITEM_VALUE: 0x32,
  NONCE: 0x40,
  CONTEXT: 0x41,
  SIGNATURE: 0x42,
  VOUCHER_REQUEST: 0x43,
  VOUCHER: 0x44,
  REGISTRAR_CERT: 0x45,
  CREATED_ON: 0x46,
  REWORK_AUTH: 0x47,
  ERROR_DETAIL: 0x50,
} as const;

/** Where GENERATE_KEY makes the key. */
export const KeyLocation = { SECURE_ELEMENT: 1, DEVICE: 2 } as const;
export type KeyLocationId = (typeof KeyLocation)[keyof typeof KeyLocation];

/**
 * Items that WRITE_ITEM / READ_ITEM address. IDEVID_CHAIN is written by INSTALL_CHAIN and read
 * with READ_ITEM (repeated CERTIFICATE items); the others carry one ITEM_VALUE.
 */
export const Item = {
  IDEVID_CHAIN: 0x01,
  DPP_URI: 0x02,
  MASA_TRUST_ANCHOR: 0x03,
  MUD_URL: 0x04,
  APP_BOOTSTRAP: 0x05,
  /** The device's MAC addresses, 6 bytes each, concatenated (1..8); written when the product's MACs come from the station's block. */
  MAC_ADDRESSES: 0x06,
} as const;
export type ItemId = (typeof Item)[keyof typeof Item];

const ITEM_NAMES = new Map<number, string>(Object.entries(Item).map(([name, id]) => [id, name]));

export function itemName(id: number): string {
  return ITEM_NAMES.get(id) ?? `item 0x${id.toString(16).padStart(2, '0')}`;
}

/** Capability bits in IDENTIFY's CAPABILITIES (u32). */
export const Capability = {
  SECURE_ELEMENT: 1 << 0,
  DEVICE_KEYGEN: 1 << 1,
  SE_KEYGEN: 1 << 2,
  KEY_INJECTION: 1 << 3,
  SE_PREPROVISIONED: 1 << 4,
  SEED_DERIVATION: 1 << 5,
  BRSKI: 1 << 6,
} as const;

/** Bits of IDENTIFY's METHODS (u32): the birth-credential methods the firmware supports. */
export const MethodBit = {
  'on-device-keygen': 1 << 0,
  'secure-element-keygen': 1 << 1,
  'factory-injected-key': 1 << 2,
  'se-preprovisioned': 1 << 3,
  'seed-derived': 1 << 4,
} as const;
