/**
 * A throwaway TLS PKI made with openssl at run time (benches and tests; no private key is ever
 * committed): a CA, a server certificate for 127.0.0.1 / localhost, and a client certificate
 * issued by the same CA (standing in for the station CA's TLS certificate). Keys are 0600 files.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TlsTestPki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A P-256 key and a certificate for `cn` signed by the CA in `dir`, with `extensions` (openssl -extfile syntax). */
export function issueTlsCertificate(dir: string, name: string, cn: string, extensions: string): { cert: string; key: string } {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
  chmodSync(key, 0o600);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', csr], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-sha256', '-extfile', ext, '-out', cert], dir);
  return { cert, key };
}

export function makeTlsTestPki(dir: string, clientCn = 'station-1'): TlsTestPki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca-key.pem'], dir);
  chmodSync(join(dir, 'ca-key.pem'), 0o600);
  openssl(['req', '-x509', '-new', '-key', 'ca-key.pem', '-subj', '/CN=Sync Test CA', '-days', '2', '-sha256', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem'], dir);
  const server = issueTlsCertificate(dir, 'server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  const client = issueTlsCertificate(dir, 'client', clientCn, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  return { dir, caCert: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key };
}
