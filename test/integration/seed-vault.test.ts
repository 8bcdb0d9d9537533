/**
 * Method 5's seed vault in the real PKCS#11 worker on SoftHSM: the vendor kit's seed file
 * (src/simulator/vendor) opened by the station's worker ops (ECDH in the HSM with CKD_NULL, HKDF
 * and AES-GCM in the worker), each seed sealed at rest by the HSM (C_Encrypt CKM_AES_GCM) and its
 * public key derived there; a tampered file, a file for another recipient, a malformed one and an
 * altered sealed seed are refused with their codes; the keys on the token have the attributes
 * the design asks for; and SoftHSM's AES-GCM through pkcs11js gives the bytes node gives.
 *
 * The worker runs the compiled dist/ (npm run build).
 */
import { createCipheriv, createECDH, createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStationConfig, type HsmConfig } from '../../src/core/config';
import { ConfigError, HsmError, StationError } from '../../src/core/errors';
import { deriveSeedPublicKeySpki } from '../../src/core/seed-derivation';
import { seedRecipientKeyId } from '../../src/core/seed-file-envelope';
import { openIdevidCa, type IdevidCa } from '../../src/hsm/ca/idevid-ca';
import { initTestPki } from '../../src/hsm/ca/test-pki';
import { Pkcs11Library, pkcs11js as P, type Pkcs11Handle } from '../../src/hsm/pkcs11/pkcs11-library';
import { SOFTHSM_DEFAULT_MODULE, ensureSoftHsmConfig } from '../../src/hsm/pkcs11/softhsm-config';
import { DEFAULT_SEED_IMPORT_KEY_LABEL, DEFAULT_SEED_VAULT_KEY_LABEL, Pkcs11SeedVault } from '../../src/hsm/seeds/pkcs11-seed-vault';
import { writeSeedFile, type VendorChip } from '../../src/simulator/vendor/seed-file-writer';
import { testDir } from '../helpers/station-cli';

async function refusal(p: Promise<unknown>): Promise<StationError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StationError);
    return err as StationError;
  }
  throw new Error('expected a refusal');
}

function chips(n: number): VendorChip[] {
  return Array.from({ length: n }, () => ({ chipId: randomBytes(8), seed: randomBytes(32) }));
}

function pem(spki: Buffer): string {
  return `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`;
}

describe('seed vault in the PKCS#11 worker (SoftHSM)', () => {
  let ca: IdevidCa;
  let vault: Pkcs11SeedVault;
  let recipientSpki: Buffer;
  let library: Pkcs11Library;
  let session: Pkcs11Handle;

  beforeAll(async () => {
    const dataDir = join(testDir('seed-vault'), 'data');
    process.env.SOFTHSM2_CONF = ensureSoftHsmConfig(dataDir);
    const hsm: HsmConfig = { ...defaultStationConfig().hsm, tokenLabel: 'seed-vault-test', pin: { file: 'hsm-pin' } };
    await initTestPki({ dataDir, hsm, organization: 'Seed Test', env: process.env });
    ca = openIdevidCa(hsm, dataDir, process.env);
    await ca.ready();
    vault = new Pkcs11SeedVault(ca.signer, hsm);
    recipientSpki = await vault.recipientPublicKey();
    library = Pkcs11Library.open(SOFTHSM_DEFAULT_MODULE);
    session = library.api.C_OpenSession(ca.token.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  });

  afterAll(async () => {
    if (session) library.api.C_CloseSession(session);
    await ca?.close();
  });

  function find(cls: number, label: string): Pkcs11Handle[] {
    library.api.C_FindObjectsInit(session, [
      { type: P.CKA_CLASS, value: cls },
      { type: P.CKA_LABEL, value: label },
    ]);
    try {
      return library.api.C_FindObjects(session, 10);
    } finally {
      library.api.C_FindObjectsFinal(session);
    }
  }

  function flags(handle: Pkcs11Handle, types: Record<string, number>): Record<string, boolean> {
    const names = Object.keys(types);
    const values = library.api.C_GetAttributeValue(session, handle, names.map((n) => ({ type: types[n]! })));
    return Object.fromEntries(names.map((n, i) => [n, (values[i]!.value as Buffer)[0] === 1]));
  }

  it('makes the seed-import key once, as token objects: sensitive, never extractable, DERIVE only', async () => {
    expect(await vault.recipientPublicKey()).toEqual(recipientSpki);
    expect(recipientSpki.subarray(0, 26).toString('hex')).toBe('3059301306072a8648ce3d020106082a8648ce3d030107034200');
    const [priv, ...more] = find(P.CKO_PRIVATE_KEY, DEFAULT_SEED_IMPORT_KEY_LABEL);
    expect(more).toHaveLength(0);
    expect(flags(priv!, { token: P.CKA_TOKEN, sensitive: P.CKA_SENSITIVE, extractable: P.CKA_EXTRACTABLE, derive: P.CKA_DERIVE, sign: P.CKA_SIGN, decrypt: P.CKA_DECRYPT, unwrap: P.CKA_UNWRAP })).toEqual({
      token: true,
      sensitive: true,
      extractable: false,
      derive: true,
      sign: false,
      decrypt: false,
      unwrap: false,
    });
  });

  it('opens the kit\'s seed file in the worker, seals each seed in the HSM and derives the same public keys', async () => {
    const made = chips(3);
    const expected = made.map((c) => deriveSeedPublicKeySpki(c.seed, c.chipId));
    const opened = await vault.openSeedFile(writeSeedFile(pem(recipientSpki), { vendor: 'Test Vendor', lot: 'LOT-1', chips: made }));
    expect(opened).toMatchObject({ recipientKeyId: seedRecipientKeyId(recipientSpki), vendor: 'Test Vendor', lot: 'LOT-1' });
    expect(opened.chips.map((c) => c.chipId)).toEqual(made.map((c) => c.chipId.toString('hex')));
    for (const [i, c] of opened.chips.entries()) {
      // iv (12) || 32-byte seed encrypted || tag (16), and never the seed itself
      expect(c.sealed).toHaveLength(60);
      expect(c.sealed.includes(made[i]!.seed)).toBe(false);
      expect(c.publicKeySha256).toBe(createHash('sha256').update(expected[i]!).digest('hex'));
      expect(await vault.derivePublicKey(c.chipId, c.sealed)).toEqual(expected[i]);
    }
    // the vault key: a token AES key that never leaves the HSM, ENCRYPT/DECRYPT only
    const [vaultKey] = find(P.CKO_SECRET_KEY, DEFAULT_SEED_VAULT_KEY_LABEL);
    expect(flags(vaultKey!, { token: P.CKA_TOKEN, sensitive: P.CKA_SENSITIVE, extractable: P.CKA_EXTRACTABLE, encrypt: P.CKA_ENCRYPT, decrypt: P.CKA_DECRYPT, wrap: P.CKA_WRAP, unwrap: P.CKA_UNWRAP })).toEqual({
      token: true,
      sensitive: true,
      extractable: false,
      encrypt: true,
      decrypt: true,
      wrap: false,
      unwrap: false,
    });
    expect(() => library.api.C_GetAttributeValue(session, vaultKey!, [{ type: P.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
  });

  it('refuses a sealed seed that was altered or moved to another chip\'s row', async () => {
    const [c] = (await vault.openSeedFile(writeSeedFile(pem(recipientSpki), { vendor: 'V', lot: 'L', chips: chips(2) }))).chips;
    const altered = Buffer.from(c!.sealed);
    altered[20] ^= 1;
    expect((await refusal(vault.derivePublicKey(c!.chipId, altered))).code).toBe('SEED_VAULT_INTEGRITY');
    const e = await refusal(vault.derivePublicKey('00'.repeat(8), c!.sealed));
    expect(e).toBeInstanceOf(HsmError);
    expect(e.code).toBe('SEED_VAULT_INTEGRITY');
  });

  it('refuses a tampered file (SEED_FILE_DECRYPT_FAILED): ciphertext, tag or an authenticated header field', async () => {
    const made = chips(1);
    const file = JSON.parse(writeSeedFile(pem(recipientSpki), { vendor: 'V', lot: 'L', chips: made }).toString('utf8')) as Record<string, string>;
    const flip = (b64: string) => {
      const b = Buffer.from(b64, 'base64url');
      b[0] ^= 1;
      return b.toString('base64url');
    };
    const header = JSON.parse(Buffer.from(file.protected!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const variants = [
      { ...file, ciphertext: flip(file.ciphertext!) },
      { ...file, tag: flip(file.tag!) },
      { ...file, iv: flip(file.iv!) },
      { ...file, protected: Buffer.from(JSON.stringify({ ...header, salt: flip(header.salt as string) })).toString('base64url') },
    ];
    for (const v of variants) {
      const e = await refusal(vault.openSeedFile(Buffer.from(JSON.stringify(v))));
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.code).toBe('SEED_FILE_DECRYPT_FAILED');
      expect(e.message).not.toContain(made[0]!.seed.toString('base64'));
    }
  });

  it('refuses a file encrypted to another key (SEED_FILE_WRONG_RECIPIENT) and a malformed one', async () => {
    const other = createECDH('prime256v1');
    other.generateKeys();
    const otherSpki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), other.getPublicKey()]);
    const wrong = await refusal(vault.openSeedFile(writeSeedFile(pem(otherSpki), { vendor: 'V', lot: 'L', chips: chips(1) })));
    expect(wrong).toBeInstanceOf(ConfigError);
    expect(wrong.code).toBe('SEED_FILE_WRONG_RECIPIENT');
    expect(wrong.message).toContain(seedRecipientKeyId(recipientSpki));
    for (const bad of ['not json', '{}', JSON.stringify({ protected: 'e30', iv: 'AAAA', ciphertext: 'AAAA', tag: 'AAAA' })]) {
      const e = await refusal(vault.openSeedFile(Buffer.from(bad)));
      expect(e.code).toBe('SEED_FILE_MALFORMED');
    }
  });

  it('SoftHSM 2.6.1 AES-GCM through pkcs11js (v2.40 parameters) gives the bytes node\'s aes-256-gcm gives', () => {
    const keyValue = randomBytes(32);
    const key = library.api.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_VALUE, value: keyValue },
      { type: P.CKA_ENCRYPT, value: true },
    ]);
    try {
      const iv = randomBytes(12);
      const aad = Buffer.from('seed-vault-v1 0011223344556677');
      const plain = randomBytes(32);
      library.api.C_EncryptInit(session, { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad, tagBits: 128 } as unknown as P.IParams }, key);
      const hsm = library.api.C_Encrypt(session, plain, Buffer.alloc(64));
      const cipher = createCipheriv('aes-256-gcm', keyValue, iv);
      cipher.setAAD(aad);
      expect(hsm).toEqual(Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]));
    } finally {
      library.api.C_DestroyObject(session, key);
    }
  });
});
