/**
 * The conversations behind fixtures/transcripts/*.txt. Each scenario drives a DeviceClient; the
 * recorder (test/helpers/record-transcripts.ts) runs it against the simulator through a
 * RecordingTransport, the replay test (test/unit/device/transcripts.test.ts) runs the very same
 * code against a ScriptedTransport. Whatever the station sends that depends on something the
 * recorder had to make up (a certificate for the device's key) is an `@input` of the transcript.
 * Each scenario checks its own outcomes and throws when one differs.
 *
 * The link scenarios below exercise one command each against a secure-element-keygen device;
 * the whole device runs, one per method, are in transcript-device-runs.ts.
 */
import { randomBytes } from 'node:crypto';
import { CHALLENGE_CONTEXT } from '../../src/device/protocol/challenge';
import { Command, Item, KeyLocation, Tag, type ItemId } from '../../src/device/protocol/commands';
import { DEVICE_RUN_SCENARIOS } from './transcript-device-runs';
import { TRANSCRIPT_SERIAL, TRANSCRIPT_TIMEOUTS, check, crcRange, idevidChain, refused, tlvValueRange, type Scenario, type ScenarioContext } from './transcript-scenario-kit';

export {
  TRANSCRIPT_NONCE,
  TRANSCRIPT_SERIAL,
  TRANSCRIPT_TIMEOUTS,
  scenarioMethod,
  tlvValueRange,
  type Scenario,
  type ScenarioContext,
  type ScenarioInputs,
  type SimulatorSide,
} from './transcript-scenario-kit';

async function helloAndKey(ctx: ScenarioContext): Promise<Buffer> {
  check((await ctx.client.hello()) === 1, 'HELLO chose version 1');
  return ctx.client.generateKey(KeyLocation.SECURE_ELEMENT);
}

const DPP_URI = 'DPP:C:81/1,81/6,81/11;M:020000000042;I:DEMO-000042;V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=;;';

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'hello',
    title: 'HELLO: version 1 and each side\'s frame limit; seq wraps from 0xffff to 0x0000',
    firstSeq: 0xffff,
    async run(ctx) {
      check((await ctx.client.hello()) === 1, 'version 1');
      check(ctx.connection.maxPayloadBytes === 1024, 'the device\'s 1024-byte frame limit is used');
      check((await ctx.client.hello()) === 1, 'a second HELLO (the next device) works too');
    },
  },
  {
    name: 'identify',
    title: 'IDENTIFY: model, hardware id, MAC, capabilities, SE serial',
    firstSeq: 0x1000,
    async run(ctx) {
      await ctx.client.hello();
      const id = await ctx.client.identify();
      check(id.model === 'DemoSensor-1' && !id.locked, 'an unlocked DemoSensor-1');
      check(id.capabilities.secureElement && id.capabilities.seKeygen, 'SE keygen capability');
      check(id.methods.includes('secure-element-keygen'), 'method 2');
      check(id.macs.length === 1 && id.macs[0]!.length === 12, 'one MAC');
      check(id.secureElement !== null && id.maxPayloadBytes === 1024, 'SE and frame limit');
    },
  },
  {
    name: 'generate-key',
    title: 'GENERATE_KEY in the secure element; a second one is refused (BAD_STATE)',
    firstSeq: 0x1000,
    async run(ctx) {
      const spki = await helloAndKey(ctx);
      check(spki.length === 91, 'a P-256 SPKI');
      await refused(ctx.client.generateKey(KeyLocation.SECURE_ELEMENT), 'DEVICE_BAD_STATE');
    },
  },
  {
    name: 'get-public-key',
    title: 'GET_PUBLIC_KEY returns the key GENERATE_KEY made',
    firstSeq: 0x1000,
    async run(ctx) {
      const spki = await helloAndKey(ctx);
      check((await ctx.client.getPublicKey()).equals(spki), 'the same key');
    },
  },
  {
    name: 'get-csr',
    title: 'GET_CSR for a serial: a PKCS#10 request signed in the SE',
    firstSeq: 0x1000,
    async run(ctx) {
      await helloAndKey(ctx);
      const csr = await ctx.client.getCsr({ serial: TRANSCRIPT_SERIAL, commonName: 'DemoSensor-1' });
      check(csr[0] === 0x30 && csr.length > 200, 'a DER CSR');
    },
  },
  {
    name: 'install-chain',
    title: 'INSTALL_CHAIN with leaf, issuing CA and root: two fragments of at most 1024 bytes, each acknowledged',
    firstSeq: 0x1000,
    async run(ctx) {
      const spki = await helloAndKey(ctx);
      const chain = await idevidChain(ctx.inputs, spki, TRANSCRIPT_SERIAL);
      const before = ctx.connection.stats.framesSent;
      await ctx.client.installChain(chain);
      check(ctx.connection.stats.framesSent - before === 2, 'the chain went in two fragments');
    },
  },
  {
    name: 'write-item',
    title: 'WRITE_ITEM: the DPP URI; the IDevID chain cannot be written this way (UNSUPPORTED)',
    firstSeq: 0x1000,
    async run(ctx) {
      await ctx.client.hello();
      await ctx.client.installDppUri(DPP_URI);
      await refused(ctx.client.writeItem(Item.IDEVID_CHAIN as ItemId, Buffer.from([0x30, 0x00])), 'DEVICE_UNSUPPORTED');
    },
  },
  {
    name: 'read-item',
    title: 'READ_ITEM: the IDevID chain (repeated CERTIFICATE items) and the DPP URI read back',
    firstSeq: 0x1000,
    async run(ctx) {
      const spki = await helloAndKey(ctx);
      const chain = await idevidChain(ctx.inputs, spki, TRANSCRIPT_SERIAL);
      check((await ctx.client.readItem(Item.IDEVID_CHAIN)).length === 0, 'no chain yet');
      await ctx.client.installChain(chain);
      await ctx.client.installDppUri(DPP_URI);
      const back = await ctx.client.readItem(Item.IDEVID_CHAIN);
      check(back.length === 3 && back.every((c, i) => c.equals(chain[i]!)), 'the chain as installed');
      const [uri] = await ctx.client.readItem(Item.DPP_URI);
      check(uri?.toString('utf8') === DPP_URI, 'the DPP URI as written');
    },
  },
  {
    name: 'sign-challenge',
    title: 'SIGN_CHALLENGE with a fresh random nonce (masked: random by nature)',
    firstSeq: 0x1000,
    mask: (frame, bytes) => {
      if (frame.command !== Command.SIGN_CHALLENGE || frame.flags !== 0) return undefined;
      const nonce = tlvValueRange(bytes, Tag.NONCE);
      return nonce ? { ranges: [nonce, crcRange(bytes)], reason: 'NONCE: 32 fresh random bytes per challenge (and so the CRC)' } : undefined;
    },
    async run(ctx) {
      await helloAndKey(ctx);
      await ctx.client.getCsr(TRANSCRIPT_SERIAL);
      const signature = await ctx.client.signChallenge(randomBytes(32), TRANSCRIPT_SERIAL, CHALLENGE_CONTEXT);
      check(signature[0] === 0x30, 'a DER ECDSA signature');
      await refused(ctx.client.signChallenge(randomBytes(32), 'DEMO-999999', CHALLENGE_CONTEXT), 'DEVICE_VERIFY_FAILED');
    },
  },
  {
    name: 'lock',
    title: 'LOCK after the credential is installed; then LOCK, GENERATE_KEY and WRITE_ITEM are refused (LOCKED)',
    firstSeq: 0x1000,
    async run(ctx) {
      const spki = await helloAndKey(ctx);
      await refused(ctx.client.lock(), 'DEVICE_BAD_STATE');
      await ctx.client.installChain(await idevidChain(ctx.inputs, spki, TRANSCRIPT_SERIAL));
      await ctx.client.lock();
      check((await ctx.client.identify()).locked, 'IDENTIFY says locked');
      await refused(ctx.client.lock(), 'DEVICE_LOCKED');
      await refused(ctx.client.generateKey(KeyLocation.SECURE_ELEMENT), 'DEVICE_LOCKED');
      await refused(ctx.client.installDppUri(DPP_URI), 'DEVICE_LOCKED');
    },
  },
  {
    name: 'rework',
    title: 'REWORK: a wrong authorisation is refused (VERIFY_FAILED); the right one clears the key',
    firstSeq: 0x1000,
    async run(ctx) {
      await ctx.client.hello();
      const id = await ctx.client.identify();
      await ctx.client.generateKey(KeyLocation.SECURE_ELEMENT);
      await refused(ctx.client.rework(Buffer.alloc(8)), 'DEVICE_VERIFY_FAILED');
      await ctx.client.rework(Buffer.from(id.hardwareId, 'hex'));
      await refused(ctx.client.getPublicKey(), 'DEVICE_BAD_STATE');
      check((await ctx.client.identify()).hardwareId === id.hardwareId, 'the same device after rework');
    },
  },
  {
    name: 'errors',
    title: 'Error replies: BAD_STATE, UNSUPPORTED, BAD_REQUEST, UNKNOWN_COMMAND, each with ERROR_DETAIL',
    firstSeq: 0x1000,
    async run(ctx) {
      await ctx.client.hello();
      await refused(ctx.client.getCsr(TRANSCRIPT_SERIAL), 'DEVICE_BAD_STATE'); // no key yet
      await refused(ctx.client.readItem(Item.DPP_URI), 'DEVICE_BAD_STATE'); // nothing written
      await refused(ctx.client.generateKey(KeyLocation.DEVICE), 'DEVICE_UNSUPPORTED'); // SE devices only
      await ctx.client.generateKey(KeyLocation.SECURE_ELEMENT);
      await refused(ctx.client.getCsr('bad;serial'), 'DEVICE_BAD_REQUEST'); // not a PrintableString
      await refused(ctx.client.signChallenge(Buffer.alloc(31), TRANSCRIPT_SERIAL, CHALLENGE_CONTEXT), 'DEVICE_VERIFY_FAILED'); // no CSR yet
      await refused(ctx.connection.request(0x7e, Buffer.alloc(0), TRANSCRIPT_TIMEOUTS.commandTimeoutMs), 'DEVICE_UNKNOWN_COMMAND');
      await refused(ctx.connection.request(Command.READ_ITEM, Buffer.from([0x31, 0x00]), TRANSCRIPT_TIMEOUTS.commandTimeoutMs), 'DEVICE_BAD_REQUEST'); // truncated TLV
    },
  },  ...DEVICE_RUN_SCENARIOS,
];
