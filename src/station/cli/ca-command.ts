/**
 * `station ca create | install-chain | show | export` (contracts.md §2, docs/hsm.md): the IDevID
 * CA keys on the HSM and their certificate chains. The PIN comes from the configured source
 * (hsm.pin, or pin-source in hsm.caKeyUri), never from the command line. Exit codes: 0 done,
 * 2 usage or configuration, 3 HSM or CA (a key that exists, a chain for another key, a weak key).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { createCaKey, exportCa, installCaChain, showCa, type CaShowReport } from '../../hsm/ca/ca-admin';
import { ensureStationPki } from '../../hsm/identity/station-pki';
import { ExitCode } from './exit-codes';
import { cliIo, type CliIoDeps } from './cli-support';

export interface CaCommandDeps extends CliIoDeps {
  loadConfig(path: string | undefined): StationConfig;
}

interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

export function formatShowReport(r: CaShowReport): string {
  const lines: string[] = [];
  const k = r.key;
  lines.push(`module:       ${r.module.path} (${r.module.manufacturer}, ${r.module.description}, Cryptoki ${r.module.cryptokiVersion})`);
  lines.push(`token:        ${r.token.label} (serial ${r.token.serial}, ${r.token.manufacturer} ${r.token.model})`);
  lines.push(`PIN from:     ${r.pinSource}`);
  lines.push(`key:          ${k.label} (id ${k.id}), ${k.keyType} ${k.curve}, ${k.status === 'ok' ? 'OK' : 'WEAK'}`);
  lines.push(`  uri:        ${k.uri}`);
  lines.push(`  attributes: ${Object.entries(k.attributes).map(([n, v]) => `${n}=${yesNo(v)}`).join(' ')}`);
  if (k.weaknesses.length) lines.push(`  lacks:      ${k.weaknesses.join(', ')}`);
  lines.push(`  public key: SHA-256 ${k.publicKeySha256}`);
  const c = r.certificate;
  if (!c) {
    lines.push('certificate:  none');
  } else {
    lines.push(`certificate:  ${c.subject}`);
    lines.push(`  issuer:     ${c.issuer}${c.selfSigned ? ' (self-signed)' : ''}`);
    lines.push(`  serial:     ${c.serialNumber}`);
    lines.push(`  validity:   ${c.notBefore} to ${c.notAfter}`);
    lines.push(`  SKI:        ${c.subjectKeyIdentifier ?? '-'}`);
    lines.push(`  CA:         ${c.basicConstraints ? `CA:${c.basicConstraints.ca ? 'TRUE' : 'FALSE'}${c.basicConstraints.pathLen !== null ? `, pathlen:${c.basicConstraints.pathLen}` : ''}` : '-'}; keyUsage ${c.keyUsage.join(', ') || '-'}`);
    lines.push(`  chain:      ${c.chainPath} (${c.chainLength} certificate${c.chainLength === 1 ? '' : 's'}, ${c.chainValid ? 'valid' : 'NOT VALID'})`);
  }
  lines.push(`mechanisms:   ${Object.entries(r.mechanisms).map(([n, v]) => `${n} ${yesNo(v)}`).join(', ')}`);
  lines.push(r.ok ? 'status:       OK' : `status:       PROBLEMS\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  return lines.join('\n') + '\n';
}

export function registerCaCommand(program: Command, deps: CaCommandDeps): Command {
  const { out, err, exit, env, fail } = cliIo(deps);
  const context = () => {
    const g = program.opts<GlobalOptions>();
    const config = deps.loadConfig(g.config);
    return { config, dataDir: resolve(g.dataDir ?? 'data') };
  };

  const ca = program
    .command('ca')
    .description('IDevID CA keys on the HSM and their certificate chains (PIN from the configured source, never the command line)');

  ca.command('create')
    .description('generate a CA key on the token (P-256; sensitive, never extractable, sign only) and its certificate; never replaces a key')
    .requiredOption('--label <L>', 'label (CKA_LABEL) of the new key; its id is the label\'s bytes')
    .option('--subject <S>', 'subject, e.g. "C=DE,O=Example Devices Inc,CN=Example Issuing CA 2" (C, O, OU, CN; PrintableString)')
    .option('--parent-label <ROOT>', 'key on the same token that issues the certificate (pathlen 0); without it the certificate is a self-signed root')
    .option('--token <T>', 'token label (default: the configured token)')
    .action(async (opts: { label: string; subject?: string; parentLabel?: string; token?: string }) => {
      try {
        const { config, dataDir } = context();
        const wo = config.workOrders.find((w) => w.id === config.defaultWorkOrder);
        const organization = wo ? config.products[wo.product]?.idevid.organization : undefined;
        const r = await createCaKey({ hsm: config.hsm, dataDir, env, label: opts.label, subject: opts.subject, parentLabel: opts.parentLabel, token: opts.token, organization });
        out.write(
          `created key "${r.label}" on token ${r.token} (id ${r.keyId}): EC P-256, sensitive, never extractable, sign only\n` +
            `uri:         ${r.uri}\n` +
            `certificate: ${r.subject}\n` +
            `issuer:      ${r.issuer}${r.selfSigned ? ' (self-signed root)' : ''}\n` +
            `serial:      ${r.serialNumber}\n` +
            `chain:       ${r.chainPath} (${r.chainLength} certificate${r.chainLength === 1 ? '' : 's'})\n`,
        );
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });

  ca.command('install-chain')
    .description('install the certificate chain of a key already on the token, after checking it certifies that key and verifies up to a self-signed root')
    .requiredOption('--label <L>', 'label of the key on the token')
    .requiredOption('--chain <FILE>', 'PEM: the key\'s CA certificate first, then each issuer up to the root')
    .option('--token <T>', 'token label (default: the configured token)')
    .action((opts: { label: string; chain: string; token?: string }) => {
      try {
        const { config, dataDir } = context();
        const r = installCaChain({ hsm: config.hsm, dataDir, env, label: opts.label, chainFile: resolve(opts.chain), token: opts.token });
        out.write(
          `${r.changed ? (r.replaced ? 'replaced' : 'installed') : 'unchanged'}: ${r.chainPath}\n` +
            `key "${r.label}" on token ${r.token}: ${r.subject}, ${r.chainLength} certificate${r.chainLength === 1 ? '' : 's'} up to ${r.root}\n`,
        );
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });

  ca.command('show')
    .description('the token, the CA key\'s audited attributes, its certificate and chain, and the mechanisms the station needs (exit 3 when something is wrong)')
    .option('--label <L>', 'key label (default: the configured IDevID CA key)')
    .option('--token <T>', 'token label (default: the configured token)')
    .option('--json', 'print one JSON object')
    .action((opts: { label?: string; token?: string; json?: boolean }) => {
      try {
        const { config, dataDir } = context();
        const r = showCa({ hsm: config.hsm, dataDir, env, label: opts.label, token: opts.token });
        out.write(opts.json ? JSON.stringify(r, null, 2) + '\n' : formatShowReport(r));
        exit(r.ok ? ExitCode.OK : ExitCode.HSM);
      } catch (e) {
        fail(e);
      }
    });

  ca.command('station-cert')
    .description('records + sync: the station CA, the station identity key (signs device records; on the HSM) and its certificate (CN = station id), and the TLS client key (0600 file) and certificate for mTLS; creates what is missing')
    .option('--reissue', 'issue new station certificates and a new TLS client key even if the present ones are good')
    .action(async (opts: { reissue?: boolean }) => {
      try {
        const { config, dataDir } = context();
        const wo = config.workOrders.find((w) => w.id === config.defaultWorkOrder);
        const organization = (wo ? config.products[wo.product]?.idevid.organization : undefined) ?? 'Test Devices';
        const r = await ensureStationPki({ hsm: config.hsm, dataDir, stationId: config.stationId, organization, env, reissue: opts.reissue === true });
        const made = Object.entries(r.created).filter(([, v]) => v).map(([k]) => k);
        out.write(
          `${made.length ? `created: ${made.join(', ')}` : 'station certificates present and valid; nothing changed'}\n` +
            `station CA (give this to the MASA and the supply-chain service): ${r.paths.stationCa}\n` +
            `station certificate (record signing, CN=${config.stationId}): ${r.paths.identityCertificate}\n` +
            `TLS client key (0600): ${r.paths.clientKey}\nTLS client certificate: ${r.paths.clientCertificate}\n`,
        );
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });

  ca.command('export')
    .description('print the chain PEM (the CA certificate, then up to the root), or the CA public key with --public-key')
    .option('--label <L>', 'key label (default: the configured IDevID CA key)')
    .option('--token <T>', 'token label (default: the configured token)')
    .option('--out <FILE>', 'write to FILE instead of standard output')
    .option('--public-key', 'export the public key (PEM SubjectPublicKeyInfo) instead of the chain')
    .action((opts: { label?: string; token?: string; out?: string; publicKey?: boolean }) => {
      try {
        const { config, dataDir } = context();
        const r = exportCa({ hsm: config.hsm, dataDir, env, label: opts.label, token: opts.token, publicKey: opts.publicKey === true });
        if (opts.out) {
          const path = resolve(opts.out);
          writeFileSync(path, r.pem, { mode: 0o644 });
          err.write(`wrote ${path} (from ${r.source})\n`);
        } else {
          out.write(r.pem);
        }
        exit(ExitCode.OK);
      } catch (e) {
        fail(e);
      }
    });

  return ca;
}
