/**
 * The simulated chip vendor's fab records for method 5: the vendor kit burns a seed into each
 * chip it makes and leaves the chips in a folder; the simulator takes the next unused chip from
 * there when it presents a seed-derived device. Layout under the simulator's vendor folder:
 *
 *   chips/available/<chipId hex>.json   {"chipId": hex, "seed": base64, "lot": ...}   (0600)
 *   chips/taken/<chipId hex>.json       moved here (rename: atomic) when a device takes it
 *
 * The seeds here are the chips' own secrets (what is burned into the silicon), never the
 * station's: the station learns them only from the encrypted seed file.
 *
 * Faults (docs/simulator.md): `chip-unknown` presents a chip that is in no seed file,
 * `chip-clone` presents again the chip of the previous device on the port (a cloned chip id),
 * `seed-mismatch` presents a chip burned with another seed than the vendor's file lists. With no
 * chip left in the folder, a device gets an unknown chip too.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceState } from '../firmware/device-state';
import type { VendorChip } from './seed-file-writer';

export const SEED_CHIP_ID_BYTES = 8;
export const SEED_BYTES = 32;

export type SeedChipFault = 'chip-unknown' | 'chip-clone' | 'seed-mismatch';

function chipsDir(vendorDir: string, which: 'available' | 'taken'): string {
  return join(vendorDir, 'chips', which);
}

/** Make `count` chips (random chip id, random 32-byte seed) in the vendor folder; returns them. */
export function makeVendorChips(vendorDir: string, count: number, lot: string): VendorChip[] {
  const dir = chipsDir(vendorDir, 'available');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const chips: VendorChip[] = [];
  while (chips.length < count) {
    const chipId = randomBytes(SEED_CHIP_ID_BYTES);
    const path = join(dir, `${chipId.toString('hex')}.json`);
    if (existsSync(path) || existsSync(join(chipsDir(vendorDir, 'taken'), `${chipId.toString('hex')}.json`))) continue;
    const seed = randomBytes(SEED_BYTES);
    writeFileSync(path, JSON.stringify({ chipId: chipId.toString('hex'), seed: seed.toString('base64'), lot }) + '\n', { mode: 0o600 });
    chips.push({ chipId, seed });
  }
  return chips;
}

/** Chips still in the folder (not taken by a device). */
export function availableChipCount(vendorDir: string): number {
  const dir = chipsDir(vendorDir, 'available');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).length : 0;
}

/** Take the next unused chip (oldest name first), or undefined when none is left. */
export function takeVendorChip(vendorDir: string): VendorChip | undefined {
  const available = chipsDir(vendorDir, 'available');
  if (!existsSync(available)) return undefined;
  const taken = chipsDir(vendorDir, 'taken');
  mkdirSync(taken, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(available).filter((f) => f.endsWith('.json')).sort()) {
    const to = join(taken, name);
    try {
      renameSync(join(available, name), to);
    } catch {
      continue; // another device (port) took it first
    }
    const doc = JSON.parse(readFileSync(to, 'utf8')) as { chipId: string; seed: string };
    return { chipId: Buffer.from(doc.chipId, 'hex'), seed: Buffer.from(doc.seed, 'base64') };
  }
  return undefined;
}

/** One port's supply: burns each newly presented seed-derived device with a chip, playing the port's faults. */
export class SeedChipSupply {
  private previous: VendorChip | undefined;

  constructor(
    private readonly vendorDir: string | undefined,
    private readonly faults: ReadonlySet<string>,
  ) {}

  /** A VirtualDevice `onNewDevice` hook that burns each presented device with this port's next chip. */
  static presenter(vendorDir: string | undefined, faults: ReadonlySet<string>): (state: DeviceState) => void {
    const supply = new SeedChipSupply(vendorDir, faults);
    return (state) => supply.present(state);
  }

  present(state: DeviceState): void {
    let chip: VendorChip | undefined;
    if (this.faults.has('chip-clone') && this.previous) {
      chip = { chipId: Buffer.from(this.previous.chipId), seed: Buffer.from(this.previous.seed) };
    } else if (!this.faults.has('chip-unknown') && this.vendorDir) {
      chip = takeVendorChip(this.vendorDir);
    }
    chip ??= { chipId: randomBytes(SEED_CHIP_ID_BYTES), seed: randomBytes(SEED_BYTES) };
    this.previous = { chipId: Buffer.from(chip.chipId), seed: Buffer.from(chip.seed) };
    if (this.faults.has('seed-mismatch')) {
      chip.seed[0] = chip.seed[0]! ^ 0x01; // burned with a seed other than the one the vendor's file lists
    }
    state.chipId = chip.chipId;
    state.seed = chip.seed;
  }
}
