/**
 * Known-answer test: the IDevID our issuer builds for a fixed key, serial and notBefore with the
 * demo profile equals, byte for byte, the TBSCertificate OpenSSL made from the same inputs
 * (fixtures/certs/kat/make-kat.sh, run at test time with fresh keys). Also checks the journal order around the HSM signature.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultStationConfig } from '../../../src/core/config';
import { p256PointFromSpki, p256SpkiFromPoint } from '../../../src/core/ec-public-key';
import type { IssuanceIntent, IssuanceJournal, IssuedCertificateEntry } from '../../../src/core/ports/issuance-journal';
import type { Signer } from '../../../src/core/ports/signer';
import { IdevidIssuer } from '../../../src/hsm/ca/idevid-issuer';
import { derChildren, readDerExact } from '../../../src/hsm/ca/der';
import { fromPem, toPem } from '../../../src/hsm/ca/x509-builder';
import { katDir } from '../../helpers/kat';
import { testDir } from '../../helpers/station-cli';
import { openssl } from '../../helpers/tools';

const KAT = katDir();
const SERIAL = Buffer.from('4D2A0C7E5B1F3A9068D4E2B1C3F5A7E9', 'hex');
const NOT_BEFORE = new Date('2025-01-01T00:00:00Z');

/** Records every journal call and every signature, in order. */
class RecordingJournal implements IssuanceJournal {
  readonly calls: string[] = [];
  readonly intents: IssuanceIntent[] = [];
  readonly issued: IssuedCertificateEntry[] = [];
  recordIntent(intent: IssuanceIntent): void {
    this.calls.push('intent');
    this.intents.push(intent);
  }
  recordIssued(entry: IssuedCertificateEntry): void {
    this.calls.push('issued');
    this.issued.push(entry);
  }
  findDeviceByPublicKey(): string | undefined {
    this.calls.push('lookup');
    return undefined;
  }
}

function katIssuer(journal: RecordingJournal) {
  const caKey = createPrivateKey(readFileSync(join(KAT, 'ca-key.pem')));
  const caSpki = createPublicKey(caKey).export({ format: 'der', type: 'spki' });
  const signer: Signer = {
    algorithm: 'ecdsa-p256-sha256',
    publicKeySpki: caSpki,
    sign: async (data) => {
      journal.calls.push('sign');
      return nodeSign('sha256', data, { key: caKey, dsaEncoding: 'der' });
    },
  };
  const caDer = fromPem(readFileSync(join(KAT, 'ca.pem'), 'utf8'))[0]!;
  return new IdevidIssuer(signer, [caDer], journal, { now: () => new Date(NOT_BEFORE), certificateSerial: () => Buffer.from(SERIAL) });
}

function deviceSpki(): Buffer {
  const spki = createPublicKey(createPrivateKey(readFileSync(join(KAT, 'device-key.pem')))).export({ format: 'der', type: 'spki' });
  // What checkCsr hands the issuer: the uncompressed P-256 SPKI.
  return p256SpkiFromPoint(p256PointFromSpki(spki));
}

describe('IDevID known-answer vector (OpenSSL-made TBSCertificate)', () => {
  it('builds the same TBSCertificate as openssl, byte for byte, with the demo profile', async () => {
    const journal = new RecordingJournal();
    const profile = defaultStationConfig().products['demo-sensor']!;
    const issued = await katIssuer(journal).issue({ spki: deviceSpki(), serial: 'DEMO-000042', model: profile.model, workOrderId: 'WO-KAT', profile: profile.idevid });
    const ours = derChildren(readDerExact(issued.certificateDer))[0]!.bytes;
    const expected = readFileSync(join(KAT, 'tbs.der'));
    expect(ours.toString('hex')).toBe(expected.toString('hex'));
    expect(issued.certificateSerialHex).toBe(SERIAL.toString('hex'));

    // and openssl accepts our signature over it with the KAT CA
    const dir = testDir('kat');
    writeFileSync(join(dir, 'ours.pem'), toPem(issued.certificateDer));
    const v = openssl(['verify', '-CAfile', join(KAT, 'ca.pem'), join(dir, 'ours.pem')]);
    expect(v.out).toContain(': OK');
  });

  it('looks the key up, writes the intent before the HSM signs, and records the certificate after', async () => {
    const journal = new RecordingJournal();
    const profile = defaultStationConfig().products['demo-sensor']!;
    await katIssuer(journal).issue({ spki: deviceSpki(), serial: 'DEMO-000042', model: profile.model, workOrderId: 'WO-KAT', profile: profile.idevid });
    expect(journal.calls).toEqual(['lookup', 'intent', 'sign', 'issued']);
    expect(journal.intents[0]).toMatchObject({ certificateSerialHex: SERIAL.toString('hex'), deviceSerial: 'DEMO-000042', workOrderId: 'WO-KAT', at: NOT_BEFORE });
    expect(journal.intents[0]!.publicKeySha256Hex).toBe(journal.issued[0]!.publicKeySha256Hex);
  });
});
