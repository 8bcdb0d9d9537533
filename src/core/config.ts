/**
 * The station's one typed configuration, validated at start with specific messages.
 * Product profiles and work orders are data, not code. Secrets never live here:
 * a PIN is named by its source (an environment variable or a 0600 file).
 */
import { z } from 'zod';
import { ConfigError } from './errors';
import { METHOD_IDS } from './method-id';
import { parseKeyUri } from './pkcs11-uri';

const PRINTABLE_STRING = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const OID = /^[0-2](\.(0|[1-9]\d*))+$/;

export const PinSourceSchema = z
  .object({
    env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').optional(),
    file: z.string().min(1).optional(),
  })
  .strict()
  .refine((p) => p.env !== undefined || p.file !== undefined, 'name an env variable or a 0600 file for the PIN');

/** An RFC 7512 URI naming a private key; the message of a bad one never repeats the URI. */
const KeyUriSchema = z.string().superRefine((value, ctx) => {
  try {
    parseKeyUri(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof ConfigError ? err.message : 'not a valid PKCS#11 URI' });
  }
});

export const HsmConfigSchema = z
  .object({
    module: z.string().min(1),
    tokenLabel: z.string().min(1).max(32),
    caKeyLabel: z.string().min(1),
    rootKeyLabel: z.string().min(1),
    pin: PinSourceSchema,
    /**
     * PKCS#11 URIs (RFC 7512) of the IDevID CA key and the root key. When given, each attribute
     * the URI names (module-path, token, object, id, pin-source...) overrides the matching field
     * above; see resolveHsmKey and docs/hsm.md. A URI with pin-value is refused.
     */
    caKeyUri: KeyUriSchema.optional(),
    rootKeyUri: KeyUriSchema.optional(),
    /** Method 5: labels of the seed-import P-256 key pair and the seed vault's AES key on the token (defaults seed-import, seed-vault). */
    seedImportKeyLabel: z.string().min(1).max(64).optional(),
    seedVaultKeyLabel: z.string().min(1).max(64).optional(),
    /** Method 3: label of the KEK (AES-256, WRAP/UNWRAP only) that prepared keys rest wrapped under (default station-kek). */
    kekLabel: z.string().min(1).max(64).optional(),
  })
  .strict();

export const IdevidProfileSchema = z
  .object({
    organization: z.string().regex(PRINTABLE_STRING).max(64),
    organizationalUnit: z.string().regex(PRINTABLE_STRING).max(64).optional(),
    /** Common name: a literal, or "{model}" / "{serial}" placeholders. */
    commonName: z.string().max(64).optional(),
    serialNumberInSubject: z.boolean(),
    masaUrl: z
      .string()
      .regex(/^https:\/\/[\x21-\x7e]+$/, 'an https:// URL in IA5 characters')
      .optional(),
    hardwareModuleName: z.object({ hwType: z.string().regex(OID, 'a dotted OID') }).strict().optional(),
    subjectKeyIdentifier: z.boolean(),
    authorityKeyIdentifier: z.boolean(),
    /** null = no expiry (notAfter 99991231235959Z, IEEE 802.1AR). */
    validityDays: z.number().int().positive().nullable(),
  })
  .strict();

export const DppProfileSchema = z
  .object({
    channels: z.array(z.string().regex(/^\d{1,3}\/\d{1,3}$/)),
    includeMac: z.boolean(),
    includeSerialAsInfo: z.boolean(),
    version: z.number().int().min(1).max(9).optional(),
  })
  .strict();

export const LabelTemplateSchema = z
  .object({
    widthMm: z.number().positive().max(200),
    heightMm: z.number().positive().max(200),
    dpi: z.union([z.literal(203), z.literal(300), z.literal(600)]),
    qrErrorCorrection: z.enum(['L', 'M', 'Q', 'H']),
    /** A Code 128 barcode of the serial under the text. */
    code128Serial: z.boolean(),
    /** Which lines of text the label shows (the serial always). */
    showModel: z.boolean(),
    showMac: z.boolean(),
    showDate: z.boolean(),
  })
  .strict();

const HOST = z.string().min(1).max(253);

/** Where labels go. The station renders the format the printer takes. */
export const PrinterConfigSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), dir: z.string().min(1).optional(), format: z.enum(['png', 'zpl', 'svg']) }).strict(),
  z
    .object({
      kind: z.literal('tcp9100'),
      host: HOST,
      port: z.number().int().min(1).max(65535),
      timeoutMs: z.number().int().positive(),
      /** Ask the printer for its host status (~HS) before each job. */
      statusQuery: z.boolean(),
    })
    .strict(),
  z.object({ kind: z.literal('serial'), path: z.string().min(1), baudRate: z.number().int().positive(), timeoutMs: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('cups'), queue: z.string().regex(/^[A-Za-z0-9_.\-]{1,127}$/), format: z.enum(['png', 'zpl']), timeoutMs: z.number().int().positive() }).strict(),
]);

/** A firmware version as dotted numbers (1.4.2); compared number by number. */
const FIRMWARE_VERSION = /^\d+(\.\d+){0,3}$/;

/**
 * What the install stage writes besides the IDevID chain and the DPP URI (SP 1800-36B 4.1 step
 * 4), each read back and compared. Paths are relative to the station's data dir.
 */
export const InstallItemsSchema = z
  .object({
    /** PEM certificate the device trusts for vouchers (BRSKI): the MASA's signing certificate. */
    masaTrustAnchor: z.string().min(1).optional(),
    /** RFC 8520 MUD URL (https). */
    mudUrl: z
      .string()
      .regex(/^https:\/\/[\x21-\x7e]+$/, 'an https:// URL without spaces')
      .max(255)
      .optional(),
    /** Application-layer bootstrap information, UTF-8 text (e.g. a cloud endpoint and tenant). */
    appBootstrap: z.string().min(1).max(1024).optional(),
  })
  .strict();

/**
 * Method 4 (se-preprovisioned) per product: `issueIdevid` true (the default, and what the demo
 * line and simulate mode use) issues our IDevID over the SE key through a CSR the SE signs; false
 * keeps the SE vendor's certificate (from the imported manifest) as the device's IDevID
 * (docs/se-manifest.md §8).
 */
export const SePreprovisionedProductSchema = z
  .object({
    issueIdevid: z.boolean({ error: 'sePreprovisioned.issueIdevid must be true (issue our IDevID over the SE key) or false (keep the SE vendor\'s certificate as the IDevID)' }),
  })
  .strict();

/**
 * Where a product's MAC addresses come from: the device reports its own (`device`, the
 * default), or the station allocates `count` consecutive ones (default 1) from this station's
 * MAC blocks, imported with `station db import-blocks`, and writes them to the device (`block`).
 */
export const MacSourceSchema = z.discriminatedUnion(
  'kind',
  [
    z
      .object({ kind: z.literal('device') }, { error: (iss) => (iss.code === 'unrecognized_keys' ? `macSource kind "device" takes no other field (${iss.keys.join(', ')}: count is for kind "block")` : undefined) })
      .strict(),
    z
      .object({
        kind: z.literal('block'),
        count: z
          .number({ error: 'macSource.count is how many consecutive MACs a device takes: a whole number from 1 to 8' })
          .int('macSource.count must be a whole number from 1 to 8')
          .min(1, 'macSource.count must be at least 1 (a device takes 1 to 8 MACs)')
          .max(8, 'macSource.count must be at most 8 (a device takes 1 to 8 MACs)')
          .default(1),
      })
      .strict(),
  ],
  { error: 'macSource.kind must be "device" (the device reports its MACs) or "block" (the station allocates them from its MAC block)' },
);

export const ProductProfileSchema = z
  .object({
    model: z.string().regex(PRINTABLE_STRING).min(1).max(64),
    /** The methods this product may be built with; absent = any. A work order's method must be one of them. */
    methods: z.array(z.enum(METHOD_IDS)).min(1).optional(),
    /** Firmware versions the station accepts on this product, inclusive; absent bound = open. */
    firmware: z
      .object({ min: z.string().regex(FIRMWARE_VERSION).optional(), max: z.string().regex(FIRMWARE_VERSION).optional() })
      .strict()
      .optional(),
    idevid: IdevidProfileSchema,
    dpp: DppProfileSchema,
    label: LabelTemplateSchema,
    install: InstallItemsSchema.default({}),
    /** Absent = { kind: 'device' }: the MACs the device reports (see MacSourceSchema). */
    macSource: MacSourceSchema.optional(),
    /** Method 4 only; absent = { issueIdevid: true } (see SePreprovisionedProductSchema). */
    sePreprovisioned: SePreprovisionedProductSchema.optional(),
  })
  .strict();

/** -1, 0 or 1: a firmware version against another, number by number (1.10 > 1.9). */
export function compareFirmwareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Why a device's firmware is outside the product's range, or null when it is inside. */
export function firmwareOutOfRange(version: string, range: { min?: string; max?: string } | undefined): string | null {
  if (!range) return null;
  if (!FIRMWARE_VERSION.test(version)) return `firmware version "${version}" is not a dotted version number`;
  if (range.min && compareFirmwareVersions(version, range.min) < 0) return `firmware ${version} is older than ${range.min}, the oldest this product accepts`;
  if (range.max && compareFirmwareVersions(version, range.max) > 0) return `firmware ${version} is newer than ${range.max}, the newest this product accepts`;
  return null;
}

export const SerialFormatSchema = z
  .object({
    prefix: z.string().regex(/^[A-Za-z0-9\-.:]*$/, 'letters, digits, "-", "." and ":" only'),
    width: z.number().int().min(1).max(18),
    first: z.number().int().nonnegative(),
    last: z.number().int().nonnegative(),
  })
  .strict()
  .refine((s) => s.last >= s.first, 'serial.last must be >= serial.first')
  .refine((s) => String(s.last).length <= s.width, 'serial.width is too small for serial.last')
  .refine((s) => s.prefix.length + s.width <= 64, 'a serial is at most 64 characters (PrintableString)');

export const WorkOrderSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_.\-]{1,64}$/),
    product: z.string().min(1),
    method: z.enum(METHOD_IDS),
    serial: SerialFormatSchema,
    owner: z.string().optional(),
  })
  .strict();

export const DeviceLinkSchema = z
  .object({
    baudRate: z.number().int().positive(),
    commandTimeoutMs: z.number().int().positive(),
    keygenTimeoutMs: z.number().int().positive(),
  })
  .strict();

const HEX4 = /^[0-9a-fA-F]{4}$/;

/** A USB vendor (and optionally product) id, 4 hex digits each; matched case-insensitively. */
export const UsbFilterSchema = z
  .object({
    vendorId: z.string().regex(HEX4, '4 hex digits'),
    productId: z.string().regex(HEX4, '4 hex digits').optional(),
  })
  .strict();

/**
 * Port discovery (docs/discovery.md). `watch`: path globs, each a folder and a simple `*`
 * pattern in its last part (`/dev/serial/by-id/*`); an entry without `*` means every entry of
 * that folder. `usbFilters`: when not empty, only ports whose USB ids match one filter are
 * listed (ports without USB ids found in a watched folder, such as PTY links, are kept).
 */
export const DiscoveryConfigSchema = z
  .object({
    watch: z.array(
      z
        .string()
        .min(1)
        .refine((g) => !g.slice(0, g.lastIndexOf('/')).includes('*'), 'a `*` is allowed only in the last part of a watch glob'),
    ),
    usbFilters: z.array(UsbFilterSchema),
  })
  .strict();

/**
 * Method 4: whom the station trusts for SE manifests (docs/se-manifest.md). PEM files (one or
 * more certificates each), absolute or relative to the data dir: the vendor's manifest signer
 * certificates (matched by the x5t#S256 of each entry) and the SE vendor CAs the SE certificates
 * must chain to.
 */
export const SeVendorConfigSchema = z
  .object({
    manifestSignerCertificates: z.array(z.string().min(1)).min(1),
    vendorCaCertificates: z.array(z.string().min(1)).min(1),
  })
  .strict();

/**
 * Records + sync (docs/records-and-sync.md, docs/sync-api.md): where the outbox delivers signed
 * device records. A target that is not configured is `disabled` (contracts.md §5); no `sync` at
 * all = both disabled. Paths are absolute or relative to the data dir; the client key and
 * certificate default to what `station ca station-cert` writes (sync/client-key.pem, a 0600
 * file separate from the HSM key, and sync/client-cert.pem).
 */
export const SyncTargetConfigSchema = z
  .object({
    url: z.string().regex(/^https:\/\/[^\s/]+(\/[^\s]*)?$/, 'an https:// URL'),
    /** PEM: the CA that issued the service's TLS certificate. */
    serverCaCertificate: z.string().min(1),
  })
  .strict();

export const SyncConfigSchema = z
  .object({
    masa: SyncTargetConfigSchema.optional(),
    supplyChain: SyncTargetConfigSchema.optional(),
    clientKey: z.string().min(1).default('sync/client-key.pem'),
    clientCertificate: z.string().min(1).default('sync/client-cert.pem'),
    /** Records per request (docs/sync-api.md allows 1..1000). */
    batchSize: z.number().int().min(1).max(1000).default(200),
    requestTimeoutMs: z.number().int().positive().default(15_000),
    retry: z
      .object({
        initialMs: z.number().int().positive().default(1000),
        maxMs: z.number().int().positive().default(300_000),
        factor: z.number().min(1).max(10).default(2),
      })
      .strict()
      .default({ initialMs: 1000, maxMs: 300_000, factor: 2 }),
    /** While a target refuses the station (401/403), how often to try it again. */
    pauseProbeMs: z.number().int().positive().default(30_000),
  })
  .strict();

export const StationConfigSchema = z
  .object({
    stationId: z.string().regex(/^[A-Za-z0-9_.\-]{1,64}$/),
    hsm: HsmConfigSchema,
    products: z.record(z.string(), ProductProfileSchema),
    workOrders: z.array(WorkOrderSchema).min(1),
    defaultWorkOrder: z.string(),
    deviceLink: DeviceLinkSchema,
    printer: PrinterConfigSchema,
    ports: z.array(z.string()).default([]),
    discovery: DiscoveryConfigSchema.default({ watch: ['/dev/serial/by-id/*'], usbFilters: [] }),
    seVendor: SeVendorConfigSchema.optional(),
    sync: SyncConfigSchema.optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    for (const wo of cfg.workOrders) {
      const product = cfg.products[wo.product];
      if (!product) {
        ctx.addIssue({ code: 'custom', message: `work order ${wo.id} names unknown product ${wo.product}`, path: ['workOrders'] });
      } else if (product.methods && !product.methods.includes(wo.method)) {
        ctx.addIssue({ code: 'custom', message: `work order ${wo.id} uses method ${wo.method}, which product ${wo.product} does not allow (${product.methods.join(', ')})`, path: ['workOrders'] });
      }
    }
    if (!cfg.workOrders.some((w) => w.id === cfg.defaultWorkOrder)) {
      ctx.addIssue({ code: 'custom', message: `defaultWorkOrder ${cfg.defaultWorkOrder} is not a work order`, path: ['defaultWorkOrder'] });
    }
  });

export type PinSource = z.infer<typeof PinSourceSchema>;
export type HsmConfig = z.infer<typeof HsmConfigSchema>;
export type IdevidProfile = z.infer<typeof IdevidProfileSchema>;
export type DppProfile = z.infer<typeof DppProfileSchema>;
export type LabelTemplate = z.infer<typeof LabelTemplateSchema>;
export type PrinterConfig = z.infer<typeof PrinterConfigSchema>;
export type ProductProfile = z.infer<typeof ProductProfileSchema>;
export type MacSource = z.infer<typeof MacSourceSchema>;
export type SerialFormat = z.infer<typeof SerialFormatSchema>;
export type WorkOrder = z.infer<typeof WorkOrderSchema>;
export type UsbFilter = z.infer<typeof UsbFilterSchema>;
export type DiscoveryConfig = z.infer<typeof DiscoveryConfigSchema>;
export type SeVendorConfig = z.infer<typeof SeVendorConfigSchema>;
export type StationConfig = z.infer<typeof StationConfigSchema>;
export type SyncConfig = z.infer<typeof SyncConfigSchema>;
export type SyncTargetConfig = z.infer<typeof SyncTargetConfigSchema>;

/**
 * The embedded defaults: the demo line. Its product profile turns on every IDevID
 * feature the station supports (serialNumber, MASA URL, hardwareModuleName, SKI/AKI,
 * no expiry).
 */
export function defaultStationConfig(): StationConfig {
  return {
    stationId: 'station-1',
    hsm: {
      module: '/usr/lib/softhsm/libsofthsm2.so',
      tokenLabel: 'station-ca',
      caKeyLabel: 'idevid-issuing-ca',
      rootKeyLabel: 'idevid-root-ca',
      pin: { env: 'STATION_HSM_PIN', file: 'hsm-pin' },
    },
    products: {
      'demo-sensor': {
        model: 'DemoSensor-1',
        idevid: {
          organization: 'Example Devices Inc',
          organizationalUnit: 'IDevID',
          commonName: '{model}',
          serialNumberInSubject: true,
          masaUrl: 'https://masa.example.com:9443',
          // 1.3.6.1.4.1.55555 is an example private enterprise arc for the demo hardware type.
          hardwareModuleName: { hwType: '1.3.6.1.4.1.55555.1.1' },
          subjectKeyIdentifier: true,
          authorityKeyIdentifier: true,
          validityDays: null,
        },
        dpp: { channels: ['81/1', '81/6', '81/11'], includeMac: true, includeSerialAsInfo: true, version: 2 },
        label: { widthMm: 50, heightMm: 25, dpi: 300, qrErrorCorrection: 'M', code128Serial: true, showModel: true, showMac: true, showDate: true },
        // The simulator's firmware reports 1.0.0; a line sets the range its QA released.
        firmware: { min: '1.0.0' },
        install: {
          mudUrl: 'https://mud.example.com/demo-sensor.json',
          appBootstrap: 'mqtts://iot.example.com:8883 tenant=demo',
        },
      },
    },
    workOrders: [
      {
        id: 'WO-DEMO-1',
        product: 'demo-sensor',
        method: 'secure-element-keygen',
        serial: { prefix: 'DEMO-', width: 6, first: 1, last: 999999 },
      },
      {
        // Method 1: the device makes its key with its own RNG (no SE); recorded from its report.
        id: 'WO-DEMO-DEVKEY',
        product: 'demo-sensor',
        method: 'on-device-keygen',
        serial: { prefix: 'DEVK-', width: 6, first: 1, last: 999999 },
      },
      {
        // Method 3: keys made in the HSM and injected wrapped (station prepare, or --inject at-station).
        id: 'WO-DEMO-INJECT',
        product: 'demo-sensor',
        method: 'factory-injected-key',
        serial: { prefix: 'INJ-', width: 6, first: 1, last: 999999 },
      },
      {
        // Method 4: the SE arrives with a vendor key listed in a signed manifest (station import se-manifest).
        id: 'WO-DEMO-SE',
        product: 'demo-sensor',
        method: 'se-preprovisioned',
        serial: { prefix: 'SEP-', width: 6, first: 1, last: 999999 },
      },
      {
        // Method 5: keys derived from the chip vendor's seeds (station import seeds).
        id: 'WO-DEMO-SEED',
        product: 'demo-sensor',
        method: 'seed-derived',
        serial: { prefix: 'SEED-', width: 6, first: 1, last: 999999 },
      },
    ],
    defaultWorkOrder: 'WO-DEMO-1',
    deviceLink: { baudRate: 115200, commandTimeoutMs: 3000, keygenTimeoutMs: 15000 },
    // The demo "prints" ZPL jobs into OUT/labels/printed; a line points this at its printer.
    printer: { kind: 'file', format: 'zpl' },
    ports: [],
    // Stable names of USB serial adapters; a line adds its own folders (the simulator's links/).
    discovery: { watch: ['/dev/serial/by-id/*'], usbFilters: [] },
  };
}

export function parseStationConfig(input: unknown, source = 'configuration'): StationConfig {
  const result = StationConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError('CONFIG_INVALID', `The ${source} is not valid:\n${lines.join('\n')}`);
  }
  return result.data;
}

export function formatSerial(format: SerialFormat, n: number): string {
  return format.prefix + String(n).padStart(format.width, '0');
}
