/**
 * Records fixtures/transcripts/*.txt from the real simulator: one station-sim port (socat PTY,
 * in this process) per method the scenarios need, the station's SerialTransport wrapped in a
 * RecordingTransport, and the scenarios of transcript-scenarios.ts.
 *
 *   npx vite-node test/helpers/record-transcripts.ts [SCENARIO...]
 *
 * Each method's line is started as `station batch --simulate` would start it: method 4 after the
 * SE vendor kit put SEs on the reel and wrote their signed manifest, method 5 after the chip
 * vendor kit made the chips its devices take. All lines share one simulator folder (SoftHSM reads
 * its configuration once per process). Re-record after a deliberate protocol change, then review
 * the diff: a transcript is the protocol's behaviour, byte for byte.
 */
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLogger } from '../../src/core/logger';
import type { MethodId } from '../../src/core/method-id';
import { DeviceClient } from '../../src/device/device-client';
import { DeviceConnection } from '../../src/device/device-connection';
import { SerialTransport } from '../../src/device/transport/serial-transport';
import { SOFTHSM_DEFAULT_MODULE } from '../../src/hsm/pkcs11/softhsm-config';
import { SimLine } from '../../src/simulator/sim-line';
import { methodHasSecureElement } from '../../src/simulator/virtual-device';
import { makeVendorChips } from '../../src/simulator/vendor/seed-chip-supply';
import { runSeVendorKit } from '../../src/simulator/vendor/se-vendor-kit-command';
import { RecordingTransport } from './recording-transport';
import { SCENARIOS, TRANSCRIPT_TIMEOUTS, scenarioMethod, type Scenario, type ScenarioInputs, type SimulatorSide } from './transcript-scenarios';
import { describeFrame, formatTranscript, type Transcript } from './transcript';

export const TRANSCRIPTS_DIR = resolve(__dirname, '../../fixtures/transcripts');

class RecordingInputs implements ScenarioInputs {
  readonly values = new Map<string, Buffer>();
  async bytes(name: string, make: () => Buffer | Promise<Buffer>): Promise<Buffer> {
    let v = this.values.get(name);
    if (!v) {
      v = Buffer.from(await make());
      this.values.set(name, v);
    }
    return Buffer.from(v); // the caller's own copy: zeroising it must not change what is recorded
  }
}

/** What the simulator is, for the transcript's header. */
function simulatorDescription(method: MethodId): string {
  switch (method) {
    case 'secure-element-keygen':
      return 'secure-element-keygen, SoftHSM SE';
    case 'se-preprovisioned':
      return 'se-preprovisioned, SoftHSM SE off the SE vendor kit\'s reel';
    case 'seed-derived':
      return 'seed-derived, a chip from the chip vendor kit';
    default:
      return `${method}, no SE`;
  }
}

/** The vendor's part of `--simulate` for the method, before the line starts (devices take from it when presented). */
function prepareVendor(method: MethodId, simDir: string, devices: number, softhsmModule: string): SimulatorSide {
  const side: SimulatorSide = { method, chips: [] };
  if (method === 'seed-derived') {
    // in the order the devices take them (seed-chip-supply.ts: the lowest chip id first)
    side.chips = makeVendorChips(join(simDir, 'vendor'), devices, 'LOT-TRANSCRIPT').sort((a, b) => Buffer.compare(a.chipId, b.chipId));
  }
  if (method === 'se-preprovisioned') {
    const kit = runSeVendorKit({ dir: simDir, count: devices, softhsmModule });
    side.seVendorKit = { manifest: kit.manifest, signerCertificate: kit.signerCertificate, vendorCaCertificate: kit.vendorCaCertificate };
  }
  return side;
}

async function record(scenario: Scenario, line: SimLine, simulator: SimulatorSide, dir: string): Promise<void> {
  const transport = new RecordingTransport(new SerialTransport({ path: line.ports[0]!.stationPath, baudRate: 115200 }));
  await transport.open();
  const connection = new DeviceConnection(transport, silentLogger, { firstSeq: scenario.firstSeq });
  const inputs = new RecordingInputs();
  const tmp = join(dir, scenario.name);
  mkdirSync(tmp);
  try {
    await scenario.run({ client: new DeviceClient(connection, TRANSCRIPT_TIMEOUTS), connection, inputs, tmpDir: tmp, simulator });
  } finally {
    await connection.close();
  }
  if (transport.strayBytes !== 0) throw new Error(`${scenario.name}: ${transport.strayBytes} bytes crossed the link outside frames`);
  const method = scenarioMethod(scenario);
  const transcript: Transcript = {
    title: scenario.title,
    firstSeq: scenario.firstSeq,
    inputs: inputs.values,
    header: [
      `Transcript "${scenario.name}" (format: test/helpers/transcript.ts; replayed by test/unit/device/transcripts.test.ts).`,
      `Recorded by test/helpers/record-transcripts.ts from station-sim (${simulatorDescription(method)},`,
      'device frame limit 1024) over a socat PTY; re-record with: npx vite-node test/helpers/record-transcripts.ts ' + scenario.name,
      'Device frames (<=) carry what the device made up (keys, hardware id, MAC, signatures) and are replayed',
      'as recorded; @input lines are what the station needs to make the same requests again.',
      ...(scenario.about ?? []),
    ],
    lines: transport.frames.map((f) => {
      const m = f.dir === '=>' ? scenario.mask?.(f.frame, f.bytes) : undefined;
      return { dir: f.dir, bytes: f.bytes, lineNo: 0, mask: m?.ranges ?? [], note: m?.reason, comments: [describeFrame(f.frame)] };
    }),
  };
  const path = join(TRANSCRIPTS_DIR, `${scenario.name}.txt`);
  writeFileSync(path, formatTranscript(transcript));
  process.stdout.write(`recorded ${path}: ${transcript.lines.length} frames\n`);
}

async function main(names: string[]): Promise<void> {
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const scenarios = names.length > 0 ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  const byMethod = new Map<MethodId, Scenario[]>();
  for (const s of scenarios) byMethod.set(scenarioMethod(s), [...(byMethod.get(scenarioMethod(s)) ?? []), s]);
  const dir = mkdtempSync(join(tmpdir(), 'record-transcripts-'));
  const simDir = join(dir, 'sim');
  const softhsmModule = process.env.SOFTHSM_MODULE ?? SOFTHSM_DEFAULT_MODULE;
  mkdirSync(TRANSCRIPTS_DIR, { recursive: true });
  try {
    for (const [method, list] of byMethod) {
      // one device per scenario: a scenario's first HELLO opens the session of the device presented before it
      const simulator = prepareVendor(method, simDir, list.length, softhsmModule);
      const line = await SimLine.start({
        dir: simDir,
        ports: 1,
        model: 'DemoSensor-1',
        firmwareVersion: '1.0.0',
        method,
        faults: new Map(),
        softhsmModule,
      });
      try {
        process.stdout.write(`${method}: ${methodHasSecureElement(method) ? 'SE token ' + line.ports[0]!.seToken : 'no SE'}\n`);
        for (const scenario of list) await record(scenario, line, simulator, dir);
      } finally {
        await line.stop();
        for (const chip of simulator.chips) chip.seed.fill(0);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`record-transcripts: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
