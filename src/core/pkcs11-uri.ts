/**
 * PKCS#11 URIs (RFC 7512): `pkcs11:` path attributes separated by `;`, then optionally `?` and
 * query attributes separated by `&`. Values are percent-encoded UTF-8 (`id` is raw bytes);
 * `+` is a literal plus, never a space. Attribute names are case-sensitive; the scheme is not.
 *
 *   pkcs11:token=station-ca;object=idevid-issuing-ca;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:hsm-pin
 *
 * The station refuses `pin-value` outright: a PIN never goes in a URI, a configuration file or
 * a command line. Error messages name attributes and positions, never values, so that a URI
 * that did carry a PIN is not echoed into a log.
 */
import { ConfigError } from './errors';

export type Pkcs11ObjectType = 'public' | 'private' | 'cert' | 'secret-key' | 'data';

export interface Pkcs11UriAttribute {
  name: string;
  value: string;
}

/** A parsed PKCS#11 URI. Absent attributes are undefined; the empty string is a value. */
export interface Pkcs11Uri {
  // token
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  // library (the module, as CK_INFO describes it)
  libraryManufacturer?: string;
  libraryDescription?: string;
  /** "M" or "M.N" */
  libraryVersion?: string;
  // slot
  slotManufacturer?: string;
  slotDescription?: string;
  slotId?: number;
  // object
  object?: string;
  type?: Pkcs11ObjectType;
  /** CKA_ID, raw bytes. */
  id?: Buffer;
  // query
  moduleName?: string;
  modulePath?: string;
  /** As written: the station understands `env:NAME` and `file:PATH` (see pinSourceFromUri). */
  pinSource?: string;
  /** Attributes RFC 7512 does not define, in the order written. */
  vendorPath: Pkcs11UriAttribute[];
  vendorQuery: Pkcs11UriAttribute[];
}

/** Path attributes in the order the formatter writes them. */
const PATH_ATTRIBUTES = [
  ['token', 'token'],
  ['manufacturer', 'manufacturer'],
  ['serial', 'serial'],
  ['model', 'model'],
  ['library-manufacturer', 'libraryManufacturer'],
  ['library-description', 'libraryDescription'],
  ['library-version', 'libraryVersion'],
  ['slot-manufacturer', 'slotManufacturer'],
  ['slot-description', 'slotDescription'],
  ['slot-id', 'slotId'],
  ['object', 'object'],
  ['type', 'type'],
  ['id', 'id'],
] as const satisfies readonly (readonly [string, keyof Pkcs11Uri])[];

const QUERY_ATTRIBUTES = [
  ['module-name', 'moduleName'],
  ['module-path', 'modulePath'],
  ['pin-source', 'pinSource'],
] as const satisfies readonly (readonly [string, keyof Pkcs11Uri])[];

const OBJECT_TYPES: readonly Pkcs11ObjectType[] = ['public', 'private', 'cert', 'secret-key', 'data'];

// RFC 7512 section 2.3 character classes (RFC 3986 unreserved plus the "res-avail" sets).
const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
const RES_AVAIL = ":[]@!$'()*+,=";
const PATH_CHARS = new Set(UNRESERVED + RES_AVAIL + '&');
const QUERY_CHARS = new Set(UNRESERVED + RES_AVAIL + '/?|');
const ATTR_NAME = /^[A-Za-z0-9_-]+$/;
const HEX = /^[0-9A-Fa-f]{2}$/;

const PIN_VALUE_MESSAGE =
  'The PKCS#11 URI carries the PIN (pin-value). PINs never go in URIs, configuration files or command lines: ' +
  'remove pin-value, name where the PIN is kept with pin-source=env:NAME or pin-source=file:PATH (a 0600 file), ' +
  'and treat that PIN as exposed (change it on the token).';

function uriError(code: string, message: string): ConfigError {
  return new ConfigError(code, message);
}

/** Percent-decoding of one attribute value. `where` names the attribute for error messages. */
function percentDecode(raw: string, allowed: ReadonlySet<string>, where: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!HEX.test(hex)) throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI has a "%" not followed by two hex digits in attribute ${where}.`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (allowed.has(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      const shown = /^[\x21-\x7e]$/.test(ch) ? `"${ch}"` : `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI has the character ${shown} in attribute ${where}; it must be percent-encoded.`);
    }
  }
  return Buffer.from(bytes);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeText(bytes: Buffer, where: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI attribute ${where} is not valid UTF-8 once percent-decoded.`);
  }
}

function splitAttributes(part: string, separator: string, component: 'path' | 'query'): { name: string; raw: string }[] {
  if (part === '') return [];
  return part.split(separator).map((attr, index) => {
    const eq = attr.indexOf('=');
    if (attr === '') throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI has an empty ${component} attribute (number ${index + 1}).`);
    if (eq < 0) throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI ${component} attribute number ${index + 1} has no "=".`);
    const name = attr.slice(0, eq);
    if (!ATTR_NAME.test(name)) throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI ${component} attribute number ${index + 1} has an invalid name.`);
    return { name, raw: attr.slice(eq + 1) };
  });
}

/**
 * Parse a PKCS#11 URI. Throws ConfigError (code PKCS11_URI_PIN_VALUE when it carries a PIN,
 * PKCS11_URI_INVALID otherwise) whose message never contains attribute values.
 */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  // Checked first, on the raw text, so that the answer to a URI carrying a PIN is always this one.
  if (/(^|[?&;:])pin-value=/i.test(text)) throw uriError('PKCS11_URI_PIN_VALUE', PIN_VALUE_MESSAGE);
  if (text.slice(0, 7).toLowerCase() !== 'pkcs11:') {
    throw uriError('PKCS11_URI_INVALID', 'A PKCS#11 URI starts with "pkcs11:" (RFC 7512).');
  }
  const rest = text.slice(7);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? '' : rest.slice(q + 1);

  const uri: Pkcs11Uri = { vendorPath: [], vendorQuery: [] };
  const seen = new Set<string>();
  const record = uri as unknown as Record<string, unknown>;

  for (const { name, raw } of splitAttributes(pathPart, ';', 'path')) {
    const bytes = percentDecode(raw, PATH_CHARS, name);
    const known = PATH_ATTRIBUTES.find(([n]) => n === name);
    if (seen.has(name) || (!known && uri.vendorPath.some((a) => a.name === name))) {
      throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI has the path attribute ${name} more than once.`);
    }
    seen.add(name);
    if (!known) {
      uri.vendorPath.push({ name, value: decodeText(bytes, name) });
      continue;
    }
    const key = known[1];
    if (key === 'id') {
      uri.id = bytes;
    } else if (key === 'type') {
      const value = decodeText(bytes, name);
      if (!(OBJECT_TYPES as readonly string[]).includes(value)) {
        throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI attribute type must be one of ${OBJECT_TYPES.join(', ')}.`);
      }
      uri.type = value as Pkcs11ObjectType;
    } else if (key === 'slotId') {
      const value = decodeText(bytes, name);
      if (!/^\d{1,10}$/.test(value) || Number(value) > 0xffffffff) {
        throw uriError('PKCS11_URI_INVALID', 'The PKCS#11 URI attribute slot-id must be a decimal number.');
      }
      uri.slotId = Number(value);
    } else {
      const value = decodeText(bytes, name);
      if (key === 'libraryVersion' && !/^\d+(\.\d+)?$/.test(value)) {
        throw uriError('PKCS11_URI_INVALID', 'The PKCS#11 URI attribute library-version must be "M" or "M.N".');
      }
      record[key] = value;
    }
  }

  for (const { name, raw } of splitAttributes(queryPart, '&', 'query')) {
    const value = decodeText(percentDecode(raw, QUERY_CHARS, name), name);
    const known = QUERY_ATTRIBUTES.find(([n]) => n === name);
    if (!known) {
      uri.vendorQuery.push({ name, value });
      continue;
    }
    if (seen.has(`?${name}`)) throw uriError('PKCS11_URI_INVALID', `The PKCS#11 URI has the query attribute ${name} more than once.`);
    seen.add(`?${name}`);
    record[known[1]] = value;
  }
  return uri;
}

function percentEncode(bytes: Uint8Array, allowed: ReadonlySet<string>, encodeAll = false): string {
  let out = '';
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    out += !encodeAll && b < 0x80 && allowed.has(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Format a URI: path attributes in a fixed order, then vendor ones; `id` fully percent-encoded. */
export function formatPkcs11Uri(uri: Partial<Pkcs11Uri>): string {
  const path: string[] = [];
  const rec = uri as Record<string, unknown>;
  for (const [name, key] of PATH_ATTRIBUTES) {
    const v = rec[key];
    if (v === undefined) continue;
    if (key === 'id') path.push(`id=${percentEncode(v as Buffer, PATH_CHARS, true)}`);
    else path.push(`${name}=${percentEncode(Buffer.from(String(v), 'utf8'), PATH_CHARS)}`);
  }
  for (const a of uri.vendorPath ?? []) path.push(`${a.name}=${percentEncode(Buffer.from(a.value, 'utf8'), PATH_CHARS)}`);
  const query: string[] = [];
  for (const [name, key] of QUERY_ATTRIBUTES) {
    const v = rec[key];
    if (v !== undefined) query.push(`${name}=${percentEncode(Buffer.from(String(v), 'utf8'), QUERY_CHARS)}`);
  }
  for (const a of uri.vendorQuery ?? []) query.push(`${a.name}=${percentEncode(Buffer.from(a.value, 'utf8'), QUERY_CHARS)}`);
  return `pkcs11:${path.join(';')}${query.length ? `?${query.join('&')}` : ''}`;
}

/** Where a PIN is kept, as the station's configuration names it (core/config PinSource). */
export type UriPinSource = { env: string } | { file: string };

/**
 * The station's reading of `pin-source`: `env:NAME` (an environment variable) or `file:PATH`
 * (`file:hsm-pin` relative to the data dir, `file:/abs` or `file:///abs`). Other forms RFC 7512
 * allows (a command `|/path`, a dialog) are refused: the station never runs a program for a PIN.
 */
export function pinSourceFromUri(value: string): UriPinSource {
  const env = /^env:([A-Z_][A-Z0-9_]*)$/.exec(value);
  if (env) return { env: env[1]! };
  if (value.startsWith('file:')) {
    let path = value.slice(5);
    if (path.startsWith('//')) {
      const slash = path.indexOf('/', 2);
      const host = slash < 0 ? path.slice(2) : path.slice(2, slash);
      if (host !== '' && host !== 'localhost') throw uriError('PKCS11_URI_PIN_SOURCE', 'pin-source=file://HOST/... names another host; the PIN file must be local.');
      path = slash < 0 ? '' : path.slice(slash);
    }
    if (path === '') throw uriError('PKCS11_URI_PIN_SOURCE', 'pin-source=file: needs a path.');
    return { file: path };
  }
  throw uriError(
    'PKCS11_URI_PIN_SOURCE',
    'The station reads pin-source as env:NAME (an upper-case environment variable name) or file:PATH (a 0600 file); it does not run programs or dialogs for a PIN.',
  );
}

/**
 * Parse a URI that names a station key (the IDevID CA or root key): a private key
 * (`type=private` or no type), optionally with module-path and pin-source. Attributes the station
 * cannot honour (module-name, slot-*, library-*) are refused rather than silently ignored.
 */
export function parseKeyUri(text: string): Pkcs11Uri {
  const uri = parsePkcs11Uri(text);
  if (uri.type !== undefined && uri.type !== 'private') {
    throw uriError('PKCS11_URI_UNSUPPORTED', `A key URI names a private key: type=private or no type, not type=${uri.type}.`);
  }
  const unsupported = [
    ['module-name', uri.moduleName],
    ['slot-manufacturer', uri.slotManufacturer],
    ['slot-description', uri.slotDescription],
    ['slot-id', uri.slotId],
    ['library-manufacturer', uri.libraryManufacturer],
    ['library-description', uri.libraryDescription],
    ['library-version', uri.libraryVersion],
  ]
    .filter(([, v]) => v !== undefined)
    .map(([n]) => n as string);
  if (unsupported.length > 0) {
    throw uriError(
      'PKCS11_URI_UNSUPPORTED',
      `The station does not select keys by ${unsupported.join(', ')}; name the module with module-path and the token with token (and serial, manufacturer, model).`,
    );
  }
  if (uri.object === '' || uri.token === '') throw uriError('PKCS11_URI_UNSUPPORTED', 'A key URI must not name an empty token or object label.');
  if (uri.token !== undefined && Buffer.byteLength(uri.token, 'utf8') > 32) {
    throw uriError('PKCS11_URI_UNSUPPORTED', 'A PKCS#11 token label is at most 32 bytes.');
  }
  if (uri.modulePath !== undefined && !uri.modulePath.startsWith('/')) {
    throw uriError('PKCS11_URI_UNSUPPORTED', 'module-path must be an absolute path to the PKCS#11 module.');
  }
  if (uri.pinSource !== undefined) pinSourceFromUri(uri.pinSource);
  return uri;
}
