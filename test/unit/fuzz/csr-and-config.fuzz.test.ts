/**
 * Fuzzing the inputs the station takes from outside (issue 9): certificate requests from
 * devices (random DER mutations of a valid request) and configuration files (random mutations
 * of the embedded defaults and random JSON). No input crashes the station: each is accepted or
 * rejected with a typed StationError whose code is one of the documented ones.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig, parseStationConfig } from '../../../src/core/config';
import { StationError } from '../../../src/core/errors';
import { checkCsr } from '../../../src/hsm/ca/csr-check';
import { buildCsr } from '../../../src/simulator/csr-builder';

/** One DER-aware mutation: flip, set, insert, delete, truncate, or grow/shrink a length octet. */
type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'truncate'; at: number }
  | { op: 'length'; at: number; delta: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x30, 0x31, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xa0, 0xff) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('length' as const), at: fc.nat(), delta: fc.integer({ min: -3, max: 3 }) }),
);

function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.op) {
      case 'flip':
        b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'length':
        // a length octet follows a tag: nudge the byte after a SEQUENCE/SET/INTEGER/BIT STRING tag
        b[at] = (b[at]! + m.delta + 256) % 256;
        break;
    }
  }
  return b;
}

const CSR_CODES = new Set([
  'CSR_MALFORMED',
  'CSR_SIGNATURE_INVALID',
  'CSR_SERIAL_MISMATCH',
  'CSR_KEY_UNSUPPORTED',
  'CSR_ALGORITHM_UNSUPPORTED',
  'CSR_EXTENSION_NOT_ALLOWED',
  'CSR_KEY_ALREADY_CERTIFIED',
  'CSR_SERIAL_MISSING',
]);

describe('fuzz: device certificate requests', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const valid = buildCsr({ serial: 'FUZZ-000001', model: 'DemoSensor-1', spki, sign: (d) => sign('sha256', d, { key: privateKey, dsaEncoding: 'der' }) });

  it('accepts the unmutated request (the fuzz starts from a good one)', () => {
    expect(checkCsr(valid, { serial: 'FUZZ-000001' }).spki.equals(spki)).toBe(true);
  });

  it('answers every mutated request with acceptance or a typed CSR_* rejection, never a crash', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (mutations) => {
        const input = mutate(valid, mutations);
        try {
          checkCsr(input, { serial: 'FUZZ-000001' });
          seen.add('accepted');
        } catch (err) {
          if (!(err instanceof StationError)) throw new Error(`untyped failure ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
          if (!CSR_CODES.has(err.code)) throw new Error(`unexpected code ${err.code}: ${err.message}`);
          expect(err.stage).toBe('obtain-key');
          seen.add(err.code);
        }
      }),
      { numRuns: 3000 },
    );
    // the fuzz reached more than one kind of rejection (it is not stuck on "malformed")
    expect(seen.has('CSR_MALFORMED')).toBe(true);
    expect(seen.size).toBeGreaterThanOrEqual(2);
  });
});

describe('fuzz: configuration files', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double(),
      fc.string({ maxLength: 12 }),
      fc.array(tie('value'), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
    ),
  })).value;

  /** Replace the value at a random path of the defaults with a random JSON value. */
  function replaceAt(root: unknown, path: readonly number[], replacement: unknown): unknown {
    if (path.length === 0 || root === null || typeof root !== 'object') return replacement;
    const entries = Array.isArray(root) ? root.map((v, i) => [i, v] as const) : Object.entries(root as Record<string, unknown>);
    if (entries.length === 0) return replacement;
    const [key, child] = entries[path[0]! % entries.length]!;
    if (Array.isArray(root)) {
      const copy: unknown[] = [...root];
      copy[key as number] = replaceAt(child, path.slice(1), replacement);
      return copy;
    }
    return { ...(root as Record<string, unknown>), [key]: replaceAt(child, path.slice(1), replacement) };
  }

  it('answers random JSON and mutated defaults with a config or CONFIG_INVALID, never a crash', () => {
    const defaults = JSON.parse(JSON.stringify(defaultStationConfig())) as unknown;
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), json, fc.boolean(), (path, replacement, whole) => {
        const input = whole ? replacement : replaceAt(defaults, path, replacement);
        try {
          parseStationConfig(input, 'fuzzed config');
        } catch (err) {
          if (!(err instanceof StationError)) throw new Error(`untyped failure: ${(err as Error)?.message}`);
          expect(err.code).toBe('CONFIG_INVALID');
          expect(err.message).toContain('fuzzed config');
          rejected++;
        }
      }),
      { numRuns: 1500 },
    );
    expect(rejected).toBeGreaterThan(100);
  });
});
