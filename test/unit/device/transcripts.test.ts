/**
 * Device transcripts (fixtures/transcripts/*.txt), recorded from the simulator by
 * test/helpers/record-transcripts.ts, replayed here through ScriptedTransport: the station must
 * write exactly the recorded frames (outside `# mask`ed bytes), in order, no more and no fewer,
 * and reach the recorded outcome from the recorded device answers.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/core/logger';
import { METHOD_IDS, type MethodId } from '../../../src/core/method-id';
import { DeviceClient } from '../../../src/device/device-client';
import { DeviceConnection } from '../../../src/device/device-connection';
import { FrameDecoder, encodeFrame } from '../../../src/device/framing/frame-codec';
import { decodeTlv, encodeTlv } from '../../../src/device/framing/tlv';
import { Tag } from '../../../src/device/protocol/commands';
import { ScriptedTransport, TranscriptMismatch } from '../../helpers/scripted-transport';
import { SCENARIOS, TRANSCRIPT_TIMEOUTS, scenarioMethod, tlvValueRange, type Scenario, type ScenarioInputs } from '../../helpers/transcript-scenarios';
import { TranscriptFormatError, equalMasked, formatTranscript, parseTranscript, type Transcript, type TranscriptLine } from '../../helpers/transcript';

const DIR = resolve(__dirname, '../../../fixtures/transcripts');

const INSTALL = ['INSTALL_CHAIN', 'INSTALL_CHAIN', 'WRITE_ITEM']; // the chain in two fragments (1024-byte device limit), the DPP URI
const READBACK = ['READ_ITEM', 'READ_ITEM'];
const VERIFY = [...READBACK, 'SIGN_CHALLENGE'];
const TAG_NAMES = new Map<number, string>(Object.entries(Tag).map(([k, v]) => [v, k]));

/** The command a transcript line's frame carries (the recorder's comment starts with it). */
function commandOf(line: TranscriptLine): string {
  return line.comments[0]!.split(' ')[0]!;
}

/** The same reply frame with its PUBLIC_KEY replaced by a fresh P-256 key of the same length (and so a new CRC). */
function withAnotherPublicKey(bytes: Buffer): Buffer {
  const [frame] = new FrameDecoder().push(bytes);
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
  const items = decodeTlv(frame!.payload).map((i) => (i.tag === Tag.PUBLIC_KEY ? { ...i, value: other } : i));
  expect(items.some((i) => i.value === other)).toBe(true);
  return encodeFrame({ ...frame!, payload: encodeTlv(items) });
}

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

  // docs/device-protocol.md §4: the station's sequence for one device, per method
  const RUN_SEQUENCES: Record<MethodId, string[]> = {
    // a device that holds its key at obtain-key is challenged at once (checked in verify)
    'on-device-keygen': ['HELLO', 'IDENTIFY', 'GENERATE_KEY', 'GET_CSR', 'SIGN_CHALLENGE', ...INSTALL, 'READ_ITEM', 'READ_ITEM', 'GET_PUBLIC_KEY', 'LOCK'],
    // ... and then asked, after install, for the key it holds now (the certificate's)
    'secure-element-keygen': ['HELLO', 'IDENTIFY', 'GENERATE_KEY', 'GET_CSR', 'SIGN_CHALLENGE', ...INSTALL, ...READBACK, 'GET_PUBLIC_KEY', 'LOCK'],
    'factory-injected-key': ['HELLO', 'IDENTIFY', 'GET_TRANSPORT_KEY', 'INSTALL_WRAPPED_KEY', ...INSTALL, ...VERIFY, 'LOCK'],
    'se-preprovisioned': ['HELLO', 'IDENTIFY', 'READ_SE_INFO', 'GET_PUBLIC_KEY', 'GET_CSR', 'SIGN_CHALLENGE', ...INSTALL, ...READBACK, 'GET_PUBLIC_KEY', 'LOCK'],
    'seed-derived': ['HELLO', 'IDENTIFY', 'DERIVE_SEED_KEY', ...INSTALL, ...VERIFY, 'LOCK'],
  };

  it('there is a whole device-run transcript for every method, recorded from that method\'s simulator', () => {
    for (const method of METHOD_IDS) {
      const s = SCENARIOS.find((x) => x.name === `device-run-${method}`);
      expect(s && scenarioMethod(s), method).toBe(method);
    }
  });

  for (const method of METHOD_IDS) {
    it(`device-run-${method} speaks the sequence of docs/device-protocol.md, one exchange at a time, nothing masked`, () => {
      const { transcript } = load(`device-run-${method}`);
      const station = transcript.lines.filter((l) => l.dir === '=>');
      expect(station.map(commandOf)).toEqual(RUN_SEQUENCES[method]);
      // strictly alternating: the station never has two frames in flight
      expect(transcript.lines.map((l) => l.dir).join('')).toBe('=><='.repeat(station.length));
      // every station frame is compared whole: what is random by nature is an @input or fixed
      expect(station.filter((l) => l.mask.length > 0)).toEqual([]);
    });
  }

  /**
   * The method's own requests, each with a byte that the station must write as recorded: the
   * command (requests without items), or the first byte of an item's value.
   */
  const METHOD_REQUESTS: Record<MethodId, Array<{ command: string; at: 'command' | number }>> = {
    'on-device-keygen': [
      { command: 'GENERATE_KEY', at: Tag.KEY_LOCATION },
      { command: 'GET_PUBLIC_KEY', at: 'command' },
    ],
    'secure-element-keygen': [{ command: 'GENERATE_KEY', at: Tag.KEY_LOCATION }],
    'factory-injected-key': [
      { command: 'GET_TRANSPORT_KEY', at: 'command' },
      { command: 'INSTALL_WRAPPED_KEY', at: Tag.PEER_PUBLIC_KEY },
      { command: 'INSTALL_WRAPPED_KEY', at: Tag.WRAPPED_KEY },
      { command: 'INSTALL_WRAPPED_KEY', at: Tag.SUBJECT_SERIAL },
    ],
    'se-preprovisioned': [
      { command: 'READ_SE_INFO', at: 'command' },
      { command: 'GET_PUBLIC_KEY', at: 'command' },
      { command: 'GET_CSR', at: Tag.SUBJECT_SERIAL },
    ],
    'seed-derived': [{ command: 'DERIVE_SEED_KEY', at: Tag.SUBJECT_SERIAL }],
  };

  for (const method of METHOD_IDS) {
    for (const { command, at } of METHOD_REQUESTS[method]) {
      const where = at === 'command' ? 'its command byte' : `${TAG_NAMES.get(at)}`;
      it(`device-run-${method}: a station that writes another ${command} (${where}) fails the replay at that line`, async () => {
        const name = `device-run-${method}`;
        const { transcript } = load(name);
        const index = transcript.lines.findIndex((l) => l.dir === '=>' && commandOf(l) === command);
        expect(index, `${command} in ${name}`).toBeGreaterThanOrEqual(0);
        const line = transcript.lines[index]!;
        const offset = at === 'command' ? 6 : tlvValueRange(line.bytes, at)!.start;
        const bytes = Buffer.from(line.bytes);
        bytes[offset] ^= 0x01; // the transcript now expects a request the station does not make
        const lines = transcript.lines.map((l, i) => (i === index ? { ...l, bytes } : l));
        const { transport, run } = await replay(scenario(name), { ...transcript, lines });
        await expect(run).rejects.toThrow(/scenario check failed/);
        expect(() => transport.assertComplete()).toThrow(new RegExp(`wrong frame at line ${line.lineNo} .*\\(offset ${offset}\\)`));
      });
    }
  }

  /** The device's answer that carries the key the method checks, and what the station says when it is another key. */
  const KEY_ANSWERS: Record<MethodId, { command: string; code: string }> = {
    'on-device-keygen': { command: 'GET_PUBLIC_KEY', code: 'REPORT_MISMATCH_JOURNAL' },
    'secure-element-keygen': { command: 'GENERATE_KEY', code: 'CSR_KEY_MISMATCH' },
    'factory-injected-key': { command: 'INSTALL_WRAPPED_KEY', code: 'INJECTED_KEY_MISMATCH' },
    'se-preprovisioned': { command: 'GET_PUBLIC_KEY', code: 'SE_KEY_MISMATCH' },
    'seed-derived': { command: 'DERIVE_SEED_KEY', code: 'SEED_KEY_MISMATCH' },
  };

  for (const method of METHOD_IDS) {
    const { command, code } = KEY_ANSWERS[method];
    it(`device-run-${method}: a device whose ${command} answers another key fails with ${code}`, async () => {
      const name = `device-run-${method}`;
      const { transcript } = load(name);
      const index = transcript.lines.findIndex((l) => l.dir === '<=' && commandOf(l) === command);
      expect(index, `${command} reply in ${name}`).toBeGreaterThan(0);
      const lines = transcript.lines.map((l, i) => (i === index ? { ...l, bytes: withAnotherPublicKey(l.bytes) } : l));
      const { transport, run } = await replay(scenario(name), { ...transcript, lines });
      await expect(run).rejects.toThrow(new RegExp(`scenario check failed: the device passed \\(${code}:`));
      expect(transport.failures).toEqual([]); // the station wrote what it should up to there, then stopped
      expect(transport.remaining).toBeGreaterThan(0);
    });
  }
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
