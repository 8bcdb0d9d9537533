/**
 * Searches bytes for secrets in every form a careless program would write them: raw, hex
 * (both cases), standard base64 and base64url — the base64 forms at all three byte alignments,
 * so a secret inside a longer base64 text is found too.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Secret {
  /** What it is, for the failure message (never the value itself). */
  label: string;
  value: Buffer;
}

export interface Finding {
  secret: string;
  form: string;
  where: string;
}

/** The encodings of one secret worth searching for, each with its name. */
export function secretForms(value: Buffer): { form: string; needle: Buffer }[] {
  const forms: { form: string; needle: Buffer }[] = [
    { form: 'raw', needle: value },
    { form: 'hex', needle: Buffer.from(value.toString('hex')) },
    { form: 'HEX', needle: Buffer.from(value.toString('hex').toUpperCase()) },
  ];
  for (let k = 0; k < 3; k++) {
    const shifted = Buffer.concat([Buffer.alloc(k), value]);
    for (const [form, enc] of [
      ['base64', shifted.toString('base64').replace(/=+$/, '')],
      ['base64url', shifted.toString('base64url')],
    ] as const) {
      // the characters that depend only on the secret's bytes: skip the first group, drop the tail group
      const middle = enc.slice(4, Math.floor((enc.length - 1) / 4) * 4);
      if (middle.length >= 8) forms.push({ form: `${form}@${k}`, needle: Buffer.from(middle) });
    }
  }
  return forms;
}

export function scanBytes(bytes: Buffer, where: string, secrets: readonly Secret[]): Finding[] {
  const found: Finding[] = [];
  for (const s of secrets) {
    for (const { form, needle } of secretForms(s.value)) {
      if (needle.length > 0 && bytes.includes(needle)) found.push({ secret: s.label, form, where });
    }
  }
  return found;
}

/** Every regular file under `dir`, except paths for which `skip` says true. */
export function filesUnder(dir: string, skip: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (skip(path)) continue;
    const st = statSync(path);
    if (st.isDirectory()) out.push(...filesUnder(path, skip));
    else if (st.isFile()) out.push(path);
  }
  return out;
}

export function scanFiles(paths: readonly string[], secrets: readonly Secret[]): Finding[] {
  return paths.flatMap((p) => scanBytes(readFileSync(p), p, secrets));
}
