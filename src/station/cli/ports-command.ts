/**
 * `station ports [--watch] [--probe] [--json] [--link-dir DIR]` (contracts.md §2): the serial
 * and HID ports discovery sees (docs/discovery.md). A table by default, JSON lines with --json;
 * --watch keeps running and prints added/removed ports until SIGINT or SIGTERM.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { DiscoveryConfig, StationConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';
import { createPortDiscovery, type CreatePortDiscoveryOptions } from '../../device/discovery/create-port-discovery';
import type { PortCandidate } from '../../device/discovery/port-candidate';
import { candidateKey } from '../../device/discovery/port-candidate';
import type { PortDiscovery, PortEvent } from '../../device/discovery/port-discovery';
import { HidTransport } from '../../device/transport/hid-transport';
import { probePort, type ProbeOptions, type ProbeResult } from '../../device/discovery/probe';
import { ExitCode, exitCodeFor } from './exit-codes';
import { cliErrorLine, positiveInt, cliIo, type CliIoDeps } from './cli-support';

export interface PortsCommandDeps extends CliIoDeps {
  loadConfig(path: string | undefined): StationConfig;
  createDiscovery?: (config: DiscoveryConfig, options: CreatePortDiscoveryOptions) => PortDiscovery;
  probe?: (candidate: PortCandidate, options: ProbeOptions) => Promise<ProbeResult>;
}

interface PortsOptions {
  watch?: boolean;
  probe?: boolean;
  json?: boolean;
  linkDir?: string[];
  probeTimeout: number;
  pollMs: number;
}


const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The JSON shape of a probe result. */
export function probeJson(p: ProbeResult): Record<string, unknown> {
  switch (p.status) {
    case 'identified':
      return { status: p.status, identity: p.identity, durationMs: p.durationMs };
    case 'not-probed':
      return { status: p.status, reason: p.reason };
    case 'failed':
      return { status: p.status, error: { code: p.error.code, message: p.error.message }, durationMs: p.durationMs };
  }
}

export function portJson(event: string, c: PortCandidate, probe?: ProbeResult, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ event, ...extra, ...c, ...(probe ? { probe: probeJson(probe) } : {}) });
}

function usbIds(c: PortCandidate): string {
  return c.vendorId ? `${c.vendorId}:${c.productId ?? '????'}` : '-';
}

function deviceCell(p: ProbeResult | undefined): string {
  if (!p) return '';
  switch (p.status) {
    case 'identified': {
      const id = p.identity;
      return `${id.model} hw=${id.hardwareId} fw=${id.firmwareVersion} mac=${id.macs.join(',') || '-'}${id.locked ? ' LOCKED' : ''}`;
    }
    case 'not-probed':
      return 'not probed';
    case 'failed':
      return `error ${p.error.code}`;
  }
}

function row(c: PortCandidate, probe: ProbeResult | undefined, withProbe: boolean): string[] {
  const cells = [c.kind, c.path, c.realPath && c.realPath !== c.path ? c.realPath : '-', usbIds(c), c.serialNumber ?? '-', c.source];
  if (withProbe) cells.push(deviceCell(probe));
  return cells;
}

export function formatPortsTable(ports: readonly PortCandidate[], probes?: readonly (ProbeResult | undefined)[]): string {
  const withProbe = probes !== undefined;
  const header = ['KIND', 'PATH', 'REAL PATH', 'VID:PID', 'SERIAL NUMBER', 'SOURCE', ...(withProbe ? ['DEVICE'] : [])];
  const rows = [header, ...ports.map((c, i) => row(c, probes?.[i], withProbe))];
  const widths = header.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  const lines = rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ').trimEnd());
  const failures = (probes ?? [])
    .map((p, i) => (p?.status === 'failed' ? `  ${ports[i]!.path}: ${p.error.code}: ${p.error.message}` : undefined))
    .filter((l): l is string => l !== undefined);
  return lines.join('\n') + '\n' + (failures.length ? `\nprobe errors:\n${failures.join('\n')}\n` : '');
}

function checkLinkDir(dir: string): string {
  if (dir.includes('*')) throw new ConfigError('LINK_DIR_INVALID', `--link-dir takes a folder, not a pattern: ${dir}`);
  return resolve(dir);
}

export function registerPortsCommand(program: Command, deps: PortsCommandDeps): Command {
  const { out, err, exit } = cliIo(deps);
  const create = deps.createDiscovery ?? createPortDiscovery;
  const probe = deps.probe ?? probePort;

  const fail = (e: unknown): void => {
    err.write(cliErrorLine(e));
    exit(exitCodeFor(e));
  };

  return program
    .command('ports')
    .description('list the serial and HID ports discovery sees (udev, watched folders such as /dev/serial/by-id, node-hid)')
    .option('--watch', 'keep running and print ports as they are added and removed, until Ctrl-C')
    .option('--probe', 'open each port and ask the device who it is (HELLO + IDENTIFY)')
    .option('--json', 'print JSON lines instead of a table')
    .option('--link-dir <DIR>', 'also watch the links in this folder (the simulator\'s DIR/links); repeatable', collect)
    .option('--probe-timeout <MS>', 'timeout of each probe command', positiveInt, 1000)
    .option('--poll-ms <MS>', 'with --watch: list again this often (folders are also watched with fs.watch)', positiveInt, 500)
    .action(async (opts: PortsOptions) => {
      const g = program.opts<{ config?: string }>();
      try {
        const config = deps.loadConfig(g.config);
        const linkDirs = (opts.linkDir ?? []).map(checkLinkDir);
        for (const dir of linkDirs) {
          let isDir = false;
          try {
            isDir = statSync(dir).isDirectory();
          } catch {
            isDir = false;
          }
          if (!isDir) err.write(`station: warning: --link-dir ${dir} is not a folder (yet)\n`);
        }
        const discovery = create(config.discovery, { extraWatch: linkDirs, pollIntervalMs: opts.pollMs });
        const probeOptions: ProbeOptions = {
          baudRate: config.deviceLink.baudRate,
          commandTimeoutMs: opts.probeTimeout,
          openHid: (c) => new HidTransport({ path: c.path, vendorId: c.vendorId ? parseInt(c.vendorId, 16) : undefined, productId: c.productId ? parseInt(c.productId, 16) : undefined }),
        };
        if (opts.watch) {
          await watchPorts(discovery, opts, probeOptions, { out, err, probe });
          exit(ExitCode.OK);
          return;
        }
        const scan = await discovery.scan();
        for (const e of scan.errors) err.write(`station: warning: ${e.lister}: ${e.error.code}: ${e.error.message}\n`);
        const probes = opts.probe ? await Promise.all(scan.candidates.map((c) => probe(c, probeOptions))) : undefined;
        if (opts.json) {
          for (const [i, c] of scan.candidates.entries()) out.write(portJson('port', c, probes?.[i]) + '\n');
        } else if (scan.candidates.length === 0) {
          err.write('no ports found\n');
        } else {
          out.write(formatPortsTable(scan.candidates, probes));
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });
}

/** Local time of day, to the millisecond. */
function clockTime(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** Runs until SIGINT or SIGTERM; each port's lines come out in order (added, then removed). */
async function watchPorts(
  discovery: PortDiscovery,
  opts: PortsOptions,
  probeOptions: ProbeOptions,
  io: { out: { write(t: string): unknown }; err: { write(t: string): unknown }; probe: NonNullable<PortsCommandDeps['probe']> },
): Promise<void> {
  const chains = new Map<string, Promise<void>>();
  const print = async (e: PortEvent): Promise<void> => {
    const p = e.type === 'port-added' && opts.probe ? await io.probe(e.port, probeOptions) : undefined;
    if (opts.json) {
      io.out.write(portJson(e.type, e.port, p, { at: e.at.toISOString(), initial: e.initial }) + '\n');
    } else {
      const c = e.port;
      const cells = [
        clockTime(e.at),
        e.type === 'port-added' ? 'added  ' : 'removed',
        c.kind,
        c.realPath && c.realPath !== c.path ? `${c.path} -> ${c.realPath}` : c.path,
        usbIds(c),
        c.serialNumber ?? '-',
        c.source,
      ];
      if (p) cells.push(deviceCell(p) + (p.status === 'failed' ? ` (${p.error.message})` : ''));
      io.out.write(cells.join('  ') + '\n');
    }
  };
  const onEvent = (e: PortEvent) => {
    const key = candidateKey(e.port);
    const next = (chains.get(key) ?? Promise.resolve()).then(() => print(e)).catch((x: unknown) => {
      io.err.write(`station: ${(x as Error).message}\n`);
    });
    chains.set(key, next);
    void next.then(() => {
      if (chains.get(key) === next) chains.delete(key);
    });
  };
  const stopped = new Promise<void>((resolveStop) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolveStop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const watch = discovery.watch(onEvent, {
    onError: (lister, e) => io.err.write(e ? `station: warning: ${lister}: ${e.code}: ${e.message}\n` : `station: ${lister}: listing works again\n`),
  });
  await watch.ready;
  if (opts.json) {
    await Promise.all(chains.values());
    io.out.write(JSON.stringify({ event: 'ready' }) + '\n');
  }
  io.err.write('station: watching for ports; Ctrl-C to stop\n');
  await stopped;
  await watch.stop();
  await Promise.all(chains.values());
}
