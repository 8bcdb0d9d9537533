/**
 * Faults the simulator can play, per port: `--faults "0=silent,2=csr-wrong-serial"`.
 * A fault applies to every device on that port.
 */
export const FAULTS = [
  'silent', // never answers anything
  'csr-bad-signature', // CSR signature does not verify
  'csr-wrong-serial', // CSR subject serialNumber differs from the one asked for
  'challenge-wrong-key', // signs the challenge with a key other than its birth key
  'readback-corrupt', // returns a different DPP URI on read back
  'lock-refused', // LOCK fails (a flash write error)
] as const;

export type Fault = (typeof FAULTS)[number];

export function parseFaultSpec(spec: string | undefined): Map<number, Set<Fault>> {
  const out = new Map<number, Set<Fault>>();
  if (!spec) return out;
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)=([a-z\-+]+)$/.exec(part);
    if (!m) throw new Error(`bad fault "${part}": expected PORT_INDEX=FAULT[+FAULT]`);
    const set = out.get(Number(m[1])) ?? new Set<Fault>();
    for (const f of m[2]!.split('+')) {
      if (!(FAULTS as readonly string[]).includes(f)) throw new Error(`unknown fault "${f}"; known: ${FAULTS.join(', ')}`);
      set.add(f as Fault);
    }
    out.set(Number(m[1]), set);
  }
  return out;
}
