import { readFileSync } from 'node:fs';
import { defaultStationConfig, parseStationConfig, type StationConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars replace. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/** The embedded defaults, overlaid with a JSON config file when one is given. */
export function loadConfig(path: string | undefined): StationConfig {
  if (!path) return parseStationConfig(defaultStationConfig(), 'embedded default configuration');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('CONFIG_UNREADABLE', `Cannot read the configuration ${path}: ${(err as Error).message}`);
  }
  return parseStationConfig(deepMerge(defaultStationConfig(), raw), `configuration ${path}`);
}
