/**
 * One device through the run model: connect -> identify -> assign -> obtain-key -> issue ->
 * install -> verify (read back + challenge) -> record -> lock -> label -> queue-sync.
 * A failure keeps whatever record exists (with the certificate voided) and says which stage,
 * which code and what the operator can do.
 */
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { firmwareOutOfRange, type ProductProfile, type WorkOrder } from '../../core/config';
import { DppUri } from '../../core/dpp-uri';
import { p256PointFromSpki, p256SpkiFromPoint } from '../../core/ec-public-key';
import { CaError, DeviceError, asStationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { DeviceClient, DeviceIdentity } from '../../device/device-client';
import { CHALLENGE_CONTEXT, challengeMessage } from '../../device/protocol/challenge';
import { Item, type ItemId } from '../../device/protocol/commands';
import { certificateSpkiDer } from '../../hsm/ca/der';
import { checkCsrWith } from '../../hsm/ca/csr-check';
import { InProcessSignatureChecker, type SignatureChecker } from '../../hsm/ca/signature-checker';
import { lintIdevid } from '../../hsm/ca/profile-lint';
import type { IdevidIssuer } from '../../hsm/ca/idevid-issuer';
import { toPem } from '../../hsm/ca/x509-builder';
import type { SqliteRecordStore } from '../../manufacturer-db/sqlite-record-store';
import type { DeviceRecorder } from '../../manufacturer-db/records/device-recorder';
import type { DeviceReportRecord, KeyMaterial, KeyMethod, MethodFacts } from '../../methods/key-method';
import type { LabelService } from '../labels/label-service';
import { LabelQueue } from '../labels/label-queue';
import { InProcessLabelRendering } from '../labels/label-rendering';
import { deviceLabelJob } from '../labels/device-label-job';
import { macBlockRequest, verifyBlockMacs, writeBlockMacs } from './block-macs';
import { blankDeviceReport, type DeviceReport } from './report';
import { StageRecorder, type StageEvent } from './stages';

export interface DeviceRunContext {
  runId: string;
  workOrder: WorkOrder;
  product: ProductProfile;
  method: KeyMethod;
  store: SqliteRecordStore;
  issuer: Pick<IdevidIssuer, 'issue'>;
  /** Where CSR signatures are checked (the CA's signature-check worker); default in process. */
  signatureChecker?: SignatureChecker;
  labels: LabelService;
  /**
   * The run's label queue (labels/label-queue.ts): the label is queued after `lock` and prints
   * while the port takes its next device; the report's label is filled in when it ends (the
   * batch runner drains the queue before the report is written). Absent: the label is printed
   * in-process before provisionDevice returns.
   */
  labelQueue?: LabelQueue;
  /** The report's folder; every path in the report is relative to it. */
  outDir: string;
  /** PEM chain file (issuing CA, then root) inside outDir. */
  chainPath: string;
  log: Logger;
  signal: AbortSignal;
  /** The challenge nonce (32 bytes); default crypto.randomBytes. Transcript tests fix it. */
  challengeNonce?: () => Buffer;
  /**
   * The product's extra install items (MASA trust anchor, MUD URL, app bootstrap info), already
   * read from config; each is written in the install stage and read back in verify.
   */
  installItems?: readonly InstallItem[];
  /** Each stage as it starts and ends, per port (the GUI's tiles, the bridge's event stream). */
  onStage?: (event: StageEvent & { port: string; serial: string | null }) => void;
  /**
   * Records + sync (docs/records-and-sync.md): signs each record and queues it for the sync
   * targets in the record stage's transaction, and queues the void of a failed device's
   * certificate. Absent: the store records unsigned, nothing is queued (tests of other stages).
   */
  recorder?: DeviceRecorder;
  /** Called in the queue-sync stage: the relay delivers what was queued now. */
  onQueued?: () => void;
}

export interface InstallItem {
  item: ItemId;
  /** For messages: "MASA trust anchor", "MUD URL", ... */
  name: string;
  value: Buffer;
}

/** The report's method-specific fields (contracts.md §3) from what the method learnt; SE certificates go to files. */
function applyFacts(report: DeviceReport, facts: MethodFacts, serial: string, outDir: string): void {
  if (facts.seSerial) report.seSerial = facts.seSerial;
  if (facts.manifestEntryId) report.manifestEntryId = facts.manifestEntryId;
  if (facts.chipId) report.chipId = facts.chipId;
  if (facts.preparedKeyId) report.preparedKeyId = facts.preparedKeyId;
  const certsDir = join(outDir, 'certs');
  if (facts.seCertificateDer) {
    mkdirSync(certsDir, { recursive: true });
    const path = join(certsDir, `${serial}.se.pem`);
    writeFileSync(path, toPem(facts.seCertificateDer));
    report.seCertificatePath = relative(outDir, path);
  }
  if (facts.seChainDer && facts.seChainDer.length > 0) {
    mkdirSync(certsDir, { recursive: true });
    const path = join(certsDir, `${serial}.se-chain.pem`);
    writeFileSync(path, facts.seChainDer.map((c) => toPem(c)).join(''));
    report.seChainPath = relative(outDir, path);
  }
}

/**
 * The issue stage for a certificate another CA issued (KeyMaterial `vendor-certified`): nothing
 * is signed; the certificate is recorded as the device's before it is installed. Our IDevID
 * profile is not a gate for it (its subject and hardwareModuleName are the vendor's): what the
 * lint finds is logged as information.
 */
function recordVendorCertificate(material: Extract<KeyMaterial, { kind: 'vendor-certified' }>, serial: string, model: string, ctx: DeviceRunContext, log: Logger): void {
  const findings = lintIdevid(material.certificateDer, ctx.product.idevid, { model });
  if (findings.length > 0) {
    log.info({ issuer: material.issuer, lint: findings.map((f) => `${f.code}: ${f.message}`) }, 'the vendor certificate kept as the IDevID differs from our IDevID profile (information, not a failure)');
  }
  const certificateSerialHex = Buffer.from(AsnConvert.parse(material.certificateDer, Certificate).tbsCertificate.serialNumber).toString('hex');
  ctx.store.recordExternalCertificate({
    deviceSerial: serial,
    workOrderId: ctx.workOrder.id,
    certificateDer: material.certificateDer,
    certificateSerialHex,
    publicKeySpki: material.spki,
    issuer: material.issuer,
  });
}

const inProcessChecks = new InProcessSignatureChecker();

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A promise that never rejects (its outcome is looked at later, or never). */
function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/**
 * The proof-of-possession challenge (SIGN_CHALLENGE over a fresh nonce and the serial), sent now
 * and looked at later: the device's reply, or its failure, is kept until verify asks for it.
 */
class EarlyChallenge {
  private constructor(
    readonly nonce: Buffer,
    private readonly outcome: Promise<Settled<Buffer>>,
  ) {}

  static send(client: DeviceClient, serial: string, makeNonce: (() => Buffer) | undefined): EarlyChallenge {
    const nonce = makeNonce ? makeNonce() : randomBytes(32);
    return new EarlyChallenge(nonce, settle(client.signChallenge(nonce, serial, CHALLENGE_CONTEXT)));
  }

  /** Resolves once the device answered or failed. */
  get settled(): Promise<unknown> {
    return this.outcome;
  }

  /** The nonce and the device's signature, or the device's failure. */
  async result(): Promise<{ nonce: Buffer; signature: Buffer }> {
    const o = await this.outcome;
    if (!o.ok) throw o.error;
    return { nonce: this.nonce, signature: o.value };
  }
}

/** After install: the device's key (GET_PUBLIC_KEY) is the key of its certificate. */
async function checkKeyUnchanged(client: DeviceClient, certSpki: Buffer): Promise<void> {
  const reported = await client.getPublicKey();
  let point: Buffer;
  try {
    point = p256PointFromSpki(reported);
  } catch (err) {
    throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${client.port} reported an unusable public key: ${(err as Error).message}.`);
  }
  if (!point.equals(p256PointFromSpki(certSpki))) {
    throw new DeviceError(
      'DEVICE_KEY_CHANGED',
      `The device on ${client.port} reports a key other than its certificate's after installation: its firmware replaced or lost its birth key. Do not ship it.`,
    );
  }
}

function spkiOfCertificate(der: Buffer): Buffer {
  try {
    return certificateSpkiDer(der);
  } catch {
    // not strict DER (a vendor's certificate, method 4): the general parser re-encodes it
    return Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate).tbsCertificate.subjectPublicKeyInfo));
  }
}

export async function provisionDevice(client: DeviceClient, ctx: DeviceRunContext): Promise<DeviceReport> {
  let serial: string | undefined;
  const stages = new StageRecorder(ctx.signal, ctx.onStage ? (e) => ctx.onStage!({ ...e, port: client.port, serial: serial ?? null }) : undefined);
  const report: DeviceReport = { ...blankDeviceReport(client.port, ctx.method.id), label: { state: 'pending', reason: 'device not passed' }, stages: stages.stages };
  let log = ctx.log.child({ port: client.port });
  let passed = false;
  let facts: MethodFacts = {};
  let keyObtained = false;
  // MACs from the station's block (product macSource "block"), or undefined: the device's own.
  const macBlock = macBlockRequest(ctx.product, ctx.workOrder);
  // The proof-of-possession challenge, when it went out early (see obtain-key).
  let proof: EarlyChallenge | undefined;
  // Set once the device failed (work started ahead for it is dropped).
  let failing = false;
  try {
    await stages.run('connect', () => client.hello());
    const identity: DeviceIdentity = await stages.run('identify', async () => {
      const id = await client.identify();
      if (id.locked) {
        throw new DeviceError('DEVICE_ALREADY_LOCKED', `The device on ${client.port} (hardware id ${id.hardwareId}) is already locked: it was provisioned before. Set it aside for rework.`);
      }
      if (id.model !== ctx.product.model) {
        throw new DeviceError('DEVICE_WRONG_MODEL', `The device on ${client.port} is a ${id.model}, but work order ${ctx.workOrder.id} builds ${ctx.product.model}.`);
      }
      const firmware = firmwareOutOfRange(id.firmwareVersion, ctx.product.firmware);
      if (firmware) {
        throw new DeviceError('DEVICE_FIRMWARE_UNSUPPORTED', `The device on ${client.port} cannot be provisioned: ${firmware}. Flash a released firmware and retry.`);
      }
      const support = ctx.method.supports(id);
      if (!support.ok) throw new DeviceError('METHOD_UNSUPPORTED_BY_DEVICE', `The device on ${client.port} cannot use method ${ctx.method.id}: ${support.reason}.`);
      if (id.macs.length === 0 && ctx.product.dpp.includeMac && !macBlock) throw new DeviceError('DEVICE_NO_MAC', `The device on ${client.port} reports no MAC address, and the product's DPP URI needs one.`);
      return id;
    });
    report.hardwareId = identity.hardwareId;
    // A block product's device MACs are the ones the station gives it, not the ones it reports.
    const assignIdentity: DeviceIdentity = macBlock ? { ...identity, macs: [] } : identity;
    let macs = identity.macs;
    report.macs = assignIdentity.macs;

    serial = await stages.run('assign', async () => {
      // committed with the other ports' writes of this turn; the serial is durable once it is known
      const allocate = () =>
        ctx.store.committer.run('assigning a serial', () =>
          ctx.store.allocateDevice({
          runId: ctx.runId,
          workOrder: ctx.workOrder,
          port: client.port,
          hardwareId: identity.hardwareId,
          model: identity.model,
          firmwareVersion: identity.firmwareVersion,
          macs: assignIdentity.macs,
          method: ctx.method.id,
          ...(macBlock ? { macBlock } : {}),
          }),
        );
      const assigned = ctx.method.assignSerial
        ? await ctx.method.assignSerial({ client, identity: assignIdentity, runId: ctx.runId, workOrderId: ctx.workOrder.id, port: client.port, signal: ctx.signal, allocate })
        : await allocate();
      if (macBlock) {
        // from here a failure fails the device under its serial; its MACs stay burned
        serial = assigned;
        report.serial = assigned;
        // allocated with the serial, or (a serial a method claimed) now, in one transaction
        macs = ctx.store.blocks.ensureDeviceMacs(assigned, macBlock.product, macBlock.count);
        report.macs = macs;
        // written now, so a device that refuses them fails before a key is made or a certificate issued
        await writeBlockMacs(client, macs, macBlock.product);
      }
      return assigned;
    });
    report.serial = serial;
    log = log.child({ serial });
    const assignedSerial = serial;

    const material = await stages.run('obtain-key', async () => {
      const m = await ctx.method.obtainKeyMaterial({ client, identity, serial: assignedSerial, workOrderId: ctx.workOrder.id, signal: ctx.signal });
      keyObtained = true;
      facts = m.facts ?? {};
      // A device that holds its key now (it made it, or its SE came with it) gets the challenge at
      // once: it signs while the station checks its request and the HSM issues its certificate.
      // The signature is checked in verify, against the certificate's key, as before.
      if (m.kind === 'csr' || m.kind === 'vendor-certified') proof = EarlyChallenge.send(client, assignedSerial, ctx.challengeNonce);
      if (m.kind === 'csr') {
        const checked = await checkCsrWith(ctx.signatureChecker ?? inProcessChecks, m.csrDer, { serial: assignedSerial, profile: ctx.product.idevid, certifiedKeys: ctx.store });
        let reported: Buffer;
        try {
          reported = p256SpkiFromPoint(p256PointFromSpki(m.reportedSpki));
        } catch (err) {
          throw new DeviceError('DEVICE_BAD_RESPONSE', `The device on ${client.port} reported an unusable public key: ${(err as Error).message}.`);
        }
        if (!reported.equals(checked.spki)) {
          throw new CaError('CSR_KEY_MISMATCH', `The device on ${client.port} sent a certificate request for a key other than the one it reported generating.`);
        }
        return { ...m, spki: checked.spki };
      }
      if (m.kind === 'vendor-certified' && m.csrDer) {
        // the SE's request only proves possession (and told the device its serial); nothing is issued from it
        const checked = await checkCsrWith(ctx.signatureChecker ?? inProcessChecks, m.csrDer, { serial: assignedSerial, profile: ctx.product.idevid, certifiedKeys: ctx.store });
        if (!checked.spki.equals(m.spki)) {
          throw new CaError('CSR_KEY_MISMATCH', `The device on ${client.port} signed a request for a key other than the one its vendor certified.`);
        }
      }
      if (m.kind === 'station-key' || m.kind === 'vendor-certified') {
        // No request to check: the station knows the key itself (or the vendor certified it). A key certified before is still refused.
        const holder = ctx.store.findDeviceByPublicKey(createHash('sha256').update(m.spki).digest('hex'));
        if (holder !== undefined && holder !== assignedSerial) {
          throw new CaError('KEY_ALREADY_CERTIFIED', `The key made for ${assignedSerial} is already certified for device ${holder}. Stop the line and call the supervisor: key material was reused.`);
        }
      }
      return m;
    });
    applyFacts(report, facts, assignedSerial, ctx.outDir);
    const spki = material.spki;

    const issued = await stages.run('issue', (): Promise<{ certificateDer: Buffer; chain: readonly Buffer[] }> | { certificateDer: Buffer; chain: readonly Buffer[] } => {
      if (material.kind === 'pre-issued') return { certificateDer: material.certificateDer, chain: material.chain };
      if (material.kind === 'vendor-certified') {
        recordVendorCertificate(material, assignedSerial, identity.model, ctx, log);
        return { certificateDer: material.certificateDer, chain: material.chain };
      }
      return ctx.issuer.issue({ spki, serial: assignedSerial, model: identity.model, workOrderId: ctx.workOrder.id, profile: ctx.product.idevid });
    });
    const certsDir = join(ctx.outDir, 'certs');
    mkdirSync(certsDir, { recursive: true });
    const certPath = join(certsDir, `${assignedSerial}.pem`);
    writeFileSync(certPath, toPem(issued.certificateDer));
    report.certificatePath = relative(ctx.outDir, certPath);
    if (material.kind === 'vendor-certified') {
      // the device's chain is the vendor's, not our CA's
      const vendorChainPath = join(certsDir, `${assignedSerial}.idevid-chain.pem`);
      writeFileSync(vendorChainPath, issued.chain.map((c) => toPem(c)).join(''));
      report.chainPath = relative(ctx.outDir, vendorChainPath);
    } else {
      report.chainPath = relative(ctx.outDir, ctx.chainPath);
    }

    // The DPP URI carries the key from the issued certificate, never the one the device reported.
    const certSpki = spkiOfCertificate(issued.certificateDer);
    const dpp = DppUri.build({
      channels: ctx.product.dpp.channels,
      mac: ctx.product.dpp.includeMac ? macs[0] : undefined,
      info: ctx.product.dpp.includeSerialAsInfo ? assignedSerial : undefined,
      version: ctx.product.dpp.version,
      publicKeySpki: certSpki,
    }).toString();
    report.dppUri = dpp;

    await stages.run('install', async () => {
      await ctx.method.beforeInstall?.({ client, identity, serial: assignedSerial, workOrderId: ctx.workOrder.id, certificateDer: issued.certificateDer, spki: certSpki, facts, signal: ctx.signal });
      await client.installChain([issued.certificateDer, ...issued.chain]);
      await client.installDppUri(dpp);
      for (const extra of ctx.installItems ?? []) await client.writeItem(extra.item, extra.value);
    });

    // Method 1 records from the device's report, cross-checked with the issuance journal;
    // the other methods record from the CA path (the issued certificate) directly.
    let fromReport: DeviceReportRecord | undefined;
    const recordFacts = { seSerial: facts.seSerial, chipId: facts.chipId, preparedKeyId: facts.preparedKeyId, manifestEntryId: facts.manifestEntryId };
    // The record is built and signed while the device answers verify's requests (the HSM's turn
    // overlaps the device's); it is committed in the record stage only if verify passed, and a
    // device that fails drops it unstored (DeviceRecorder.prepareVerified). It starts on the next
    // turn, once verify's first request is out: building it reads the database and checks it.
    const recorder = ctx.recorder;
    const preparedRecord = recorder
      ? settle(
          new Promise<void>((next) => setImmediate(next)).then(() => {
            // a device that failed meanwhile gets no record: no HSM work for it
            if (failing) throw new Error('the device failed before its record was prepared');
            return recorder.prepareVerified({ serial: assignedSerial, keyOrigin: ctx.method.keyOrigin, publicKeySpki: certSpki, dppUri: dpp, facts: recordFacts });
          }),
        )
      : undefined;
    await stages.run('verify', async () => {
      const chain = await client.readItem(Item.IDEVID_CHAIN);
      let reportedUri: Buffer | undefined;
      if (ctx.method.crossCheck) {
        [reportedUri] = await client.readItem(Item.DPP_URI);
        const journal = ctx.store.getDevice(assignedSerial);
        fromReport = await ctx.method.crossCheck({
          client,
          serial: assignedSerial,
          reportedChain: chain,
          reportedDppUri: reportedUri ? reportedUri.toString('utf8') : '',
          journalCertificate: journal?.certificateStatus === 'active' ? journal.certificateDer : null,
          signal: ctx.signal,
        });
      }
      const expected = [issued.certificateDer, ...issued.chain];
      if (chain.length !== expected.length || chain.some((c, i) => !c.equals(expected[i]!))) {
        throw new DeviceError('READBACK_MISMATCH', `The certificate chain read back from the device on ${client.port} differs from what was installed.`);
      }
      const [uri] = reportedUri ? [reportedUri] : await client.readItem(Item.DPP_URI);
      if (!uri || uri.toString('utf8') !== dpp) {
        throw new DeviceError('READBACK_MISMATCH', `The DPP URI read back from the device on ${client.port} differs from what was installed.`);
      }
      if (macBlock) await verifyBlockMacs(client, macs);
      for (const extra of ctx.installItems ?? []) {
        const [back] = await client.readItem(extra.item);
        if (!back || !back.equals(extra.value)) {
          throw new DeviceError('READBACK_MISMATCH', `The ${extra.name} read back from the device on ${client.port} differs from what was installed.`);
        }
      }
      // The early challenge proved possession before install: the key the device holds now must
      // still be its certificate's (method 1's cross-check asks the same).
      if (proof && !ctx.method.crossCheck) await checkKeyUnchanged(client, certSpki);
      const { nonce, signature } = proof ? await proof.result() : await EarlyChallenge.send(client, assignedSerial, ctx.challengeNonce).result();
      const key = createPublicKey({ key: certSpki, format: 'der', type: 'spki' });
      let ok = false;
      try {
        ok = verify('sha256', challengeMessage(nonce, assignedSerial), { key, dsaEncoding: 'der' }, signature);
      } catch {
        ok = false;
      }
      if (!ok) {
        throw new CaError('CHALLENGE_FAILED', `The device on ${client.port} could not prove it holds the key in its certificate: its challenge signature does not verify. Do not ship it.`);
      }
    });

    await stages.run('record', async () => {
      const recordInput = {
        serial: assignedSerial,
        keyOrigin: ctx.method.keyOrigin,
        publicKeySpki: fromReport?.publicKeySpki ?? certSpki,
        dppUri: fromReport?.dppUri ?? dpp,
        stages: stages.stages,
        runId: ctx.runId,
      };
      // record + signed record + audit + outbox rows in one transaction (records-and-sync.md)
      if (ctx.recorder) {
        const input = { ...recordInput, facts: recordFacts };
        const early = await preparedRecord!;
        // the record signed ahead, unless it is not over what is recorded (method 1 records from
        // the device's report) or could not be made then: then it is made now
        const prepared = early.ok && ctx.recorder.isOver(early.value, input) ? early.value : await ctx.recorder.prepareVerified(input);
        await ctx.recorder.commitVerified(prepared, input);
      } else {
        ctx.store.recordVerified(recordInput);
      }
      await ctx.method.afterRecord?.({ serial: assignedSerial, workOrderId: ctx.workOrder.id, facts });
    });
    report.keyOrigin = ctx.method.keyOrigin;

    await stages.run('lock', async () => {
      await client.lock();
      await ctx.store.committer.run('marking the device passed', () => ctx.store.markPassed(assignedSerial, ctx.runId, stages.stages));
    });
    report.status = 'passed';
    passed = true;

    // Label from the committed record only, off the device's path: the job joins the run's label
    // queue, which prints labels in pass order while this port takes its next device. The label
    // stage, its events and kill points happen in the job (labels/device-label-job.ts). A label
    // failure never fails the device.
    const labelJob = deviceLabelJob({ serial: assignedSerial, port: client.port, report, onStage: ctx.onStage, log });
    if (ctx.labelQueue) {
      void ctx.labelQueue.enqueue(labelJob);
    } else {
      await new LabelQueue({ labels: ctx.labels, rendering: new InProcessLabelRendering(ctx.labels), outDir: ctx.outDir, log }).enqueue(labelJob);
    }
    if (ctx.recorder && ctx.recorder.targets.length > 0) {
      // The outbox rows committed with the record; this stage hands them to the relay.
      await stages.run('queue-sync', () => {
        ctx.onQueued?.();
        const state = (t: 'masa' | 'supply-chain') => (ctx.recorder!.targets.includes(t) ? 'pending' : 'disabled');
        report.sync = { masa: state('masa'), supplyChain: state('supply-chain') };
      });
    } else {
      stages.skip('queue-sync'); // no sync target configured: both states are "disabled"
    }
    log.info({ serial, durationMs: stages.stages.reduce((a, s) => a + s.durationMs, 0) }, 'device passed');
    return report;
  } catch (err) {
    failing = true;
    // a challenge sent early is answered (or times out) before the port moves on
    await proof?.settled;
    const e = asStationError(err);
    report.error = { code: e.code, message: e.message, stage: e.stage ?? null };
    if (!passed) {
      if (serial && keyObtained && ctx.method.onFailure) {
        try {
          await ctx.method.onFailure({ serial, workOrderId: ctx.workOrder.id, facts, stage: report.error.stage, code: e.code });
        } catch (hookErr) {
          log.error({ code: asStationError(hookErr).code, reason: asStationError(hookErr).message }, 'the method could not clean up after the failure');
        }
      }
      report.status = 'failed';
      report.label = { state: 'pending', reason: 'device failed' };
      if (serial) {
        report.disposition = 'rework';
        try {
          if (ctx.recorder) {
            // A certificate issued to a failed device is voided, and the void is queued for sync.
            const failed = await ctx.recorder.markFailed(serial, ctx.runId, report.error, stages.stages, 'rework', { keyOrigin: ctx.method.keyOrigin, dppUri: report.dppUri });
            if (failed.voidError !== undefined) {
              log.error({ code: asStationError(failed.voidError).code, reason: asStationError(failed.voidError).message }, 'the certificate is void locally, but its void record could not be signed');
            }
            if (failed.voidQueued) ctx.onQueued?.();
          } else {
            ctx.store.markFailed(serial, ctx.runId, report.error, stages.stages, 'rework');
          }
        } catch (dbErr) {
          log.error({ code: asStationError(dbErr).code }, 'could not mark the device failed in the database');
        }
      }
    }
    log.warn({ code: e.code, stage: e.stage, reason: e.message }, 'device failed');
    return report;
  }
}
