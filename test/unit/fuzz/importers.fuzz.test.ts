/**
 * Fuzzing the vendor files the station imports (issue 9): SE manifests (Trust&GO structure) and
 * encrypted seed files. Random byte mutations of a valid file, and random replacements of one
 * JSON member with random JSON: every input is accepted or refused with a typed StationError
 * (SeManifestError MANIFEST_*, ConfigError SEED_FILE_*), never a crash or an untyped error.
 *
 * The seed file is opened with the same core functions the PKCS#11 worker uses
 * (seed-file-envelope.ts), with a software recipient key standing in for the HSM's ECDH.
 */
import { createECDH } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StationError } from '../../../src/core/errors';
import { verifySeManifest } from '../../../src/core/se-manifest';
import { openSeedFileEnvelope, parseSeedFileEnvelope, parseSeedFilePayload, seedFileCek } from '../../../src/core/seed-file-envelope';
import { writeSeedFile } from '../../../src/simulator/vendor/seed-file-writer';
import { makeSe, makeVendorPki, signedEntry, trustOf } from '../../helpers/trust-and-go';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const json: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.string({ maxLength: 16 }),
    fc.base64String({ maxLength: 24 }),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 3 }),
  ),
})).value;

/** Replace the member at a random path with `replacement`. */
function replaceAt(root: Json, path: readonly number[], replacement: Json): Json {
  if (path.length === 0 || root === null || typeof root !== 'object') return replacement;
  if (Array.isArray(root)) {
    if (root.length === 0) return replacement;
    const i = path[0]! % root.length;
    const copy = [...root];
    copy[i] = replaceAt(root[i]!, path.slice(1), replacement);
    return copy;
  }
  const keys = Object.keys(root);
  if (keys.length === 0) return replacement;
  const k = keys[path[0]! % keys.length]!;
  return { ...root, [k]: replaceAt(root[k]!, path.slice(1), replacement) };
}

const byteEdit = fc.record({ at: fc.nat(), op: fc.constantFrom('flip', 'delete', 'insert', 'truncate'), value: fc.integer({ min: 0, max: 255 }) });

function editBytes(input: Buffer, edits: readonly { at: number; op: string; value: number }[]): Buffer {
  let b = Buffer.from(input);
  for (const e of edits) {
    if (b.length === 0) break;
    const at = e.at % b.length;
    if (e.op === 'flip') b[at] = b[at]! ^ (1 << e.value % 8);
    else if (e.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else if (e.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([e.value]), b.subarray(at)]);
    else b = b.subarray(0, at);
  }
  return b;
}

function typed(err: unknown, prefix: RegExp): string {
  if (!(err instanceof StationError)) throw new Error(`untyped failure ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  if (!prefix.test(err.code)) throw new Error(`unexpected code ${err.code}: ${err.message}`);
  return err.code;
}

describe('fuzz: SE manifests', () => {
  const pki = makeVendorPki();
  const trust = trustOf(pki);
  const valid = JSON.stringify([signedEntry(pki, makeSe(pki)), signedEntry(pki, makeSe(pki))]);

  it('starts from a manifest that verifies', () => {
    expect(verifySeManifest(valid, trust).entries).toHaveLength(2);
  });

  it('answers byte mutations and member replacements with a result or a typed MANIFEST_* refusal', () => {
    const codes = new Set<string>();
    const check = (input: string | Buffer) => {
      try {
        verifySeManifest(input, trust);
        codes.add('accepted');
      } catch (err) {
        codes.add(typed(err, /^MANIFEST_/));
      }
    };
    fc.assert(fc.property(fc.array(byteEdit, { minLength: 1, maxLength: 3 }), (edits) => check(editBytes(Buffer.from(valid), edits))), { numRuns: 600 });
    const parsed = JSON.parse(valid) as Json;
    fc.assert(fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), json, (path, value) => check(JSON.stringify(replaceAt(parsed, path, value)))), { numRuns: 600 });
    expect(codes.size).toBeGreaterThanOrEqual(3);
  });
});

describe('fuzz: encrypted seed files', () => {
  const recipient = createECDH('prime256v1');
  recipient.generateKeys();
  const recipientSpki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), recipient.getPublicKey()]);
  const file = writeSeedFile(recipientSpki, {
    vendor: 'Fuzz Chips',
    lot: 'L1',
    chips: [
      { chipId: Buffer.from('0102030405060708', 'hex'), seed: Buffer.alloc(32, 7) },
      { chipId: Buffer.from('1112131415161718', 'hex'), seed: Buffer.alloc(32, 9) },
    ],
  });

  /** What the worker does after the ECDH: parse, derive the CEK, decrypt, parse the payload. */
  const open = (bytes: Buffer) => {
    const envelope = parseSeedFileEnvelope(bytes);
    let z: Buffer;
    try {
      z = recipient.computeSecret(envelope.epkPoint);
    } catch {
      // the HSM refuses a point off the curve in C_DeriveKey; the worker types it (seed-vault tests)
      return 'epk-refused';
    }
    return parseSeedFilePayload(openSeedFileEnvelope(seedFileCek(z, envelope), envelope)).chips.length;
  };

  it('starts from a file that opens', () => {
    expect(open(file)).toBe(2);
  });

  it('answers byte mutations and member replacements with a result or a typed SEED_FILE_* refusal', () => {
    const codes = new Set<string>();
    const check = (bytes: Buffer) => {
      try {
        codes.add(String(open(bytes)));
      } catch (err) {
        codes.add(typed(err, /^SEED_FILE_/));
      }
    };
    fc.assert(fc.property(fc.array(byteEdit, { minLength: 1, maxLength: 3 }), (edits) => check(editBytes(file, edits))), { numRuns: 800 });
    const parsed = JSON.parse(file.toString('utf8')) as Json;
    fc.assert(fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), json, (path, value) => check(Buffer.from(JSON.stringify(replaceAt(parsed, path, value))))), { numRuns: 600 });
    expect(codes.has('SEED_FILE_MALFORMED')).toBe(true);
    expect([...codes].some((c) => c !== 'SEED_FILE_MALFORMED' && c !== '2')).toBe(true);
  });
});
