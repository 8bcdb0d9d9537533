/**
 * `station profile lint CERT... [--profile PRODUCT] [--json]` (contracts.md §2): checks any
 * certificate, PEM or DER, ours or another tool's, against a product's IDevID profile and
 * reports every fault with its stable code (docs/idevid-profile.md).
 * Exit 0: every certificate lints clean (warnings allowed); 1: at least one fault; 2: usage
 * (unknown product, unreadable file, no certificate in a file).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { ConfigError, StationError } from '../../core/errors';
import { LINT_CODES, certificatesFromFile, lintFaults, lintIdevid, type LintFinding } from '../../hsm/ca/profile-lint';
import { ExitCode, exitCodeFor } from './exit-codes';
import { cliErrorLine, cliIo, type CliIoDeps } from './cli-support';

export interface ProfileCommandDeps extends CliIoDeps {
  loadConfig(path: string | undefined): StationConfig;
  readFile?: (path: string) => Buffer;
}

interface LintOptions {
  profile?: string;
  json?: boolean;
}

export interface CertificateLintResult {
  file: string;
  /** Position of the certificate in its file (PEM files may hold several). */
  index: number;
  profile: string;
  ok: boolean;
  findings: LintFinding[];
}

/** The product whose profile to use: --profile, else the default work order's product. */
export function lintProduct(config: StationConfig, name: string | undefined): string {
  const product = name ?? config.workOrders.find((w) => w.id === config.defaultWorkOrder)?.product;
  if (!product || !config.products[product]) {
    throw new ConfigError('PRODUCT_UNKNOWN', `No product ${JSON.stringify(product ?? '')} in the configuration; known: ${Object.keys(config.products).join(', ') || '(none)'}.`);
  }
  return product;
}

export function lintFile(config: StationConfig, product: string, file: string, bytes: Buffer): CertificateLintResult[] {
  const profile = config.products[product]!;
  const certs = certificatesFromFile(bytes);
  if (certs.length === 0) throw new ConfigError('LINT_NO_CERTIFICATE', `${file} holds no CERTIFICATE block.`);
  return certs.map((der, index) => {
    const findings = lintIdevid(der, profile.idevid, { model: profile.model });
    return { file, index, profile: product, ok: lintFaults(findings).length === 0, findings };
  });
}

function formatResult(r: CertificateLintResult, multi: boolean): string {
  const name = multi ? `${r.file}[${r.index}]` : r.file;
  const lines = [`${name}: ${r.ok ? 'OK' : 'FAULTS'} (profile ${r.profile})`];
  for (const f of r.findings) lines.push(`  ${f.severity === 'error' ? 'FAULT  ' : 'WARNING'} ${f.code}: ${f.message}`);
  return lines.join('\n') + '\n';
}

export function registerProfileCommand(program: Command, deps: ProfileCommandDeps): Command {
  const { out, err, exit } = cliIo(deps);
  const readFile = deps.readFile ?? ((path: string) => readFileSync(path));

  const profile = program.command('profile').description('IDevID profiles of the configured products');
  profile
    .command('lint')
    .description('check certificates (PEM or DER, from any tool) against a product\'s IDevID profile; exit 0 clean, 1 faults, 2 usage')
    .argument('<CERT...>', 'certificate files (PEM with one or more certificates, or DER)')
    .option('--profile <PRODUCT>', 'product whose profile to lint against (default: the default work order\'s product)')
    .option('--json', 'one JSON object per certificate: { file, index, profile, ok, findings: [{ code, severity, message }] }')
    .addHelpText('after', `\nCodes:\n${Object.entries(LINT_CODES).map(([c, m]) => `  ${c}: ${m}`).join('\n')}\n`)
    .action((files: string[], opts: LintOptions) => {
      const g = program.opts<{ config?: string }>();
      try {
        const config = deps.loadConfig(g.config);
        const product = lintProduct(config, opts.profile);
        const results: CertificateLintResult[] = [];
        for (const file of files) {
          let bytes: Buffer;
          try {
            bytes = readFile(file);
          } catch (e) {
            throw new ConfigError('LINT_FILE_UNREADABLE', `Cannot read ${file}: ${(e as Error).message}`);
          }
          results.push(...lintFile(config, product, file, bytes));
        }
        const multi = results.length > files.length;
        for (const r of results) out.write(opts.json ? JSON.stringify(r) + '\n' : formatResult(r, multi));
        exit(results.every((r) => r.ok) ? ExitCode.OK : ExitCode.DEVICE_FAILED);
      } catch (e) {
        err.write(cliErrorLine(e));
        exit(e instanceof StationError ? exitCodeFor(e) : ExitCode.USAGE);
      }
    });
  return profile;
}
