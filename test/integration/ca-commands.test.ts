/**
 * `station ca create | install-chain | show | export` against SoftHSM, through the built CLI
 * (run `npx tsc -p tsconfig.json` first). Certificates are checked with openssl, key attributes
 * with a PKCS#11 session of the test's own.
 */
import { copyFileSync, existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStationConfig } from '../../src/core/config';
import { fromPem, toPem } from '../../src/hsm/ca/x509-builder';
import { isPkcs11Error, ckrName } from '../../src/hsm/pkcs11/ckr-names';
import { Pkcs11Library, pkcs11js as P, type Pkcs11Handle } from '../../src/hsm/pkcs11/pkcs11-library';
import { Pkcs11Token } from '../../src/hsm/pkcs11/pkcs11-token';
import { SOFTHSM_DEFAULT_MODULE } from '../../src/hsm/pkcs11/softhsm-config';
import { cleanEnv, runStation, testDir } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

describe('station ca commands on SoftHSM', () => {
  let dir: string;
  let dataDir: string;
  let pki: string;
  let pin: string;
  let token: Pkcs11Token | undefined;
  const ca = (...args: string[]) => runStation(['--data-dir', dataDir, 'ca', ...args]);

  /** A test-side login (login state is per process, so this never disturbs the CLI children). */
  const testToken = (): Pkcs11Token => {
    if (!token) {
      process.env.SOFTHSM2_CONF = join(dataDir, 'softhsm2.conf');
      token = Pkcs11Token.login(Pkcs11Library.open(SOFTHSM_DEFAULT_MODULE), 'station-ca', pin);
    }
    return token;
  };

  /** Write each certificate of a PEM chain to its own file; returns the paths. */
  const split = (chainPath: string, name: string): string[] =>
    fromPem(readFileSync(chainPath, 'utf8')).map((der, i) => {
      const path = join(dir, `${name}-${i}.pem`);
      writeFileSync(path, toPem(der));
      return path;
    });

  beforeAll(async () => {
    dir = testDir('ca');
    dataDir = join(dir, 'data');
    pki = join(dataDir, 'pki');
    const r = await runStation(['--data-dir', dataDir, 'pki', 'init']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    pin = readFileSync(join(dataDir, 'hsm-pin'), 'utf8').trim();
  });

  afterAll(() => token?.close());

  it('every ca command has --help', async () => {
    for (const sub of ['create', 'install-chain', 'show', 'export']) {
      const r = await ca(sub, '--help');
      expect(r.code, sub).toBe(0);
      expect(r.stdout).toContain(`Usage: station ca ${sub}`);
    }
    const r = await runStation(['ca', '--help']);
    expect(r.stdout).toMatch(/create[\s\S]*install-chain[\s\S]*show[\s\S]*export/);
  });

  it('creates a CA key issued by the root on a fresh token, and writes its chain', async () => {
    const r = await ca('create', '--label', 'second-ca', '--parent-label', 'idevid-root-ca', '--subject', 'C=DE,O=Example Devices Inc,OU=IDevID,CN=Second Issuing CA');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const chainPath = join(pki, 'second-ca-chain.pem');
    expect(r.stdout).toContain(`chain:       ${chainPath} (2 certificates)`);
    expect(r.stdout).toContain('uri:         pkcs11:token=station-ca;object=second-ca;type=private;id=');
    expect(r.stdout).not.toContain(pin);
    const chain = fromPem(readFileSync(chainPath, 'utf8'));
    expect(chain).toHaveLength(2);
    // The chain ends with the same root as the IDevID chain.
    expect(chain[1]).toEqual(fromPem(readFileSync(join(pki, 'root-ca.pem'), 'utf8'))[0]);
  });

  it('refuses to overwrite: a second create with the same label fails with HSM_KEY_EXISTS (exit 3)', async () => {
    const before = readFileSync(join(pki, 'second-ca-chain.pem'), 'utf8');
    const r = await ca('create', '--label', 'second-ca', '--parent-label', 'idevid-root-ca');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('HSM_KEY_EXISTS');
    expect(readFileSync(join(pki, 'second-ca-chain.pem'), 'utf8')).toBe(before);
    for (const label of ['idevid-issuing-ca', 'idevid-root-ca']) {
      const again = await ca('create', '--label', label);
      expect(again.code, label).toBe(3);
      expect(again.stderr).toContain('HSM_KEY_EXISTS');
    }
    // Another key that merely has the id the new key would get is not shadowed either.
    testToken().generateEcP256KeyPair({ label: 'holds-the-id', id: Buffer.from('clash-ca'), token: true, usage: { sign: true } });
    const clash = await ca('create', '--label', 'clash-ca');
    expect(clash.code).toBe(3);
    expect(clash.stderr).toContain(`a private key with id ${Buffer.from('clash-ca').toString('hex')}`);
    expect(existsSync(join(pki, 'clash-ca-chain.pem'))).toBe(false);
  });

  it('generates the key on the token: sensitive, never extractable, local, sign only; the token refuses to wrap it', () => {
    const t = testToken();
    const priv = t.findPrivateKey('second-ca')!;
    expect(priv).toBeDefined();
    expect(t.auditPrivateKey(priv)).toMatchObject({
      token: true,
      private: true,
      sensitive: true,
      extractable: false,
      alwaysSensitive: true,
      neverExtractable: true,
      local: true,
      sign: true,
      decrypt: false,
      unwrap: false,
      derive: false,
    });
    const api = t.library.api;
    const session: Pkcs11Handle = api.C_OpenSession(t.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    try {
      const kek = api.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_WRAP, value: true },
        { type: P.CKA_VALUE_LEN, value: 32 },
      ]);
      let ckr = 'no error';
      try {
        api.C_WrapKey(session, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, kek, priv, Buffer.alloc(512));
      } catch (err) {
        ckr = isPkcs11Error(err) ? ckrName(err.code) : String(err);
      }
      expect(ckr).toBe('CKR_KEY_UNEXTRACTABLE');
    } finally {
      api.C_CloseSession(session);
    }
  });

  it('makes a chain that openssl verify -x509_strict accepts, with the CA extensions of contracts.md §7', () => {
    const [cert, root] = split(join(pki, 'second-ca-chain.pem'), 'second-ca');
    const v = openssl(['verify', '-x509_strict', '-purpose', 'any', '-CAfile', root!, cert!]);
    expect(v.out).toContain(': OK');
    expect(v.code).toBe(0);
    const text = openssl(['x509', '-in', cert!, '-noout', '-text']).out;
    expect(text).toMatch(/Subject: C = DE, O = Example Devices Inc, OU = IDevID, CN = Second Issuing CA/);
    expect(text).toMatch(/Issuer: O = Example Devices Inc, CN = Test IDevID Root CA/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toMatch(/Subject Key Identifier/);
    expect(text).toMatch(/Authority Key Identifier/);
    expect(text).toMatch(/Not After : Dec 31 23:59:59 9999 GMT/);
  });

  it('makes a self-signed root without --parent-label, and refuses a CA under a pathlen:0 parent', async () => {
    const r = await ca('create', '--label', 'extra-root', '--subject', 'O=Example Devices Inc,CN=Extra Root');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(self-signed root)');
    const [root] = split(join(pki, 'extra-root-chain.pem'), 'extra-root');
    expect(openssl(['verify', '-x509_strict', '-CAfile', root!, root!]).code).toBe(0);

    const deep = await ca('create', '--label', 'third-ca', '--parent-label', 'second-ca');
    expect(deep.code).toBe(3);
    expect(deep.stderr).toContain('CA_PARENT_PATHLEN');
    expect(testToken().findPrivateKey('third-ca')).toBeUndefined();
    expect(existsSync(join(pki, 'third-ca-chain.pem'))).toBe(false);
  });

  it('refuses bad subjects and a missing --label as usage errors (exit 2) before touching the token', async () => {
    const bad = await ca('create', '--label', 'bad-subject', '--subject', 'O=Example,SN=123');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('CA_SUBJECT_INVALID');
    expect(testToken().findPrivateKey('bad-subject')).toBeUndefined();
    const badLabel = await ca('create', '--label', ' padded ');
    expect(badLabel.code).toBe(2);
    expect(badLabel.stderr).toContain('CA_LABEL_INVALID');
    const missing = await ca('create');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--label <L>'");
    const noPinOption = await ca('show', '--pin', pin);
    expect(noPinOption.code).toBe(2);
    expect(noPinOption.stderr).toContain("unknown option '--pin'");
  });

  it('install-chain: installs the right chain (idempotent), refuses a chain for another key with CA_KEY_MISMATCH', async () => {
    const installed = join(pki, 'second-ca-chain.pem');
    const original = readFileSync(installed, 'utf8');
    const source = join(dir, 'second-ca-from-the-ca.pem');
    copyFileSync(installed, source);
    unlinkSync(installed);

    const first = await ca('install-chain', '--label', 'second-ca', '--chain', source);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`installed: ${installed}`);
    expect(readFileSync(installed, 'utf8')).toBe(original);
    const second = await ca('install-chain', '--label', 'second-ca', '--chain', source);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`unchanged: ${installed}`);

    // The configured CA key's chain goes to idevid-chain.pem.
    const idevid = join(dir, 'idevid-chain-copy.pem');
    copyFileSync(join(pki, 'idevid-chain.pem'), idevid);
    const own = await ca('install-chain', '--label', 'idevid-issuing-ca', '--chain', idevid);
    expect(own.code).toBe(0);
    expect(own.stdout).toContain(`unchanged: ${join(pki, 'idevid-chain.pem')}`);

    const wrong = await ca('install-chain', '--label', 'second-ca', '--chain', idevid);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('CA_KEY_MISMATCH');
    expect(readFileSync(installed, 'utf8')).toBe(original);
  });

  it('install-chain refuses a chain that does not reach a self-signed root or does not verify', async () => {
    const [cert, root] = split(join(pki, 'second-ca-chain.pem'), 'second-ca-parts');
    const noRoot = await ca('install-chain', '--label', 'second-ca', '--chain', cert!);
    expect(noRoot.code).toBe(3);
    expect(noRoot.stderr).toContain('CA_CHAIN_INVALID');
    expect(noRoot.stderr).toContain('self-signed root');

    const foreignRoot = join(dir, 'foreign-root.pem');
    writeFileSync(foreignRoot, readFileSync(cert!, 'utf8') + readFileSync(join(pki, 'extra-root-chain.pem'), 'utf8'));
    const wrongIssuer = await ca('install-chain', '--label', 'second-ca', '--chain', foreignRoot);
    expect(wrongIssuer.code).toBe(3);
    expect(wrongIssuer.stderr).toMatch(/CA_CHAIN_INVALID.*is not the issuer of certificate 1/);

    const missing = await ca('install-chain', '--label', 'second-ca', '--chain', join(dir, 'nope.pem'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('CHAIN_FILE_UNREADABLE');
    expect(root).toBeDefined();
  });

  it('show --json: token, audited key attributes, certificate and mechanisms; never the PIN', async () => {
    const r = await ca('show', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(pin);
    const s = JSON.parse(r.stdout);
    expect(s.ok).toBe(true);
    expect(s.problems).toEqual([]);
    expect(s.module).toMatchObject({ path: SOFTHSM_DEFAULT_MODULE, manufacturer: 'SoftHSM', cryptokiVersion: expect.stringMatching(/^2\.\d+$/) });
    expect(s.token).toMatchObject({ label: 'station-ca', serial: expect.stringMatching(/^[0-9a-f]{16}$/), model: 'SoftHSM v2' });
    expect(s.pinSource).toBe(`file ${join(dataDir, 'hsm-pin')}`);
    expect(s.key).toMatchObject({ label: 'idevid-issuing-ca', id: Buffer.from('idevid-issuing-ca').toString('hex'), keyType: 'CKK_EC', curve: 'P-256', status: 'ok', weaknesses: [] });
    expect(Object.keys(s.key.attributes).sort()).toEqual(
      ['alwaysSensitive', 'decrypt', 'derive', 'extractable', 'local', 'neverExtractable', 'private', 'sensitive', 'sign', 'token', 'unwrap'],
    );
    expect(s.key.attributes).toMatchObject({ sensitive: true, extractable: false, neverExtractable: true, local: true, sign: true, decrypt: false, unwrap: false, derive: false });
    const issuing = join(pki, 'issuing-ca.pem');
    const serial = openssl(['x509', '-in', issuing, '-noout', '-serial']).out.trim().replace(/^serial=/, '').toLowerCase();
    const ski = openssl(['x509', '-in', issuing, '-noout', '-ext', 'subjectKeyIdentifier']).out.split('\n')[1]!.trim().replace(/:/g, '').toLowerCase();
    expect(s.certificate).toMatchObject({
      chainPath: join(pki, 'idevid-chain.pem'),
      subject: 'O=Example Devices Inc,CN=Test IDevID Issuing CA',
      issuer: 'O=Example Devices Inc,CN=Test IDevID Root CA',
      serialNumber: serial.replace(/^00/, ''),
      notAfter: '9999-12-31T23:59:59.000Z',
      subjectKeyIdentifier: ski,
      basicConstraints: { ca: true, pathLen: 0 },
      chainLength: 2,
      chainValid: true,
      selfSigned: false,
    });
    expect(Date.parse(s.certificate.notBefore)).toBeLessThanOrEqual(Date.now());
    expect(s.mechanisms).toMatchObject({ CKM_ECDSA: true, CKM_EC_KEY_PAIR_GEN: true });

    const text = await ca('show', '--label', 'second-ca');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/key: +second-ca .*OK/);
    expect(text.stdout).toContain('status:       OK');
  });

  it('show reports a weak key with exit 3 and lists what it lacks', async () => {
    const t = testToken();
    if (!t.findPrivateKey('weak-ca')) t.generateEcP256KeyPair({ label: 'weak-ca', token: true, usage: { sign: true, derive: true }, extractable: true });
    const r = await ca('show', '--label', 'weak-ca', '--json');
    expect(r.code).toBe(3);
    const s = JSON.parse(r.stdout);
    expect(s.ok).toBe(false);
    expect(s.key.status).toBe('weak');
    expect(s.key.weaknesses).toEqual(expect.arrayContaining(['CKA_EXTRACTABLE=false', 'CKA_NEVER_EXTRACTABLE=true', 'CKA_DERIVE=false']));
    expect(s.certificate).toBeNull();
    const missing = await ca('show', '--label', 'no-such-key');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('HSM_KEY_NOT_FOUND');
  });

  it('export prints exactly the chain file, or writes it, or the public key', async () => {
    const def = await ca('export');
    expect(def.code).toBe(0);
    expect(def.stdout).toBe(readFileSync(join(pki, 'idevid-chain.pem'), 'utf8'));
    const second = await ca('export', '--label', 'second-ca');
    expect(second.stdout).toBe(readFileSync(join(pki, 'second-ca-chain.pem'), 'utf8'));
    const out = join(dir, 'exported.pem');
    const toFile = await ca('export', '--label', 'second-ca', '--out', out);
    expect(toFile.code).toBe(0);
    expect(toFile.stdout).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(pki, 'second-ca-chain.pem'), 'utf8'));
    const pub = await ca('export', '--label', 'second-ca', '--public-key');
    expect(pub.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const [cert] = split(join(pki, 'second-ca-chain.pem'), 'second-ca-pub');
    expect(pub.stdout).toBe(openssl(['x509', '-in', cert!, '-noout', '-pubkey']).out);
    const root = await ca('export', '--label', 'idevid-root-ca');
    expect(root.stdout).toBe(readFileSync(join(pki, 'root-ca.pem'), 'utf8'));
  });

  it('finds keys by an RFC 7512 URI in the configuration, and refuses a URI that carries a PIN', async () => {
    const cfg = join(dir, 'uri.json');
    writeFileSync(cfg, JSON.stringify({ hsm: { caKeyUri: 'pkcs11:token=station-ca;object=second-ca;type=private?pin-source=file:hsm-pin' } }));
    const r = await runStation(['--config', cfg, '--data-dir', dataDir, 'ca', 'show', '--json'], { env: cleanEnv({ STATION_HSM_PIN: 'not-the-pin' }) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.key.label).toBe('second-ca');
    expect(s.certificate.chainPath).toBe(join(pki, 'second-ca-chain.pem'));

    const withPin = join(dir, 'pin-in-uri.json');
    writeFileSync(withPin, JSON.stringify({ hsm: { caKeyUri: `pkcs11:token=station-ca;object=idevid-issuing-ca;type=private?pin-value=${pin}` } }));
    for (const args of [['ca', 'show'], ['ca', 'export'], ['batch', '--port', '/dev/null', '--out', join(dir, 'pin-uri-batch')]]) {
      const refused = await runStation(['--config', withPin, '--data-dir', dataDir, ...args]);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toContain('hsm.caKeyUri');
      expect(refused.stderr).toContain('PINs never go in URIs');
      expect(refused.stderr + refused.stdout).not.toContain(pin);
    }
    expect(defaultStationConfig().hsm.caKeyUri).toBeUndefined();
  });

  it('says which PIN source failed, and never prints a wrong PIN', async () => {
    const cfg = join(dir, 'env-pin.json');
    writeFileSync(cfg, JSON.stringify({ hsm: { pin: { env: 'STATION_HSM_PIN' } } }));
    const r = await runStation(['--config', cfg, '--data-dir', dataDir, 'ca', 'show'], { env: cleanEnv({ STATION_HSM_PIN: 'wrong-pin-1234' }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('HSM_LOGIN_FAILED');
    expect(r.stderr).not.toContain('wrong-pin-1234');
  });
});
