/**
 * The station refuses to start on a bad HSM: wrong PIN, missing PKCS#11 module, a PIN file
 * others can read, a CA key weaker than required. Each says which and how to fix it (exit 3).
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultStationConfig } from '../../src/core/config';
import { Pkcs11Library } from '../../src/hsm/pkcs11/pkcs11-library';
import { Pkcs11Token } from '../../src/hsm/pkcs11/pkcs11-token';
import { cleanEnv, runStation, testDir } from '../helpers/station-cli';
import { openssl } from '../helpers/tools';

describe('station pki init and HSM start-up checks', () => {
  let dir: string;
  let dataDir: string;

  beforeAll(async () => {
    dir = testDir('hsm');
    dataDir = join(dir, 'data');
    const r = await runStation(['--data-dir', dataDir, 'pki', 'init']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('creates the CA keys on the token and a chain openssl accepts; a second run changes nothing', async () => {
    const chain = readFileSync(join(dataDir, 'pki', 'idevid-chain.pem'), 'utf8');
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const v = openssl(['verify', '-x509_strict', '-CAfile', join(dataDir, 'pki', 'root-ca.pem'), join(dataDir, 'pki', 'issuing-ca.pem')]);
    expect(v.code).toBe(0);
    const text = openssl(['x509', '-in', join(dataDir, 'pki', 'issuing-ca.pem'), '-noout', '-text']).out;
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const again = await runStation(['--data-dir', dataDir, 'pki', 'init']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing changed');
    expect(readFileSync(join(dataDir, 'pki', 'idevid-chain.pem'), 'utf8')).toBe(chain);
  });

  it('keeps the PIN in a 0600 file, never in the command line or output', async () => {
    const pin = readFileSync(join(dataDir, 'hsm-pin'), 'utf8').trim();
    expect(pin.length).toBeGreaterThanOrEqual(16);
    const again = await runStation(['--data-dir', dataDir, 'pki', 'init']);
    expect(again.stdout + again.stderr).not.toContain(pin);
  });

  it('generates the CA key on the token: sensitive, never extractable, sign only', () => {
    process.env.SOFTHSM2_CONF = join(dataDir, 'softhsm2.conf');
    const token = Pkcs11Token.login(Pkcs11Library.open('/usr/lib/softhsm/libsofthsm2.so'), 'station-ca', readFileSync(join(dataDir, 'hsm-pin'), 'utf8').trim());
    try {
      const a = token.auditPrivateKey(token.findPrivateKey('idevid-issuing-ca')!);
      expect(a).toMatchObject({ token: true, private: true, sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true, local: true, sign: true, decrypt: false, unwrap: false, derive: false });
    } finally {
      token.close();
    }
  });

  it('refuses to start with a wrong PIN, naming the PIN source', async () => {
    const r = await runStation(['--data-dir', dataDir, 'batch', '--port', '/dev/null', '--out', join(dir, 'wrong-pin')], {
      env: cleanEnv({ STATION_HSM_PIN: 'not-the-pin' }),
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('HSM_LOGIN_FAILED');
    expect(r.stderr).toContain('CKR_PIN_INCORRECT');
    expect(r.stderr).not.toContain('not-the-pin');
  });

  it('refuses to start without the PKCS#11 module, saying how to install it', async () => {
    const cfg = join(dir, 'no-module.json');
    writeFileSync(cfg, JSON.stringify({ hsm: { module: '/nonexistent/libsofthsm2.so' } }));
    const r = await runStation(['--config', cfg, '--data-dir', dataDir, 'batch', '--port', '/dev/null', '--out', join(dir, 'no-module')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('HSM_MODULE_MISSING');
    expect(r.stderr).toContain('apt-get install softhsm2');
  });

  it('refuses a PIN file that others can read', async () => {
    const pinFile = join(dataDir, 'hsm-pin');
    chmodSync(pinFile, 0o644);
    try {
      const r = await runStation(['--data-dir', dataDir, 'batch', '--port', '/dev/null', '--out', join(dir, 'pin-mode')]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('HSM_PIN_FILE_MODE');
      expect(r.stderr).toContain('chmod 600');
    } finally {
      chmodSync(pinFile, 0o600);
    }
  });

  it('refuses a CA key weaker than required, listing what it lacks', async () => {
    process.env.SOFTHSM2_CONF = join(dataDir, 'softhsm2.conf');
    const token = Pkcs11Token.login(Pkcs11Library.open('/usr/lib/softhsm/libsofthsm2.so'), 'station-ca', readFileSync(join(dataDir, 'hsm-pin'), 'utf8').trim());
    try {
      if (!token.findPrivateKey('weak-ca')) token.generateEcP256KeyPair({ label: 'weak-ca', token: true, usage: { sign: true, derive: true }, extractable: true });
    } finally {
      token.close();
    }
    const cfg = join(dir, 'weak.json');
    writeFileSync(cfg, JSON.stringify({ hsm: { ...defaultStationConfig().hsm, caKeyLabel: 'weak-ca' } }));
    const r = await runStation(['--config', cfg, '--data-dir', dataDir, 'batch', '--port', '/dev/null', '--out', join(dir, 'weak')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('HSM_CA_KEY_WEAK');
    expect(r.stderr).toContain('CKA_EXTRACTABLE=false');
    expect(r.stderr).toContain('CKA_DERIVE=false');
  });
});
