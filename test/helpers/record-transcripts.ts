/**
 * Records fixtures/transcripts/*.txt from the real simulator: one station-sim port (socat PTY,
 * SoftHSM secure element, in this process), the station's SerialTransport wrapped in a
 * RecordingTransport, and the scenarios of transcript-scenarios.ts.
 *
 *   npx vite-node test/helpers/record-transcripts.ts [SCENARIO...]
 *
 * Re-record after a deliberate protocol change, then review the diff: a transcript is the
 * protocol's behaviour, byte for byte.
 */
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLogger } from '../../src/core/logger';
import { DeviceClient } from '../../src/device/device-client';
import { DeviceConnection } from '../../src/device/device-connection';
import { SerialTransport } from '../../src/device/transport/serial-transport';
import { SOFTHSM_DEFAULT_MODULE } from '../../src/hsm/pkcs11/softhsm-config';
import { SimLine } from '../../src/simulator/sim-line';
import { RecordingTransport } from './recording-transport';
import { SCENARIOS, TRANSCRIPT_TIMEOUTS, type ScenarioInputs } from './transcript-scenarios';
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
    return v;
  }
}

async function main(names: string[]): Promise<void> {
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const scenarios = names.length > 0 ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  const dir = mkdtempSync(join(tmpdir(), 'record-transcripts-'));
  mkdirSync(TRANSCRIPTS_DIR, { recursive: true });
  const line = await SimLine.start({
    dir: join(dir, 'sim'),
    ports: 1,
    model: 'DemoSensor-1',
    firmwareVersion: '1.0.0',
    method: 'secure-element-keygen',
    faults: new Map(),
    softhsmModule: process.env.SOFTHSM_MODULE ?? SOFTHSM_DEFAULT_MODULE,
  });
  try {
    for (const scenario of scenarios) {
      const transport = new RecordingTransport(new SerialTransport({ path: line.ports[0]!.stationPath, baudRate: 115200 }));
      await transport.open();
      const connection = new DeviceConnection(transport, silentLogger, { firstSeq: scenario.firstSeq });
      const inputs = new RecordingInputs();
      const tmp = join(dir, scenario.name);
      mkdirSync(tmp);
      try {
        await scenario.run({ client: new DeviceClient(connection, TRANSCRIPT_TIMEOUTS), connection, inputs, tmpDir: tmp });
      } finally {
        await connection.close();
      }
      if (transport.strayBytes !== 0) throw new Error(`${scenario.name}: ${transport.strayBytes} bytes crossed the link outside frames`);
      const transcript: Transcript = {
        title: scenario.title,
        firstSeq: scenario.firstSeq,
        inputs: inputs.values,
        header: [
          `Transcript "${scenario.name}" (format: test/helpers/transcript.ts; replayed by test/unit/device/transcripts.test.ts).`,
          'Recorded by test/helpers/record-transcripts.ts from station-sim (secure-element-keygen, SoftHSM SE,',
          'device frame limit 1024) over a socat PTY; re-record with: npx vite-node test/helpers/record-transcripts.ts ' + scenario.name,
          'Device frames (<=) carry what the device made up (keys, hardware id, MAC, signatures) and are replayed',
          'as recorded; @input lines are what the station needs to make the same requests again.',
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
  } finally {
    await line.stop();
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
