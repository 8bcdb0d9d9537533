/**
 * Group `link` (contracts.md §4): what the device link costs the station, per device, over a
 * link-only run against paced simulators (station-sim --baud N, as its own process, so that
 * process.cpuUsage here is the station's side alone).
 *
 * One device = HELLO, IDENTIFY, GENERATE_KEY, GET_CSR, INSTALL_CHAIN (leaf, issuing CA, root:
 * a realistic IDevID chain, fragmented to the device's 1024-byte frames), WRITE_ITEM (DPP URI),
 * READ_ITEM (chain), READ_ITEM (DPP URI), SIGN_CHALLENGE, LOCK: the secure-element-keygen run,
 * the only method that runs end to end today and so also "the worst method". The certificate
 * for the device's key is issued by a software CA between GET_CSR and INSTALL_CHAIN; that CPU
 * is measured apart and left out (it is the CA's, not the link's).
 *
 * - link_framing_overhead_ratio: (bytes on the wire - TLV payload bytes) / payload bytes;
 * - link_cpu_ms_per_device: process CPU (user + system) over the run / devices;
 * - link_bytes_<method>, link_round_trips_<method>: bytes both ways and frames the station
 *   writes (each awaits one frame back) per device.
 * Unsuffixed at 115200 baud; `_921600` at 921600. Each figure is the median of the repetitions.
 * STATION_SERIAL_IO=stream measures serialport's stream path (the fallback) instead of the
 * direct one. The "waiting for the device's first byte" note counts from the write to the
 * first byte the station *sees*: on the direct path a foretold reply is seen whole, at its end.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultStationConfig, formatSerial, type ProductProfile, type SerialFormat } from '../../core/config';
import { DppUri } from '../../core/dpp-uri';
import { DeviceClient } from '../../device/device-client';
import { DeviceConnection, type ExchangeStats } from '../../device/device-connection';
import { CHALLENGE_CONTEXT } from '../../device/protocol/challenge';
import { Item, KeyLocation } from '../../device/protocol/commands';
import { SerialTransport } from '../../device/transport/serial-transport';
import { startSimulator, type SimulatorProcess } from '../../station/simulate/simulator-process';
import { createSoftwarePki, type SoftwarePki } from '../software-pki';
import { MIN_REPETITIONS, median } from '../stats';
import type { BenchContext, BenchGroup, Figure } from '../types';

export interface LinkGroupOptions {
  /** The first is the contract's (unsuffixed figures); the others get a `_<baud>` suffix. */
  bauds: number[];
  repetitions: number;
  /** Devices per repetition (one port, one after another). */
  devicesPerRepetition: number;
  /** Untimed devices first (JIT, SoftHSM warm-up in the simulator). */
  warmupDevices: number;
  overheadTarget: number;
  cpuTargetMs: number;
}

export const LINK_GROUP_DEFAULTS: LinkGroupOptions = {
  bauds: [115200, 921600],
  repetitions: MIN_REPETITIONS,
  devicesPerRepetition: 8,
  warmupDevices: 2,
  overheadTarget: 0.1,
  cpuTargetMs: 2,
};

const METHOD = 'secure-element-keygen';
const METHOD_SNAKE = METHOD.replace(/-/g, '_');

interface DeviceCost {
  /** CPU spent outside the link (issuing the certificate, building the DPP URI), microseconds. */
  offLinkCpuUs: number;
}

/** One device through the link, as the station's run does it (without database or labels). */
async function linkDevice(client: DeviceClient, pki: SoftwarePki, product: ProductProfile, serial: string): Promise<DeviceCost> {
  await client.hello();
  const identity = await client.identify();
  const spki = await client.generateKey(KeyLocation.SECURE_ELEMENT);
  await client.getCsr(serial);
  // the CA's part, measured apart: the link is idle meanwhile, so nothing else runs in this process
  const c0 = process.cpuUsage();
  const issued = await pki.issuer.issue({ spki, serial, model: identity.model, workOrderId: 'WO-BENCH-LINK', profile: product.idevid });
  const dpp = DppUri.build({
    channels: product.dpp.channels,
    mac: product.dpp.includeMac ? identity.macs[0] : undefined,
    info: product.dpp.includeSerialAsInfo ? serial : undefined,
    version: product.dpp.version,
    publicKeySpki: spki,
  }).toString();
  const off = process.cpuUsage(c0);
  await client.installChain([issued.certificateDer, ...issued.chain]);
  await client.installDppUri(dpp);
  const chain = await client.readItem(Item.IDEVID_CHAIN);
  if (chain.length !== 3) throw new Error(`the device read back ${chain.length} certificates, not 3`);
  const [uri] = await client.readItem(Item.DPP_URI);
  if (uri?.toString('utf8') !== dpp) throw new Error('the device read back another DPP URI');
  await client.signChallenge(randomBytes(32), serial, CHALLENGE_CONTEXT);
  await client.lock();
  return { offLinkCpuUs: off.user + off.system };
}

interface RunFigures {
  overhead: number;
  cpuMs: number;
  bytes: number;
  roundTrips: number;
  wallMs: number;
  deviceWaitMs: number;
  wireMs: number;
  payloadBytes: number;
  /** 'data' events the serial port delivered. */
  reads: number;
  /** Poller and timer wake-ups of the transport (direct I/O only; NaN on the stream path). */
  wakeups: number;
}

function snapshot(s: ExchangeStats): ExchangeStats {
  return { ...s };
}

async function measureAtBaud(ctx: BenchContext, o: LinkGroupOptions, baud: number, product: ProductProfile, pki: SoftwarePki, serials: () => string): Promise<{ runs: RunFigures[]; sim: SimulatorProcess; io: string }> {
  const sim = await startSimulator({ ports: 1, dir: join(ctx.dataDir, `sim-${baud}`), method: METHOD, model: product.model, baud });
  let connection: DeviceConnection | undefined;
  try {
    if (!sim.timing.paced || sim.timing.baud !== baud) throw new Error(`station-sim did not pace at ${baud} baud: ${JSON.stringify(sim.timing)}`);
    const transport = new SerialTransport({ path: sim.ports[0]!, baudRate: baud });
    let reads = 0;
    transport.onData(() => reads++);
    const wakeups = () => (transport.ioStats ? transport.ioStats.pollWakeups + transport.ioStats.timerWakeups : NaN);
    await transport.open();
    connection = new DeviceConnection(transport);
    const config = defaultStationConfig();
    const client = new DeviceClient(connection, { commandTimeoutMs: config.deviceLink.commandTimeoutMs, keygenTimeoutMs: config.deviceLink.keygenTimeoutMs });
    for (let i = 0; i < o.warmupDevices; i++) await linkDevice(client, pki, product, serials());
    const runs: RunFigures[] = [];
    for (let r = 0; r < o.repetitions; r++) {
      const before = snapshot(connection.stats);
      const readsBefore = reads;
      const wakeupsBefore = wakeups();
      let offLinkUs = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let d = 0; d < o.devicesPerRepetition; d++) offLinkUs += (await linkDevice(client, pki, product, serials())).offLinkCpuUs;
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const s = connection.stats;
      const n = o.devicesPerRepetition;
      const bytes = s.bytesSent - before.bytesSent + (s.bytesReceived - before.bytesReceived);
      const payload = s.payloadBytes - before.payloadBytes;
      runs.push({
        overhead: (bytes - payload) / payload,
        cpuMs: (cpu.user + cpu.system - offLinkUs) / 1000 / n,
        bytes: bytes / n,
        roundTrips: (s.framesSent - before.framesSent) / n,
        wallMs: wallMs / n,
        deviceWaitMs: (s.deviceWaitMs - before.deviceWaitMs) / n,
        wireMs: (bytes * 10 * 1000) / baud / n,
        payloadBytes: payload / n,
        reads: (reads - readsBefore) / n,
        wakeups: (wakeups() - wakeupsBefore) / n,
      });
      ctx.log(`${baud} baud, repetition ${r + 1}: ${(wallMs / n).toFixed(0)} ms and ${runs.at(-1)!.cpuMs.toFixed(2)} ms CPU per device`);
    }
    return { runs, sim, io: transport.io ?? '?' };
  } finally {
    await connection?.close().catch(() => undefined);
    await sim.stop();
  }
}

export function createLinkGroup(overrides: Partial<LinkGroupOptions> = {}): BenchGroup {
  const o: LinkGroupOptions = { ...LINK_GROUP_DEFAULTS, ...overrides };
  return {
    name: 'link',
    description: 'device link per device (secure-element-keygen, link only) against paced simulators: framing overhead, station CPU, bytes, round trips',
    async run(ctx): Promise<Figure[]> {
      const config = defaultStationConfig();
      const product = config.products['demo-sensor']!;
      const pki = await createSoftwarePki(product.idevid.organization);
      const format: SerialFormat = { prefix: 'LINK-', width: 6, first: 1, last: 999_999 };
      let next = 1;
      const serials = () => formatSerial(format, next++);
      ctx.note('method', `${METHOD} (the only method that runs end to end; so also the worst)`);
      ctx.note('per device', 'HELLO, IDENTIFY, GENERATE_KEY, GET_CSR, INSTALL_CHAIN (3 certificates, 2 fragments), WRITE_ITEM, READ_ITEM x2, SIGN_CHALLENGE, LOCK');
      ctx.note('parameters', `${o.repetitions} repetitions of ${o.devicesPerRepetition} devices on one port after ${o.warmupDevices} warm-up devices, per baud rate`);

      const figures: Figure[] = [];
      for (const [i, baud] of o.bauds.entries()) {
        ctx.log(`station-sim --baud ${baud}`);
        const { runs, sim, io } = await measureAtBaud(ctx, o, baud, product, pki, serials);
        const sfx = i === 0 ? '' : `_${baud}`;
        const m = (f: (r: RunFigures) => number) => median(runs.map(f));
        if (i === 0) ctx.note('simulator timing', sim.timingText.replace(`${baud} baud, `, ''));
        ctx.note(
          `at ${baud} baud, per device`,
          `${m((r) => r.wallMs).toFixed(0)} ms wall, ${m((r) => r.deviceWaitMs).toFixed(0)} ms waiting for the device's first byte, ` +
            `${m((r) => r.wireMs).toFixed(0)} ms of bytes x 10 / baud, ${m((r) => r.payloadBytes).toFixed(0)} payload bytes, ` +
            `${m((r) => r.reads).toFixed(0)} reads (${((m((r) => r.cpuMs) * 1000) / m((r) => r.reads)).toFixed(0)} us CPU per read, all included), ` +
            (io === 'direct' ? `${m((r) => r.wakeups).toFixed(1)} transport wake-ups (serial I/O direct: poller + timers)` : `serial I/O: ${io}`),
        );
        figures.push(
          { name: `link_framing_overhead_ratio${sfx}`, value: m((r) => r.overhead), unit: 'ratio', target: { op: '<=', value: o.overheadTarget } },
          { name: `link_cpu_ms_per_device${sfx}`, value: m((r) => r.cpuMs), unit: 'ms', target: { op: '<=', value: o.cpuTargetMs } },
          { name: `link_bytes_${METHOD_SNAKE}${sfx}`, value: m((r) => r.bytes), unit: 'bytes' },
          { name: `link_round_trips_${METHOD_SNAKE}${sfx}`, value: m((r) => r.roundTrips), unit: 'round trips' },
        );
      }
      return figures;
    },
  };
}

export const linkGroup: BenchGroup = createLinkGroup();
