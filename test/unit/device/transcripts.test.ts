/**
 * Device transcripts (fixtures/transcripts/*.txt), recorded from the simulator by
 * test/helpers/record-transcripts.ts, replayed here through ScriptedTransport: the station must
 * write exactly the recorded frames (outside `# mask`ed bytes), in order, no more and no fewer,
 * and reach the recorded outcome from the recorded device answers.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/core/logger';
import { DeviceClient } from '../../../src/device/device-client';
import { DeviceConnection } from '../../../src/device/device-connection';
import { ScriptedTransport, TranscriptMismatch } from '../../helpers/scripted-transport';
import { SCENARIOS, TRANSCRIPT_TIMEOUTS, type Scenario, type ScenarioInputs } from '../../helpers/transcript-scenarios';
import { TranscriptFormatError, equalMasked, formatTranscript, parseTranscript, type Transcript } from '../../helpers/transcript';

const DIR = resolve(__dirname, '../../../fixtures/transcripts');

function load(name: string): { text: string; transcript: Transcript } {
  const text = readFileSync(join(DIR, `${name}.txt`), 'utf8');
  return { text, transcript: parseTranscript(text, `${name}.txt`) };
}

class ReplayInputs implements ScenarioInputs {
  readonly used = new Set<string>();
  constructor(private readonly values: ReadonlyMap<string, Buffer>) {}
  async bytes(name: string): Promise<Buffer> {
    const v = this.values.get(name);
    if (!v) throw new Error(`the transcript has no @input ${name}`);
    this.used.add(name);
    return Buffer.from(v);
  }
}

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function replay(scenario: Scenario, transcript: Transcript): Promise<{ transport: ScriptedTransport; inputs: ReplayInputs; run: Promise<void> }> {
  const transport = new ScriptedTransport(transcript);
  await transport.open();
  const connection = new DeviceConnection(transport, silentLogger, { firstSeq: transcript.firstSeq });
  const inputs = new ReplayInputs(transcript.inputs);
  const tmpDir = mkdtempSync(join(tmpdir(), `transcript-${scenario.name}-`));
  tmpDirs.push(tmpDir);
  const run = scenario.run({ client: new DeviceClient(connection, TRANSCRIPT_TIMEOUTS), connection, inputs, tmpDir });
  return { transport, inputs, run };
}

const scenario = (name: string): Scenario => SCENARIOS.find((s) => s.name === name)!;

describe('device transcripts', () => {
  it('there is one transcript per scenario, and each is in canonical form', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.txt')).map((f) => f.slice(0, -4)).sort();
    expect(files).toEqual(SCENARIOS.map((s) => s.name).sort());
    for (const s of SCENARIOS) {
      const { text, transcript } = load(s.name);
      expect(transcript.firstSeq, s.name).toBe(s.firstSeq);
      expect(formatTranscript(transcript), s.name).toBe(text);
    }
  });

  for (const s of SCENARIOS) {
    it(`${s.name}: ${s.title}`, async () => {
      const { transcript } = load(s.name);
      const { transport, inputs, run } = await replay(s, transcript);
      await run;
      transport.assertComplete();
      expect([...inputs.used].sort()).toEqual([...transcript.inputs.keys()].sort());
    });
  }

  it('the device run speaks the sequence of docs/device-protocol.md, one exchange at a time', () => {
    const { transcript } = load('device-run-secure-element-keygen');
    const station = transcript.lines.filter((l) => l.dir === '=>');
    expect(station.map((l) => l.comments[0]!.split(' ')[0])).toEqual([
      'HELLO',
      'IDENTIFY',
      'GENERATE_KEY',
      'GET_CSR',
      'INSTALL_CHAIN',
      'INSTALL_CHAIN',
      'WRITE_ITEM',
      'READ_ITEM',
      'READ_ITEM',
      'SIGN_CHALLENGE',
      'LOCK',
    ]);
    // strictly alternating: the station never has two frames in flight
    expect(transcript.lines.map((l) => l.dir).join('')).toBe('=><='.repeat(station.length));
  });
});

describe('ScriptedTransport', () => {
  it('fails on a wrong frame, naming the line and the field', async () => {
    const { transcript } = load('hello');
    const bad = { ...transcript, lines: transcript.lines.map((l) => ({ ...l, bytes: Buffer.from(l.bytes) })) };
    bad.lines[0]!.bytes[4] ^= 0x01; // the seq the station should send
    const { transport, run } = await replay(scenario('hello'), bad);
    await expect(run).rejects.toThrow(TranscriptMismatch);
    await expect(run).rejects.toThrow(/wrong frame at line \d+ .*: seq \(offset 4\)/);
    expect(() => transport.assertComplete()).toThrow(/wrong frame/);
  });

  it('fails on a leftover frame: the station writes more than the transcript has', async () => {
    const { transcript } = load('hello');
    const { transport, run } = await replay(scenario('hello'), { ...transcript, lines: transcript.lines.slice(0, 2) });
    await expect(run).rejects.toThrow(/leftover frame: the station wrote a55a0100000001.* after the end of the transcript/);
    expect(() => transport.assertComplete()).toThrow(/leftover frame/);
  });

  it('fails on a missing frame: the transcript has frames the station never sent', async () => {
    const { transcript } = load('hello');
    const more = { ...transcript, lines: [...transcript.lines, ...load('identify').transcript.lines.slice(2, 4)] };
    const { transport, run } = await replay(scenario('hello'), more);
    await run;
    expect(transport.remaining).toBe(2);
    expect(() => transport.assertComplete()).toThrow(/missing frame: the station never got to line \d+ \(=> a55a/);
  });

  it('compares masked frames outside their masks only', () => {
    const { transcript } = load('sign-challenge');
    const masked = transcript.lines.filter((l) => l.mask.length > 0);
    expect(masked).toHaveLength(2);
    const line = masked[0]!;
    expect(line.note).toMatch(/random/);
    const other = Buffer.from(line.bytes);
    for (let i = 13; i < 45; i++) other[i] ^= 0xff; // another nonce
    other.writeUInt32BE(0, other.length - 4); // and so another CRC
    expect(equalMasked(other, line.bytes, line.mask)).toBe(true);
    other[46] ^= 0x01; // a byte of the serial: not masked
    expect(equalMasked(other, line.bytes, line.mask)).toBe(false);
  });

  it('rejects malformed transcripts with the line number', () => {
    expect(() => parseTranscript('@first-seq 1\n<= a55a # mask crc device frames are replayed as recorded\n', 't')).toThrow(TranscriptFormatError);
    expect(() => parseTranscript('@first-seq 1\n=> a55a0100 # mask 2..3\n', 't')).toThrow(/t:2: a mask needs its reason/);
    expect(() => parseTranscript('@first-seq 1\n=> a55a0100 # mask 2..9 too far\n', 't')).toThrow(/outside the 4-byte frame/);
    expect(() => parseTranscript('=> a55a\n', 't')).toThrow(/no @first-seq/);
    expect(() => parseTranscript('@first-seq 1\n-> a55a\n', 't')).toThrow(/t:2: expected/);
  });
});
