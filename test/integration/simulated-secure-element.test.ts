/**
 * The simulator's secure element on a real SoftHSM token: the birth key is generated on the
 * token (CKA_LOCAL), sensitive and never extractable, signs what the device is asked to sign,
 * and is replaced, never kept, when the port's next device makes its own. It is a session object
 * (simulated-secure-element.ts says why): it lives as long as the simulator's session.
 */
import { createPublicKey, verify } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11Library } from '../../src/hsm/pkcs11/pkcs11-library';
import { Pkcs11Token } from '../../src/hsm/pkcs11/pkcs11-token';
import { SOFTHSM_DEFAULT_MODULE, ensureSoftHsmConfig } from '../../src/hsm/pkcs11/softhsm-config';
import { BIRTH_KEY_LABEL, SimulatedSecureElement } from '../../src/simulator/simulated-secure-element';
import { testDir } from '../helpers/station-cli';

describe('simulated secure element', () => {
  let library: Pkcs11Library;
  let token: Pkcs11Token;
  beforeAll(() => {
    // SoftHSM reads SOFTHSM2_CONF when the module initialises (once per test file's process).
    process.env.SOFTHSM2_CONF = ensureSoftHsmConfig(join(testDir('sim-se'), 'softhsm'));
    library = Pkcs11Library.open(SOFTHSM_DEFAULT_MODULE);
    library.initToken('se-test', 'so-pin-1234', 'user-pin-1234');
    token = Pkcs11Token.login(library, 'se-test', 'user-pin-1234');
  });
  afterAll(() => token?.close());

  it('generates the birth key on the token: local, sensitive, never extractable; it signs for the device', () => {
    const se = new SimulatedSecureElement(token);
    const spki = se.generateBirthKey();
    const priv = token.findPrivateKey(BIRTH_KEY_LABEL);
    expect(priv).toBeDefined();
    expect(token.auditPrivateKey(priv!)).toMatchObject({ token: false, local: true, sensitive: true, alwaysSensitive: true, extractable: false, neverExtractable: true, sign: true });
    expect(token.publicKeySpki(token.findPublicKey(BIRTH_KEY_LABEL)!).equals(spki)).toBe(true);
    const data = Buffer.from('voucher-request');
    expect(verify('sha256', data, { key: createPublicKey({ key: spki, format: 'der', type: 'spki' }), dsaEncoding: 'der' }, se.sign(data))).toBe(true);
  });

  it('the next device on the port gets a new key; the previous one is destroyed, not kept', () => {
    const se = new SimulatedSecureElement(token);
    const first = se.generateBirthKey();
    const second = se.generateBirthKey();
    expect(second.equals(first)).toBe(false);
    expect(token.listObjects(BIRTH_KEY_LABEL)).toHaveLength(2); // the one key pair: private + public
  });
});
