/**
 * Canonical JSON for signed records (docs/sync-api.md): the bytes a station signs and a service
 * verifies. Objects with their keys sorted by UTF-16 code units (as RFC 8785 JCS sorts them),
 * no whitespace, strings and numbers as JSON.stringify writes them. Only the value kinds a
 * record holds are accepted: strings, finite numbers, booleans, null, arrays and plain objects;
 * `undefined` members are left out (as JSON.stringify does), anything else is refused.
 *
 * Written by hand: the record payloads hold no floats, so JCS's number formatting reduces to
 * JSON.stringify's, and a dependency for a 30-line function is not worth its review.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue | undefined };

export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonicalJson: numbers must be finite');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as JsonValue)}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: unsupported value of type ${typeof value}`);
}

export function canonicalJsonBytes(value: JsonValue): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}
