/** Validates every report the suite writes against docs/report.schema.json. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { REPO } from './station-cli';

let validator: ReturnType<Ajv['compile']> | undefined;

export function validateReport(reportPath: string): unknown {
  if (!validator) {
    const schema = JSON.parse(readFileSync(join(REPO, 'docs/report.schema.json'), 'utf8')) as object;
    validator = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }
  const report: unknown = JSON.parse(readFileSync(reportPath, 'utf8'));
  if (!validator(report)) {
    throw new Error(`${reportPath} does not match docs/report.schema.json: ${JSON.stringify(validator.errors, null, 2)}`);
  }
  return report;
}
