/** The five birth-credential methods of NIST SP 1800-36B H.1.1, as one closed union. */
export const METHOD_IDS = [
  'on-device-keygen',
  'secure-element-keygen',
  'factory-injected-key',
  'se-preprovisioned',
  'seed-derived',
] as const;

export type MethodId = (typeof METHOD_IDS)[number];

export type KeyOrigin = 'device-rng' | 'secure-element' | 'hsm' | 'se-vendor' | 'seed-derived';

export function isMethodId(value: string): value is MethodId {
  return (METHOD_IDS as readonly string[]).includes(value);
}
