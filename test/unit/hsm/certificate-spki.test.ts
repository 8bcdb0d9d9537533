/**
 * certificateSpkiDer (the DER walker the line uses for the DPP URI's key) against node's
 * X509Certificate on certificates made by openssl (v3 with extensions) and by the station's
 * issuer; non-DER input is refused with DerError.
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DerError, certificateSpkiDer } from '../../../src/hsm/ca/der';
import { fromPem } from '../../../src/hsm/ca/x509-builder';
import { katDir } from '../../helpers/kat';

describe('certificateSpkiDer', () => {
  const KAT = katDir();
  const certs = [...fromPem(readFileSync(join(KAT, 'ca.pem'), 'utf8')), ...fromPem(readFileSync(join(KAT, 'kat-openssl.pem'), 'utf8'))];

  it('gives the subjectPublicKeyInfo node\'s X509Certificate gives', () => {
    expect(certs.length).toBeGreaterThanOrEqual(2);
    for (const der of certs) {
      expect(certificateSpkiDer(der).toString('hex')).toBe(new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }).toString('hex'));
    }
  });

  it('refuses what is not one strict DER certificate', () => {
    const der = certs[0]!;
    expect(() => certificateSpkiDer(der.subarray(0, der.length - 1))).toThrow(DerError);
    expect(() => certificateSpkiDer(Buffer.concat([der, Buffer.from([0])]))).toThrow(DerError);
    expect(() => certificateSpkiDer(Buffer.from('300330010a', 'hex'))).toThrow(DerError);
  });
});
