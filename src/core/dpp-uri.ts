/**
 * The Wi-Fi Easy Connect (DPP) bootstrapping URI as a value type: build, parse, validate.
 * Format (contracts.md §7): `DPP:` then C:, M:, I:, V:, K: in that order, each `;`-terminated,
 * then a final `;`. K: is standard padded base64 of the DER SPKI with the compressed point.
 */
import { compressedP256Spki, isCompressedP256Spki } from './ec-public-key';

export interface DppUriFields {
  /** Global operating class/channel pairs, e.g. ["81/1", "115/36"]. Optional. */
  channels?: readonly string[];
  /** MAC address in any common notation; emitted as 12 lowercase hex digits. Optional. */
  mac?: string;
  /** Information field (the device serial). No `;`. Optional. */
  info?: string;
  /** DPP version; 2 for Easy Connect R2. Optional. */
  version?: number;
  /** The device's public key, as DER SPKI (compressed or not). */
  publicKeySpki: Uint8Array;
}

export class DppUriError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DppUriError';
  }
}

const CHANNEL_RE = /^\d{1,3}\/\d{1,3}$/;

export function normaliseMac(mac: string): string {
  const hex = mac.replace(/[:\-.]/g, '').toLowerCase();
  if (!/^[0-9a-f]{12}$/.test(hex)) throw new DppUriError(`not a MAC address: ${JSON.stringify(mac)}`);
  return hex;
}

export class DppUri {
  readonly channels: readonly string[];
  readonly mac: string | undefined;
  readonly info: string | undefined;
  readonly version: number | undefined;
  /** DER SPKI, compressed point. */
  readonly publicKeySpki: Buffer;

  private constructor(fields: DppUriFields) {
    this.channels = fields.channels ?? [];
    this.mac = fields.mac === undefined ? undefined : normaliseMac(fields.mac);
    this.info = fields.info;
    this.version = fields.version;
    this.publicKeySpki = compressedP256Spki(fields.publicKeySpki);
    for (const c of this.channels) {
      if (!CHANNEL_RE.test(c)) throw new DppUriError(`bad channel ${JSON.stringify(c)}: expected class/channel`);
    }
    if (this.info !== undefined && !/^[\x20-\x3a\x3c-\x7e]*$/.test(this.info)) {
      throw new DppUriError('the I: information field must be printable ASCII without ";"');
    }
    if (this.version !== undefined && (!Number.isInteger(this.version) || this.version < 1 || this.version > 9)) {
      throw new DppUriError('V: must be a single digit version');
    }
  }

  static build(fields: DppUriFields): DppUri {
    return new DppUri(fields);
  }

  static parse(uri: string): DppUri {
    if (!uri.startsWith('DPP:')) throw new DppUriError('a DPP URI starts with "DPP:"');
    if (!uri.endsWith(';;')) throw new DppUriError('a DPP URI ends with ";;"');
    const body = uri.slice(4, -1);
    const parts = body.split(';').slice(0, -1);
    const fields: Partial<DppUriFields> & { publicKeySpki?: Buffer } = {};
    const seen = new Set<string>();
    for (const part of parts) {
      const m = /^([A-Z]):(.*)$/.exec(part);
      if (!m) throw new DppUriError(`malformed field ${JSON.stringify(part)}`);
      const [, tag, value] = m as unknown as [string, string, string];
      if (seen.has(tag)) throw new DppUriError(`field ${tag}: appears twice`);
      seen.add(tag);
      switch (tag) {
        case 'C':
          fields.channels = value.split(',');
          break;
        case 'M':
          fields.mac = value;
          break;
        case 'I':
          fields.info = value;
          break;
        case 'V':
          fields.version = Number(value);
          break;
        case 'K': {
          if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) throw new DppUriError('K: is not standard base64');
          const der = Buffer.from(value, 'base64');
          if (!isCompressedP256Spki(der)) throw new DppUriError('K: is not a compressed P-256 SubjectPublicKeyInfo');
          fields.publicKeySpki = der;
          break;
        }
        default:
          // Unknown fields are allowed by the spec; this station does not emit them.
          break;
      }
    }
    if (!fields.publicKeySpki) throw new DppUriError('a DPP URI needs a K: field');
    return new DppUri(fields as DppUriFields);
  }

  toString(): string {
    let s = 'DPP:';
    if (this.channels.length > 0) s += `C:${this.channels.join(',')};`;
    if (this.mac !== undefined) s += `M:${this.mac};`;
    if (this.info !== undefined) s += `I:${this.info};`;
    if (this.version !== undefined) s += `V:${this.version};`;
    s += `K:${this.publicKeySpki.toString('base64')};;`;
    return s;
  }
}
