/**
 * What every transcript scenario shares (test/helpers/transcript-scenarios.ts lists them): the
 * scenario's shape, the values it records as `@input`s, what only the recorder can see of the
 * simulator, and the IDevID chain a scenario installs. The recorder
 * (test/helpers/record-transcripts.ts) and the replay test (test/unit/device/transcripts.test.ts)
 * run the very same scenario code.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { createSoftwarePki } from '../../src/bench/software-pki';
import { defaultStationConfig } from '../../src/core/config';
import type { MethodId } from '../../src/core/method-id';
import type { DeviceClient } from '../../src/device/device-client';
import type { DeviceConnection } from '../../src/device/device-connection';
import { FRAME_CRC_BYTES, FRAME_HEADER_BYTES, type Frame } from '../../src/device/framing/frame-codec';
import { decodeTlv } from '../../src/device/framing/tlv';
import type { IssuedIdevid } from '../../src/hsm/ca/idevid-issuer';
import type { VendorChip } from '../../src/simulator/vendor/seed-file-writer';
import type { MaskRange } from './transcript';

/** Values a scenario needs to repeat the station's requests exactly. */
export interface ScenarioInputs {
  /**
   * Recording: make the value and keep it. Replay: the value recorded under `name`. Either way
   * the caller gets its own copy (it may zeroise it).
   */
  bytes(name: string, make: () => Buffer | Promise<Buffer>): Promise<Buffer>;
}

/**
 * What only the recorder has: the simulator's side of the line, for values the station gets from
 * somewhere other than the link (a vendor's file). Absent on replay, so a scenario reads it only
 * inside an input's `make` (through `simulatorSide`).
 */
export interface SimulatorSide {
  /** The method the line's firmware is built for. */
  method: MethodId;
  /** Method 5: the chips the vendor kit made for this line, in the order its devices take them, each with the seed burned into it (never written to a transcript). */
  chips: readonly VendorChip[];
  /** Method 4: the SE vendor kit's signed manifest and the certificates it publishes (PEM files). */
  seVendorKit?: { manifest: string; signerCertificate: string; vendorCaCertificate: string };
}

export interface ScenarioContext {
  client: DeviceClient;
  connection: DeviceConnection;
  inputs: ScenarioInputs;
  /** A fresh folder (the device-run scenarios keep their database and labels there). */
  tmpDir: string;
  /** Recording only. */
  simulator?: SimulatorSide;
}

export interface Scenario {
  /** File name under fixtures/transcripts, without .txt. */
  name: string;
  title: string;
  firstSeq: number;
  /** The method the simulator's firmware must be built for (default secure-element-keygen). */
  method?: MethodId;
  /** Lines for the transcript's header: how the station side is made repeatable, and why that is enough. */
  about?: readonly string[];
  /** Station frames with bytes that are random by nature: which, and why. */
  mask?: (frame: Frame, bytes: Buffer) => { ranges: MaskRange[]; reason: string } | undefined;
  run(ctx: ScenarioContext): Promise<void>;
}

export const TRANSCRIPT_TIMEOUTS = { commandTimeoutMs: 3000, keygenTimeoutMs: 15000 };
export const TRANSCRIPT_SERIAL = 'DEMO-000042';
/** The challenge nonce of the device-run scenarios (provisionDevice's `challengeNonce`). */
export const TRANSCRIPT_NONCE = createHash('sha256').update('transcript challenge nonce').digest();

export function scenarioMethod(s: Scenario): MethodId {
  return s.method ?? 'secure-element-keygen';
}

export function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(`scenario check failed: ${message}`);
}

/** The call must fail with a DeviceError of this code. */
export async function refused(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    const got = (err as { code?: string }).code;
    check(got === code, `expected ${code}, got ${got ?? String(err)}`);
    return;
  }
  check(false, `expected ${code}, but the call succeeded`);
}

/** The simulator's side; throws on replay, where a value that needs it must come from an `@input`. */
export function simulatorSide(ctx: ScenarioContext): SimulatorSide {
  if (!ctx.simulator) throw new Error('only the recorder can make this value: on replay it must be an @input of the transcript');
  return ctx.simulator;
}

/** Byte range of the value of the first `tag` item in a frame's TLV payload. */
export function tlvValueRange(bytes: Buffer, tag: number): MaskRange | undefined {
  const payload = bytes.subarray(FRAME_HEADER_BYTES, bytes.length - FRAME_CRC_BYTES);
  let off = 0;
  for (const item of decodeTlv(payload)) {
    if (item.tag === tag) return { start: FRAME_HEADER_BYTES + off + 3, end: FRAME_HEADER_BYTES + off + 3 + item.value.length };
    off += 3 + item.value.length;
  }
  return undefined;
}

export const crcRange = (bytes: Buffer): MaskRange => ({ start: bytes.length - FRAME_CRC_BYTES, end: bytes.length });

export function spkiOfCertificate(der: Buffer): Buffer {
  return Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate).tbsCertificate.subjectPublicKeyInfo));
}

/**
 * An IDevID chain for `spki` from a throw-away software PKI (recording), or the recorded one:
 * leaf, issuing CA, root (`@input idevid`, `issuing-ca`, `root-ca`).
 */
export async function idevidChain(inputs: ScenarioInputs, spki: Buffer, serial: string): Promise<Buffer[]> {
  let issued: IssuedIdevid | undefined;
  const make = async (): Promise<IssuedIdevid> => {
    if (!issued) {
      const product = defaultStationConfig().products['demo-sensor']!;
      const pki = await createSoftwarePki(product.idevid.organization);
      issued = await pki.issuer.issue({ spki, serial, model: product.model, workOrderId: 'WO-TRANSCRIPT', profile: product.idevid });
    }
    return issued;
  };
  const leaf = await inputs.bytes('idevid', async () => (await make()).certificateDer);
  const issuing = await inputs.bytes('issuing-ca', async () => (await make()).chain[0]!);
  const root = await inputs.bytes('root-ca', async () => (await make()).chain[1]!);
  check(spkiOfCertificate(leaf).equals(spki), 'the recorded IDevID is for another key than the one the device reported');
  return [leaf, issuing, root];
}
