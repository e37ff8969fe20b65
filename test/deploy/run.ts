import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DeleteTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  GetFunctionConfigurationCommand,
  GetFunctionUrlConfigCommand,
  LambdaClient,
  ListFunctionsCommand,
} from '@aws-sdk/client-lambda';
import {
  DeleteParameterCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { readServerlessYml } from '#local/serverless-routes';
import { type Template, templateProblems } from './template-checks';

/**
 * `npm run test:deploy`: rehearses a production deploy without an AWS account (README, Deploy).
 * 1. `serverless package` for v2 and v3 with 16-character stages, and a stage with missing settings that
 *    must fail before CloudFormation, naming them.
 * 2. cfn-lint: zero errors, zero warnings but W3005 (the framework's redundant DependsOn: harmless).
 * 3. Static checks (template-checks.ts), role names for every region, source maps consistent.
 * 4. moto_server on a free loopback port: deploy the v3 package, check what was created through the AWS
 *    SDK, `npm run secrets` against it, the real config loader against moto's SSM (loads; missing,
 *    malformed and String parameters fail closed naming the parameter; a silent SSM fails within the
 *    function's budget), `serverless remove` (tables and key are kept), then start the stage over and
 *    deploy again.
 * Needs python3 with cfn-lint and moto[server] (boto3); says which is missing.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const SERVICE = 'wechat-miniprogram-backend';
const REGION = 'ap-southeast-1';
const STAGES = { v2: 'rehearsal-stage2', v3: 'rehearsal-stage3' } as const;
const stageModule = createRequire(import.meta.url)('../../deploy/stage.cjs') as {
  roleNamePrefix: (service: string, stage: string, region: string) => string;
  MAX_STAGE_LENGTH: number;
};
/** Every AWS region name length that exists (longest first matters): 14–15 characters at most today. */
const REGIONS = [
  'ap-southeast-1',
  'ap-northeast-3',
  'us-gov-west-1',
  'cn-northwest-1',
  'ap-southeast-7',
  'us-isob-east-1',
];

const started = performance.now();
const failures: string[] = [];
let moto: ChildProcess | undefined;

function step(name: string): () => void {
  const at = performance.now();
  console.log(`▶ ${name}`);
  return () => console.log(`  ✓ ${name} (${((performance.now() - at) / 1000).toFixed(1)} s)`);
}

function check(condition: unknown, message: string): void {
  if (!condition) {
    failures.push(message);
    console.log(`  ✗ ${message}`);
  }
}

function fatal(message: string): never {
  console.error(`✗ ${message}`);
  moto?.kill();
  process.exit(1);
}

interface Run {
  code: number;
  out: string;
}

/** Runs a command, resolving with its exit code and combined output (never rejects on a non-zero exit). */
function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  input?: string,
): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.stdin.end(input ?? '');
    child.on('close', (code) => done({ code: code ?? 1, out }));
  });
}

let python = 'python3';

/**
 * Finds a Python 3 with cfn-lint and moto: $PYTHON, else each python3 on PATH (npm puts the Node binary's
 * directory first, which may hold a system python3 without them). Exits naming what is missing.
 */
async function prerequisites(): Promise<void> {
  const candidates = [
    process.env.PYTHON,
    ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, 'python3')),
  ].filter((c): c is string => Boolean(c) && existsSync(c as string));
  if (candidates.length === 0)
    fatal('python3 is not installed: test:deploy needs Python 3 with cfn-lint and moto');
  const missing = new Set<string>();
  for (const candidate of [...new Set(candidates)]) {
    const lacks: string[] = [];
    if ((await run(candidate, ['-c', 'import cfnlint.runner'])).code !== 0)
      lacks.push('cfn-lint (pip install cfn-lint)');
    if ((await run(candidate, ['-c', 'import moto.server, boto3, flask'])).code !== 0) {
      lacks.push("moto with its server (pip install 'moto[server]')");
    }
    if (lacks.length === 0) {
      python = candidate;
      return;
    }
    for (const what of lacks) missing.add(what);
  }
  fatal(
    `test:deploy needs ${[...missing].join(' and ')} (python3 tried: ${[...new Set(candidates)].join(', ')})`,
  );
}

/** The environment `serverless` runs with: no local-stack or WeChat values from the caller's shell. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(WECHAT_|JWT_|SANDBOX_|AWS_|IS_LOCAL_STACK|SECRETS_SOURCE|DYNAMODB_)/.test(name))
      env[name] = value;
  }
  return { ...env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', ...extra };
}

const work = await mkdtemp(join(tmpdir(), 'test-deploy-'));
const stagesDir = join(work, 'stages');
await mkdir(stagesDir);
const example = Object.fromEntries(
  (await readFile(join(ROOT, '.env.example'), 'utf8'))
    .split('\n')
    .map((line) => /^([A-Z0-9_]+)=([^\s#]*)/.exec(line))
    .flatMap((m) => (m ? [[m[1], m[2]]] : [])),
) as Record<string, string>;
await writeFile(
  join(stagesDir, `${STAGES.v2}.yml`),
  [
    `WECHAT_APPID: ${example.WECHAT_APPID}`,
    `WECHAT_MCH_ID: '${example.WECHAT_MCH_ID}'`,
    'WECHAT_PAY_VERSION: v2',
    'DOMAIN_NAME: api.example.com',
    `DOMAIN_CERTIFICATE_ARN: arn:aws:acm:${REGION}:123456789012:certificate/00000000-0000-0000-0000-000000000000`,
    'NOTIFY_ON_DOMAIN: true',
    'ALARM_EMAIL: ops@example.com',
    'RETAIN_DATA: false',
  ].join('\n'),
);
await writeFile(
  join(stagesDir, `${STAGES.v3}.yml`),
  [
    `WECHAT_APPID: ${example.WECHAT_APPID}`,
    `WECHAT_MCH_ID: '${example.WECHAT_MCH_ID}'`,
    'WECHAT_PAY_VERSION: v3',
    `WECHAT_MCH_SERIAL_NO: ${example.WECHAT_MCH_SERIAL_NO}`,
    `WECHAT_PAY_PUBLIC_KEY_ID: ${example.WECHAT_PAY_PUBLIC_KEY_ID}`,
    'TRACING: true',
    'PAY_NOTIFY_RESERVED_CONCURRENCY: 5',
  ].join('\n'),
);
await writeFile(join(stagesDir, 'broken.yml'), 'WECHAT_PAY_VERSION: v3\nWECHAT_MCH_ID: 1900000109\n');

const serverless = join(ROOT, 'node_modules/serverless/bin/serverless.js');
const sls = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [serverless, ...args], cleanEnv({ STAGE_SETTINGS_DIR: stagesDir, ...extra }));
const packageDir = (version: 'v2' | 'v3') => join(work, `package-${version}`);

try {
  await prerequisites();

  // moto starts while the packages build; cfn-lint runs while moto deploys.
  moto = spawn(python, [join(ROOT, 'test/deploy/moto_launcher.py'), work], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const motoPort = new Promise<number>((resolvePort, reject) => {
    let text = '';
    moto?.stdout?.on('data', (chunk) => {
      text += chunk;
      const match = /port (\d+)/.exec(text);
      if (match) resolvePort(Number(match[1]));
    });
    moto?.on('exit', (code) => reject(new Error(`moto_server exited (${code})`)));
  });
  const lint = (version: 'v2' | 'v3') =>
    run(python, [
      '-c',
      'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())',
      '--regions',
      REGION,
      // W3005: the framework writes DependsOn entries that a Ref already implies. Harmless.
      '--ignore-checks',
      'W3005',
      '--',
      join(packageDir(version), 'cloudformation-template-update-stack.json'),
    ]);
  const lints: Promise<Run>[] = [];

  // 1. Package (one at a time: serverless-esbuild builds in the service directory) and a broken stage.
  let done = step('package v2 and v3 (16-character stages); a stage missing settings fails first');
  const broken = sls(['package', '--stage', 'broken', '--package', join(work, 'package-broken')]);
  for (const version of ['v2', 'v3'] as const) {
    const result = await sls(['package', '--stage', STAGES[version], '--package', packageDir(version)]);
    if (result.code !== 0) fatal(`serverless package (${version}) failed:\n${result.out}`);
    lints.push(lint(version));
  }
  const refused = await broken;
  check(refused.code !== 0, 'packaging a stage with missing settings must fail');
  for (const name of ['WECHAT_APPID is required', 'WECHAT_MCH_SERIAL_NO is required']) {
    check(refused.out.includes(name), `the refusal names the setting: expected "${name}" in\n${refused.out}`);
  }
  check(!refused.out.includes('Service packaged'), 'refused before anything was packaged');
  done();

  // 3. Static checks.
  done = step('static template checks');
  const templates: Record<'v2' | 'v3', Template> = {
    v2: JSON.parse(
      await readFile(join(packageDir('v2'), 'cloudformation-template-update-stack.json'), 'utf8'),
    ),
    v3: JSON.parse(
      await readFile(join(packageDir('v3'), 'cloudformation-template-update-stack.json'), 'utf8'),
    ),
  };
  for (const version of ['v2', 'v3'] as const) {
    for (const problem of templateProblems(templates[version], { region: REGION }))
      check(false, `${version}: ${problem}`);
    const fn = (name: string) => templates[version].Resources[name]?.Properties;
    const env = fn('CreatePaymentLambdaFunction')?.Environment?.Variables ?? {};
    check(env.WECHAT_PAY_VERSION === version, `${version}: createPayment runs ${env.WECHAT_PAY_VERSION}`);
    // Source maps: shipped and enabled together.
    const zip = await readFile(join(packageDir(version), 'createPayment.zip'));
    check(
      zip.includes('create-payment.mjs.map') ===
        String(env.NODE_OPTIONS ?? '').includes('--enable-source-maps'),
      `${version}: NODE_OPTIONS=--enable-source-maps and the .map files go together`,
    );
  }
  const v2 = templates.v2.Resources;
  const v3 = templates.v3.Resources;
  check(v2.ApiDomainName && v2.ApiDomainMapping, 'v2 (DOMAIN_NAME): custom domain and mapping');
  check(
    v2.CreatePaymentLambdaFunction?.Properties.Environment.Variables.WECHAT_NOTIFY_URL ===
      'https://api.example.com/wechat/notify',
    'v2 (NOTIFY_ON_DOMAIN): notify URL on the custom domain',
  );
  check(
    v2.AlarmTopic?.Properties.Subscription?.[0]?.Endpoint === 'ops@example.com',
    'v2: alarm email subscription',
  );
  check(v2.UsersTable?.DeletionPolicy === 'Delete', 'v2 (RETAIN_DATA false): tables deleted with the stack');
  check(v3.UsersTable?.DeletionPolicy === 'RetainExceptOnCreate', 'v3: tables RetainExceptOnCreate');
  check(v3.SecretsKey?.DeletionPolicy === 'RetainExceptOnCreate', 'v3: key RetainExceptOnCreate');
  check(
    v3.PayNotifyLambdaFunction?.Properties.ReservedConcurrentExecutions === 5,
    'v3: payNotify reserved concurrency',
  );
  check(v3.PayNotifyLambdaFunction?.Properties.TracingConfig?.Mode === 'Active', 'v3: X-Ray tracing');
  check(v3.HttpApiStage?.Properties.AccessLogSettings, 'access logs on the HTTP API stage');
  check(v3.HttpApiLogGroup?.Properties.RetentionInDays === 30, 'access logs kept 30 days');
  for (const name of [
    'PayNotifyErrorsAlarm',
    'PayNotifyUrl5xxAlarm',
    'HttpApi5xxAlarm',
    'SignInThrottlesAlarm',
  ]) {
    check(v3[name]?.Type === 'AWS::CloudWatch::Alarm', `alarm ${name}`);
  }
  const longestFunction = Math.max(
    ...Object.entries(v3).flatMap(([, r]) =>
      r.Type === 'AWS::IAM::Role' && typeof r.Properties.RoleName === 'string'
        ? [r.Properties.RoleName.split('-').at(-1).length]
        : [],
    ),
  );
  const longestStage = 'a'.repeat(stageModule.MAX_STAGE_LENGTH);
  for (const region of REGIONS) {
    const length = stageModule.roleNamePrefix(SERVICE, longestStage, region).length + 1 + longestFunction;
    check(length <= 64, `role names fit 64 characters in ${region} for a 16-character stage (${length})`);
  }
  done();

  // 4. The rehearsal on moto.
  const port = await motoPort;
  const endpoint = `http://127.0.0.1:${port}`;
  const aws = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: REGION,
  };
  const clientConfig = {
    endpoint,
    region: REGION,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const lambda = new LambdaClient(clientConfig);
  const ssm = new SSMClient(clientConfig);
  const dynamodb = new DynamoDBClient(clientConfig);

  const stage = STAGES.v3;
  const prefix = `/${SERVICE}/${stage}`;
  const deploy = async (label: string) => {
    const finish = step(`serverless deploy --stage ${stage} (${label})`);
    const result = await sls(['deploy', '--stage', stage, '--package', packageDir('v3')], aws);
    if (result.code !== 0) fatal(`serverless deploy failed:\n${result.out}`);
    finish();
  };
  const deployed = async () => {
    const finish = step('deployed resources, through the AWS SDK');
    const { Functions = [] } = await lambda.send(new ListFunctionsCommand({}));
    const names = Functions.map((f) => f.FunctionName).filter((n) => n?.startsWith(`${SERVICE}-${stage}-`));
    const expected = Object.keys(readServerlessYml().functions ?? {}).length;
    check(
      names.length === expected,
      `${expected} functions deployed, as serverless.yml lists (found ${names.length})`,
    );
    const url = await lambda.send(
      new GetFunctionUrlConfigCommand({ FunctionName: `${SERVICE}-${stage}-payNotify` }),
    );
    check(
      url.FunctionUrl?.startsWith('https://') && url.AuthType === 'NONE',
      'payNotify has a public Function URL',
    );
    const createPayment = await lambda.send(
      new GetFunctionConfigurationCommand({ FunctionName: `${SERVICE}-${stage}-createPayment` }),
    );
    check(
      createPayment.Environment?.Variables?.WECHAT_NOTIFY_URL === url.FunctionUrl,
      "createPayment's WECHAT_NOTIFY_URL is payNotify's Function URL",
    );
    const iam = new IAMClient(clientConfig);
    for (const [, role] of Object.entries(v3).filter(([, r]) => r.Type === 'AWS::IAM::Role')) {
      const { Role } = await iam.send(new GetRoleCommand({ RoleName: role.Properties.RoleName }));
      check(Role?.RoleName === role.Properties.RoleName, `role ${role.Properties.RoleName} exists`);
    }
    const orders = await dynamodb.send(new DescribeTableCommand({ TableName: `${SERVICE}-${stage}-orders` }));
    check(
      orders.Table?.GlobalSecondaryIndexes?.[0]?.IndexName === 'byUser',
      'orders table with its byUser index',
    );
    await dynamodb.send(new DescribeTableCommand({ TableName: `${SERVICE}-${stage}-users` }));
    const stack = await new CloudFormationClient(clientConfig).send(
      new DescribeStacksCommand({ StackName: `${SERVICE}-${stage}` }),
    );
    check(/COMPLETE$/.test(stack.Stacks?.[0]?.StackStatus ?? ''), 'stack complete');
    finish();
    return {
      functionEnv: (name: string) =>
        lambda.send(new GetFunctionConfigurationCommand({ FunctionName: `${SERVICE}-${stage}-${name}` })),
    };
  };

  await deploy('first deploy');
  const { functionEnv } = await deployed();

  // Secrets.
  done = step('npm run secrets against moto');
  const keys = join(ROOT, 'local/keys');
  const goodSecrets = [
    `WECHAT_SECRET=${'s'.repeat(32)}`,
    `WECHAT_APIV3_KEY=${example.WECHAT_APIV3_KEY}`,
    `WECHAT_MCH_PRIVATE_KEY=file:${join(keys, 'merchant-private.pem')}`,
    `WECHAT_PAY_PUBLIC_KEY=file:${join(keys, 'wechatpay-public.pem')}`,
  ];
  const secretsFile = join(work, 'secrets.env');
  const secrets = async (lines: string[], ...flags: string[]) => {
    await writeFile(secretsFile, lines.join('\n'));
    return run(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'deploy/secrets.ts'), '--stage', stage, '--from', secretsFile, ...flags],
      cleanEnv({ ...aws, STAGE_SETTINGS_DIR: stagesDir }),
    );
  };
  const stored = async () =>
    (await ssm.send(new GetParametersByPathCommand({ Path: prefix, WithDecryption: true }))).Parameters ?? [];
  const bad = await secrets([
    `WECHAT_APIV3_KEY=too-short`,
    goodSecrets[2] as string,
    goodSecrets[3] as string,
  ]);
  check(bad.code === 1, 'secrets: a malformed value is refused (exit 1)');
  check(
    bad.out.includes('WECHAT_APIV3_KEY must be exactly 32 bytes'),
    `secrets names the malformed one:\n${bad.out}`,
  );
  check(bad.out.includes('missing: WECHAT_SECRET'), `secrets prints what is missing:\n${bad.out}`);
  check(!bad.out.includes('too-short'), 'secrets never prints a value');
  check((await stored()).length === 0, 'secrets writes nothing when a value is refused');
  const good = await secrets(goodSecrets);
  check(good.code === 0, `secrets puts every v3 secret:\n${good.out}`);
  const params = await stored();
  check(
    params.length === 5 && params.every((p) => p.Type === 'SecureString'),
    `5 SecureString parameters (JWT_SECRET generated); found ${params.map((p) => `${p.Name}:${p.Type}`).join(', ')}`,
  );
  const again = await secrets(goodSecrets);
  check(
    again.code === 0 && /WECHAT_APIV3_KEY\s+kept/.test(again.out),
    `secrets keeps existing ones without --overwrite:\n${again.out}`,
  );
  done();

  // The real config loader against moto's SSM, with the deployed functions' environments.
  done = step('config loader against moto SSM (loads; missing, malformed, String; silent SSM)');
  const envOf = async (name: string) => ({
    ...cleanEnv(aws),
    ...(await functionEnv(name)).Environment?.Variables,
  });
  const paymentEnv = await envOf('createPayment');
  const probe = async (env: NodeJS.ProcessEnv) => {
    const result = await run(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test/deploy/config-probe.ts')],
      env,
    );
    return JSON.parse(result.out.trim().split('\n').at(-1) ?? '{}') as {
      ok: boolean;
      ms: number;
      error?: string;
    };
  };
  const put = (name: string, Value: string, Type: 'SecureString' | 'String' = 'SecureString') =>
    ssm.send(new PutParameterCommand({ Name: `${prefix}/${name}`, Value, Type, Overwrite: true }));
  const loaded = await probe(paymentEnv);
  check(loaded.ok, `createPayment's config loads from SSM: ${JSON.stringify(loaded)}`);
  const jwt = params.find((p) => p.Name === `${prefix}/JWT_SECRET`)?.Value as string;
  await ssm.send(new DeleteParameterCommand({ Name: `${prefix}/JWT_SECRET` }));
  const missing = await probe(paymentEnv);
  check(
    !missing.ok && missing.error === `SSM parameter ${prefix}/JWT_SECRET is missing`,
    `missing: ${JSON.stringify(missing)}`,
  );
  await put('JWT_SECRET', jwt);
  await put('WECHAT_APIV3_KEY', 'too-short');
  const malformed = await probe(paymentEnv);
  check(
    !malformed.ok && /WECHAT_APIV3_KEY/.test(malformed.error ?? ''),
    `malformed: ${JSON.stringify(malformed)}`,
  );
  check(!JSON.stringify(malformed).includes('too-short'), 'malformed: the value is not in the error');
  await put('WECHAT_APIV3_KEY', example.WECHAT_APIV3_KEY as string, 'String');
  const plain = await probe(paymentEnv);
  check(
    !plain.ok && plain.error === `SSM parameter ${prefix}/WECHAT_APIV3_KEY is not a SecureString`,
    `String: ${JSON.stringify(plain)}`,
  );
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((listening) => silent.listen(0, '127.0.0.1', listening));
  const notifyEnv = await envOf('payNotify');
  const budget = Number(notifyEnv.SSM_TIMEOUT_MS);
  const hung = await probe({
    ...notifyEnv,
    AWS_ENDPOINT_URL_SSM: `http://127.0.0.1:${(silent.address() as { port: number }).port}`,
  });
  check(
    !hung.ok && /SSM read failed/.test(hung.error ?? ''),
    `silent SSM fails closed: ${JSON.stringify(hung)}`,
  );
  check(
    hung.ms <= budget + 500,
    `silent SSM: payNotify gives up within its ${budget} ms budget (${Math.round(hung.ms)} ms)`,
  );
  check(sockets.size > 0, 'silent SSM: the probe did connect');
  for (const socket of sockets) socket.destroy();
  silent.close();
  done();

  // Remove: the data and the key stay (RETAIN_DATA), everything else goes.
  done = step(`serverless remove --stage ${stage}`);
  const removed = await sls(['remove', '--stage', stage], aws);
  if (removed.code !== 0) fatal(`serverless remove failed:\n${removed.out}`);
  const { Functions = [] } = await lambda.send(new ListFunctionsCommand({}));
  check(
    !Functions.some((f) => f.FunctionName?.startsWith(`${SERVICE}-${stage}-`)),
    'remove deletes the functions',
  );
  for (const table of ['users', 'orders']) {
    const kept = await dynamodb
      .send(new DescribeTableCommand({ TableName: `${SERVICE}-${stage}-${table}` }))
      .catch(() => undefined);
    check(kept?.Table, `remove keeps the ${table} table`);
  }
  check((await stored()).length === 5, 'remove keeps the SSM parameters');
  done();

  // README, "Start a removed stage over": delete the kept tables, deploy, put the secrets again.
  done = step('start the stage over: delete the kept tables');
  for (const table of ['users', 'orders']) {
    await dynamodb.send(new DeleteTableCommand({ TableName: `${SERVICE}-${stage}-${table}` }));
  }
  done();
  await deploy('redeploy after remove');
  await deployed();
  done = step('npm run secrets -- --overwrite (the new key), config loads again');
  const rotated = await secrets(goodSecrets, '--overwrite');
  check(
    rotated.code === 0 && /WECHAT_APIV3_KEY\s+put/.test(rotated.out),
    `secrets --overwrite:\n${rotated.out}`,
  );
  const reloaded = await probe(await envOf('createPayment'));
  check(reloaded.ok, `config loads after the redeploy: ${JSON.stringify(reloaded)}`);
  done();

  // 2. cfn-lint (started after each package).
  done = step('cfn-lint (v2, v3): no errors, no warnings but W3005');
  for (const [i, result] of (await Promise.all(lints)).entries()) {
    // Exit code bits: 2 error, 4 warning, 8 informational.
    check((result.code & 6) === 0, `cfn-lint ${['v2', 'v3'][i]} reported errors or warnings:\n${result.out}`);
  }
  done();
} finally {
  moto?.stdin?.end();
  moto?.kill();
  await rm(work, { recursive: true, force: true });
}

const seconds = ((performance.now() - started) / 1000).toFixed(0);
if (failures.length > 0) {
  console.error(`\n✗ test:deploy: ${failures.length} failed (${seconds} s)\n  - ${failures.join('\n  - ')}`);
  process.exit(1);
}
console.log(`\n✓ test:deploy passed (${seconds} s)`);
