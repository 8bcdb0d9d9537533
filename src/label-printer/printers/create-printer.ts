/**
 * The printer for a configuration, and the printer URIs an operator may give on the command line
 * instead of the configured printer:
 *
 *   file:DIR[?format=png|zpl|svg]                     (also file:///abs/dir)
 *   tcp://HOST[:PORT][?timeoutMs=N&status=0|1]        (port 9100, status query on by default)
 *   serial:/dev/ttyX[?baud=N&timeoutMs=N]             (9600 baud by default)
 *   cups:QUEUE[?format=png|zpl&timeoutMs=N]
 *
 * Timeouts default to 5000 ms and formats to zpl.
 */
import { isAbsolute, join, resolve } from 'node:path';
import type { Clock } from '../../core/clock';
import { PrinterConfigSchema, type PrinterConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';
import type { Printer } from '../../core/ports/printer';
import { CupsPrinter } from './cups-printer';
import { FilePrinter } from './file-printer';
import { SerialPrinter } from './serial-printer';
import { Tcp9100Printer } from './tcp9100-printer';

export const DEFAULT_PRINTER_TIMEOUT_MS = 5000;
export const DEFAULT_TCP9100_PORT = 9100;
/** Zebra's factory serial setting. */
export const DEFAULT_SERIAL_BAUD = 9600;
/** Where a file printer writes when its config names no folder, relative to the base dir. */
export const DEFAULT_FILE_PRINTER_DIR = join('labels', 'printed');

export interface CreatePrinterOptions {
  /** A relative file printer folder is resolved against this (the run's output folder). */
  baseDir: string;
  clock?: Clock;
  /** For tests and unusual installs: the CUPS client commands. */
  lpCommand?: string;
  lpstatCommand?: string;
}

export function createPrinter(config: PrinterConfig, opts: CreatePrinterOptions): Printer {
  switch (config.kind) {
    case 'file':
      return new FilePrinter({ dir: resolve(opts.baseDir, config.dir ?? DEFAULT_FILE_PRINTER_DIR), format: config.format, clock: opts.clock });
    case 'tcp9100':
      return new Tcp9100Printer({ host: config.host, port: config.port, timeoutMs: config.timeoutMs, statusQuery: config.statusQuery });
    case 'serial':
      return new SerialPrinter({ path: config.path, baudRate: config.baudRate, timeoutMs: config.timeoutMs });
    case 'cups':
      return new CupsPrinter({ queue: config.queue, format: config.format, timeoutMs: config.timeoutMs, lpCommand: opts.lpCommand, lpstatCommand: opts.lpstatCommand });
  }
}

const USAGE =
  'Use file:DIR[?format=png|zpl|svg], tcp://HOST[:PORT][?timeoutMs=N&status=0|1], serial:/dev/ttyX[?baud=N&timeoutMs=N] or cups:QUEUE[?format=png|zpl&timeoutMs=N].';

/** A printer URI (for `--printer`) as a PrinterConfig; ConfigError PRINTER_URI_INVALID otherwise. */
export function parsePrinterUri(uri: string): PrinterConfig {
  const fail = (why: string): never => {
    throw new ConfigError('PRINTER_URI_INVALID', `Printer URI "${uri}" is not valid: ${why}. ${USAGE}`, { details: { uri } });
  };
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(uri.trim());
  if (!m) return fail('it has no scheme');
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  let config: unknown;
  switch (scheme) {
    case 'file': {
      const [target, query] = splitQuery(rest);
      const params = readParams(query, ['format'], fail);
      let dir = target;
      if (dir.startsWith('//')) {
        const withoutAuthority = dir.slice(2);
        const slash = withoutAuthority.indexOf('/');
        const host = slash < 0 ? withoutAuthority : withoutAuthority.slice(0, slash);
        if (host !== '' && host !== 'localhost') fail(`a file URI names no other host than localhost (got "${host}")`);
        dir = slash < 0 ? '' : decode(withoutAuthority.slice(slash), fail);
        if (dir && !isAbsolute(dir)) fail('file:// takes an absolute path');
      }
      config = { kind: 'file', ...(dir ? { dir } : {}), format: params.format ?? 'zpl' };
      break;
    }
    case 'tcp': {
      if (!rest.startsWith('//')) fail('write tcp://HOST:PORT');
      let url: URL;
      try {
        url = new URL(uri.trim());
      } catch {
        return fail('it is not a URL');
      }
      if (url.username || url.password) fail('a printer URI carries no user name or password');
      if (url.pathname !== '' && url.pathname !== '/') fail(`unexpected path "${url.pathname}"`);
      if (url.hash) fail('unexpected "#" fragment');
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (!host) fail('no host');
      const params = readParams(url.search.replace(/^\?/, ''), ['timeoutMs', 'status'], fail);
      config = {
        kind: 'tcp9100',
        host,
        port: url.port ? Number(url.port) : DEFAULT_TCP9100_PORT,
        timeoutMs: params.timeoutMs !== undefined ? int(params.timeoutMs, 'timeoutMs', fail) : DEFAULT_PRINTER_TIMEOUT_MS,
        statusQuery: params.status !== undefined ? bool(params.status, 'status', fail) : true,
      };
      break;
    }
    case 'serial': {
      const [path, query] = splitQuery(rest);
      if (!path.startsWith('/')) fail('serial: takes an absolute device path, e.g. serial:/dev/ttyUSB0');
      const params = readParams(query, ['baud', 'timeoutMs'], fail);
      config = {
        kind: 'serial',
        path,
        baudRate: params.baud !== undefined ? int(params.baud, 'baud', fail) : DEFAULT_SERIAL_BAUD,
        timeoutMs: params.timeoutMs !== undefined ? int(params.timeoutMs, 'timeoutMs', fail) : DEFAULT_PRINTER_TIMEOUT_MS,
      };
      break;
    }
    case 'cups': {
      const [queue, query] = splitQuery(rest);
      if (!queue) fail('no queue name');
      const params = readParams(query, ['format', 'timeoutMs'], fail);
      config = {
        kind: 'cups',
        queue,
        format: params.format ?? 'zpl',
        timeoutMs: params.timeoutMs !== undefined ? int(params.timeoutMs, 'timeoutMs', fail) : DEFAULT_PRINTER_TIMEOUT_MS,
      };
      break;
    }
    default:
      return fail(`unknown scheme "${scheme}:"`);
  }
  const parsed = PrinterConfigSchema.safeParse(config);
  if (!parsed.success) {
    return fail(parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

function splitQuery(s: string): [string, string] {
  const q = s.indexOf('?');
  return q < 0 ? [s, ''] : [s.slice(0, q), s.slice(q + 1)];
}

function readParams(query: string, allowed: string[], fail: (why: string) => never): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (!query) return out;
  for (const [key, value] of new URLSearchParams(query)) {
    if (!allowed.includes(key)) fail(`unknown parameter "${key}" (allowed here: ${allowed.join(', ')})`);
    if (key in out) fail(`parameter "${key}" given twice`);
    out[key] = value;
  }
  return out;
}

function int(v: string, name: string, fail: (why: string) => never): number {
  if (!/^\d{1,9}$/.test(v)) fail(`${name} must be a whole number, got "${v}"`);
  return Number.parseInt(v, 10);
}

function bool(v: string, name: string, fail: (why: string) => never): boolean {
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return fail(`${name} must be 0 or 1, got "${v}"`);
}

function decode(s: string, fail: (why: string) => never): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return fail('bad percent-encoding');
  }
}
