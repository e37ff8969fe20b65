import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs, parseEnv } from 'node:util';
import {
  DescribeParametersCommand,
  type ParameterMetadata,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { parse } from 'yaml';
import { ConfigError } from '#lib/errors';
import {
  parseSecrets,
  refundSecretNamesFor,
  type SecretName,
  secretNamesFor,
  ssmParameterName,
} from '#lib/secrets';
import { readSettings, type Settings } from '#lib/settings';

/**
 * `npm run secrets -- --stage <stage> [--from <file>] [--overwrite]`: puts every secret the stage's pay
 * version needs into SSM as SecureString under the stage's KMS key (alias/<service>-<stage>-secrets, made
 * by the deploy), from a git-ignored dotenv file (default secrets/<stage>.env; `file:<path>` values are
 * read from that path, relative to the file) or, on a terminal, prompts. Values are checked with the
 * functions' own parseSecrets before anything is written; existing parameters are kept unless
 * --overwrite. Prints what it put, kept and what is still missing; exits 1 when something is missing or
 * malformed. AWS credentials and endpoint come from the usual AWS environment (AWS_PROFILE …).
 */

const ROOT = resolve(import.meta.dirname, '..');
const stageFile = createRequire(import.meta.url)('./stage.cjs') as {
  readStageFile: (stage: string) => Record<string, string>;
};
/** Standard-tier parameters hold 4 KB; several certificates need the advanced tier. */
const STANDARD_LIMIT = 4096;
const PEMS: SecretName[] = ['WECHAT_MCH_PRIVATE_KEY', 'WECHAT_PAY_PUBLIC_KEY', 'WECHAT_PAY_PLATFORM_CERTS'];
const ALTERNATIVES: SecretName[] = ['WECHAT_PAY_PUBLIC_KEY', 'WECHAT_PAY_PLATFORM_CERTS'];

const { values: args } = parseArgs({
  options: {
    stage: { type: 'string' },
    from: { type: 'string' },
    overwrite: { type: 'boolean', default: false },
  },
});
if (!args.stage) {
  console.error('usage: npm run secrets -- --stage <stage> [--from secrets/<stage>.env] [--overwrite]');
  process.exit(2);
}
const stage = args.stage;

/** The stage's settings, as the deployed functions will read them, and its region. */
function stageSettings(): { settings: Settings; region: string } {
  const values = stageFile.readStageFile(stage);
  const { service } = parse(readFileSync(resolve(ROOT, 'serverless.yml'), 'utf8')) as { service: string };
  return {
    settings: readSettings({ ...values, SERVICE_NAME: service, STAGE: stage }),
    region: values.REGION as string,
  };
}

/** Secret values from the dotenv file, `file:` references resolved relative to it. */
function fileValues(path: string): Partial<Record<SecretName, string>> {
  if (!existsSync(path)) return {};
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(parseEnv(readFileSync(path, 'utf8')))) {
    if (value === undefined || value === '') continue;
    values[name] = value.startsWith('file:')
      ? readFileSync(resolve(dirname(path), value.slice(5)), 'utf8')
      : value;
  }
  return values;
}

async function prompt(name: SecretName): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  try {
    if (PEMS.includes(name)) {
      const path = (await rl.question(`${name}: path to the PEM file (empty to skip): `)).trim();
      return path ? readFileSync(resolve(path), 'utf8') : '';
    }
    // Do not echo the secret: print the question, then mute the terminal while it is typed.
    process.stdout.write(`${name} (input hidden, empty to skip): `);
    const mutable = rl as unknown as { _writeToOutput: (text: string) => void };
    mutable._writeToOutput = () => {};
    const answer = (await rl.question('')).trim();
    process.stdout.write('\n');
    return answer;
  } finally {
    rl.close();
  }
}

async function existingParameters(ssm: SSMClient, prefix: string): Promise<Map<string, ParameterMetadata>> {
  const found = new Map<string, ParameterMetadata>();
  let NextToken: string | undefined;
  do {
    const page = await ssm.send(
      new DescribeParametersCommand({
        ParameterFilters: [{ Key: 'Name', Option: 'BeginsWith', Values: [prefix] }],
        NextToken,
      }),
    );
    for (const parameter of page.Parameters ?? []) if (parameter.Name) found.set(parameter.Name, parameter);
    NextToken = page.NextToken;
  } while (NextToken);
  return found;
}

let settings: Settings;
let region: string;
try {
  ({ settings, region } = stageSettings());
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
const from = resolve(args.from ?? `secrets/${stage}.env`);
const supplied = fileValues(from);
// The official account's secret only when the stage has H5 (WECHAT_MP_APPID); without it H5 stays off.
const needed = [
  ...new Set([...secretNamesFor(settings.payVersion), ...refundSecretNamesFor(settings.payVersion)]),
].filter((name) => name !== 'WECHAT_MP_SECRET' || settings.mpAppId);
const keyId = `alias/${settings.service}-${stage}-secrets`;
const ssm = new SSMClient({ region });
const existing = await existingParameters(ssm, `/${settings.service}/${stage}/`);

console.log(
  `stage ${stage} (${settings.payVersion}, ${region}); secrets from ${existsSync(from) ? relative(ROOT, from) : 'prompts'}; key ${keyId}`,
);
const report: [SecretName, string][] = [];
const toPut: [SecretName, string][] = [];
const problems: string[] = [];
for (const name of needed) {
  const path = ssmParameterName(settings, name);
  const current = existing.get(path);
  if (current && !args.overwrite) {
    const plain = current.Type !== 'SecureString';
    report.push([
      name,
      plain ? `exists as ${current.Type}: the functions refuse it, rerun with --overwrite` : 'kept',
    ]);
    if (plain) problems.push(`${name} is not a SecureString`);
    continue;
  }
  let value = supplied[name] ?? (process.stdin.isTTY && !existsSync(from) ? await prompt(name) : '');
  if (!value && name === 'JWT_SECRET' && !current) value = randomBytes(48).toString('base64');
  if (!value) {
    report.push([name, current ? 'kept' : 'missing']);
    continue;
  }
  try {
    parseSecrets({ [name]: value }, settings, [name]);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(error.detail ?? name);
    report.push([name, 'malformed']);
    continue;
  }
  toPut.push([name, value]);
}

// v3 needs the WeChat Pay public key or platform certificates, not both.
const has = (name: SecretName) =>
  toPut.some(([n]) => n === name) || existing.has(ssmParameterName(settings, name));
const missing = report
  .filter(([name, state]) => state === 'missing' && !(ALTERNATIVES.includes(name) && ALTERNATIVES.some(has)))
  .map(([name]) => name);
const reportOf = (name: SecretName) => report.find(([n]) => n === name);
for (const name of ALTERNATIVES) {
  const entry = reportOf(name);
  if (entry?.[1] === 'missing' && !missing.includes(name))
    entry[1] = 'not used (the other v3 key mode is set)';
}

if (problems.length === 0) {
  for (const [name, value] of toPut) {
    await ssm.send(
      new PutParameterCommand({
        Name: ssmParameterName(settings, name),
        Value: value,
        Type: 'SecureString',
        KeyId: keyId,
        Overwrite: args.overwrite,
        Tier: Buffer.byteLength(value) > STANDARD_LIMIT ? 'Advanced' : 'Standard',
      }),
    );
    report.push([name, supplied[name] || name !== 'JWT_SECRET' ? 'put' : 'put (generated)']);
  }
}

for (const name of needed) {
  const states = report.filter(([n]) => n === name).map(([, state]) => state);
  console.log(`  ${name.padEnd(26)} ${states.at(-1)}`);
}
for (const problem of problems)
  console.error(`refused: ${problem}${toPut.length ? ' (nothing was written)' : ''}`);
if (missing.length > 0) console.error(`missing: ${missing.join(', ')}`);
process.exit(problems.length > 0 || missing.length > 0 ? 1 : 0);
