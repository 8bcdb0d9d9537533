/**
 * A line of simulated devices: K PTY pairs (socat), one VirtualDevice per port, each port with
 * its own secure-element token in the simulator's SoftHSM (never the station's).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MethodId } from '../core/method-id';
import { Pkcs11Library } from '../hsm/pkcs11/pkcs11-library';
import { Pkcs11Token } from '../hsm/pkcs11/pkcs11-token';
import { ensureSoftHsmConfig } from '../hsm/pkcs11/softhsm-config';
import { DevicePort } from './device-port';
import type { PortFaults } from './faults';
import type { SimTiming } from './link-timing';
import { openPtyPair, type PtyPair } from './pty-pair';
import { SimulatedSecureElement } from './simulated-secure-element';
import { VirtualDevice, methodHasSecureElement } from './virtual-device';
import { SeedChipSupply } from './vendor/seed-chip-supply';

export interface SimLineOptions {
  dir: string;
  ports: number;
  model: string;
  firmwareVersion: string;
  faults: Map<number, PortFaults>;
  softhsmModule: string;
  /** The birth-credential method the devices' firmware is built for. */
  method: MethodId;
  /** Each device's frame limit (MAX_PAYLOAD). */
  maxPayloadBytes?: number;
  /** Pace the output and apply device latency floors (link-timing.ts); undefined = PTY speed. */
  timing?: SimTiming;
  /**
   * Each port holds one device for the simulator's life: a new session (HELLO) does not swap in
   * the next device. A QA bench: the station provisions the device, then `station qa brski`
   * talks to the same device (docs/simulator.md).
   */
  keepDevices?: boolean;
  /** A device went away (a `disconnect` fault): its PTY pair is ended. */
  onDisconnect?: (port: SimPortInfo) => void;
}


export interface SimPortInfo {
  index: number;
  stationPath: string;
  devicePath: string;
  seToken: string | null;
}

function secret(path: string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const value = randomBytes(12).toString('base64url');
  writeFileSync(path, value + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return value;
}

export function seTokenLabel(index: number): string {
  return `se-port-${index}`;
}

export class SimLine {
  private readonly pairs: PtyPair[] = [];
  private readonly devicePorts: DevicePort[] = [];
  private readonly tokens: Pkcs11Token[] = [];
  readonly devices: VirtualDevice[] = [];
  readonly ports: SimPortInfo[] = [];

  private constructor(private readonly options: SimLineOptions) {}

  static async start(options: SimLineOptions): Promise<SimLine> {
    const line = new SimLine(options);
    try {
      await line.startAll();
    } catch (err) {
      await line.stop();
      throw err;
    }
    return line;
  }

  private async startAll(): Promise<void> {
    const dir = resolve(this.options.dir);
    mkdirSync(join(dir, 'links'), { recursive: true });
    // SoftHSM reads SOFTHSM2_CONF when the module initialises; the simulator always uses its own.
    process.env.SOFTHSM2_CONF = ensureSoftHsmConfig(dir);
    const library = Pkcs11Library.open(this.options.softhsmModule);
    const pin = secret(join(dir, 'se-pin'));
    const soPin = secret(join(dir, 'se-so-pin'));
    const withSe = methodHasSecureElement(this.options.method);
    for (let i = 0; i < this.options.ports; i++) {
      const label = seTokenLabel(i);
      let token: Pkcs11Token | undefined;
      if (withSe) {
        if (!library.findToken(label)) library.initToken(label, soPin, pin);
        token = Pkcs11Token.login(library, label, pin);
        this.tokens.push(token);
      }
      const pair = await openPtyPair(join(dir, 'links', `port${i}`), join(dir, 'links', `port${i}.device`));
      this.pairs.push(pair);
      const faults = this.options.faults.get(i);
      const device = new VirtualDevice({
        model: this.options.model,
        firmwareVersion: this.options.firmwareVersion,
        method: this.options.method,
        faults: faults?.firmware ?? new Set(),
        se: token ? new SimulatedSecureElement(token) : undefined,
        maxPayloadBytes: this.options.maxPayloadBytes,
        keepDevice: this.options.keepDevices,
        vendorDir: join(dir, 'vendor'),
        // Method 5: each device presented takes the next chip the vendor kit made (seed-chip-supply.ts).
        onNewDevice: this.options.method === 'seed-derived' ? SeedChipSupply.presenter(join(dir, 'vendor'), faults?.firmware ?? new Set()) : undefined,
      });
      this.devices.push(device);
      const info: SimPortInfo = { index: i, stationPath: pair.stationPath, devicePath: pair.devicePath, seToken: token ? label : null };
      const port = new DevicePort(pair.devicePath, device, {
        timing: this.options.timing,
        faults: faults?.link,
        // The station does not notice the far end of a PTY closing: only ending socat (the
        // master side) makes its port report a disconnection, as unplugging an adapter would.
        onDisconnect: () => {
          void pair.close().then(() => this.options.onDisconnect?.(info));
        },
      });
      await port.open();
      this.devicePorts.push(port);
      this.ports.push(info);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.devicePorts.map((p) => p.close()));
    await Promise.all(this.pairs.map((p) => p.close()));
    for (const t of this.tokens) t.close();
  }
}
