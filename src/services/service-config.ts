/**
 * A reference service's configuration file (docs/services.md), validated at start. Paths are
 * absolute or relative to the file's folder. No secrets inline: keys are 0600 files, a
 * PostgreSQL password comes from PGPASSWORD / PGPASSFILE.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parseServiceFault } from './http/service-faults';

const Path = z.string().min(1);

export const ServiceConfigSchema = z
  .object({
    service: z.enum(['masa', 'supply-chain']),
    tls: z.object({ certificate: Path, key: Path }).strict(),
    /** PEM bundle of the CA(s) that issue station certificates (mTLS and record signatures). */
    stationCa: Path,
    /** When given, only these station ids may deliver records. */
    allowedStations: z.array(z.string().min(1)).optional(),
    storage: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('sqlite'), path: Path }).strict(),
      z
        .object({ kind: z.literal('postgres'), connectionString: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL') })
        .strict()
        .refine((s) => !/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(s.connectionString), 'no password in the connection string: use PGPASSWORD or PGPASSFILE'),
    ]),
    masa: z
      .object({
        signingCertificate: Path,
        signingKey: Path,
        ownership: z.discriminatedUnion('mode', [
          z.object({ mode: z.literal('trust-on-first-use') }).strict(),
          /** owner name (the record's `owner`) -> PEM files of that owner's domain CA certificates */
          z.object({ mode: z.literal('sales-integration'), owners: z.record(z.string().min(1), z.array(Path).min(1)) }).strict(),
        ]),
        noncelessVoucherLifetimeSeconds: z.number().int().positive().max(86_400 * 365).default(1200),
      })
      .strict()
      .optional(),
    supplyChain: z.object({ ownerCa: Path }).strict().optional(),
    faults: z
      .array(z.string())
      .default([])
      .superRefine((list, ctx) => {
        for (const f of list) {
          try {
            parseServiceFault(f);
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
          }
        }
      }),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.service === 'masa' && !c.masa) ctx.addIssue({ code: 'custom', message: 'a MASA needs the "masa" section', path: ['masa'] });
    if (c.service === 'supply-chain' && !c.supplyChain) ctx.addIssue({ code: 'custom', message: 'a supply-chain service needs the "supplyChain" section', path: ['supplyChain'] });
  });

export type ServiceConfig = z.infer<typeof ServiceConfigSchema>;
export type ServiceConfigInput = z.input<typeof ServiceConfigSchema>;

/** Reads and validates a service configuration; relative paths become absolute. */
export function loadServiceConfig(file: string): { config: ServiceConfig; resolvePath: (p: string) => string } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read the service configuration ${file}: ${(err as Error).message}`);
  }
  const parsed = ServiceConfigSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid service configuration ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const base = dirname(resolve(file));
  return { config: parsed.data, resolvePath: (p) => (isAbsolute(p) ? p : resolve(base, p)) };
}
