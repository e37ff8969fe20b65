import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnv, promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_NAMES } from '#lib/secrets';
import { packagingEnv } from '#local/packaging-env';
import { routes, templateProblems } from '#test/deploy/template-checks';
import { zipEntries } from '#test/helpers/zip';

/**
 * §5: `serverless package --stage prod` as CI would run it (no secrets in the environment, SECRETS_SOURCE
 * unset; the stage's settings from test/fixtures/stages/prod.yml), then properties of the synthesized
 * CloudFormation template. Every check iterates over all
 * functions, roles and tables, so it keeps holding as functions are added.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const SERVICE = 'wechat-miniprogram-backend';
const STAGE = 'prod';
const PARAMETER_ARN = new RegExp(
  `^arn:\\$\\{AWS::Partition\\}:ssm:\\$\\{AWS::Region\\}:\\$\\{AWS::AccountId\\}:parameter/${SERVICE}/${STAGE}/([A-Z0-9_]+)$`,
);
const ALLOWED_DYNAMODB = new Set([
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:Query',
  'dynamodb:BatchGetItem',
  'dynamodb:TransactWriteItems',
]);
/** Account deletion: the only roles that may delete items, and only from the users table (orders are kept). */
const DELETING_ROLES = ['DeleteMeIamRoleLambdaExecution', 'AdminDeleteUserIamRoleLambdaExecution'];
const FORBIDDEN_DYNAMODB = [
  'dynamodb:Scan',
  'dynamodb:BatchWriteItem',
  'dynamodb:CreateTable',
  'dynamodb:DeleteTable',
  'dynamodb:UpdateTable',
];
const SECRET_ENV_NAMES = [
  'WECHAT_SECRET',
  'JWT_SECRET',
  'WECHAT_MCH_KEY',
  'WECHAT_APIV3_KEY',
  'WECHAT_MCH_PRIVATE_KEY',
];

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON is walked generically.
type Json = any;
interface Resource {
  Type: string;
  Properties?: Json;
  [key: string]: Json;
}
interface Statement {
  Effect: string;
  Action?: string | string[];
  NotAction?: unknown;
  Resource?: Json;
  NotResource?: unknown;
}

let outDir: string;
let template: { Resources: Record<string, Resource> };
let templateText: string;

function resourcesOfType(type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

const list = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** The statements of an IAM role's inline policies. */
function statementsOf(role: Resource): Statement[] {
  return list(role.Properties?.Policies).flatMap((policy: Json) => list(policy.PolicyDocument?.Statement));
}

/** The logical id of the role a function runs as. */
function roleOf(fn: Resource): string {
  const role = fn.Properties?.Role;
  const id = role?.['Fn::GetAtt']?.[0];
  if (typeof id !== 'string')
    throw new Error(`function role is not a template role: ${JSON.stringify(role)}`);
  return id;
}

/** Whether a policy Resource is the ARN of one of the template's tables (or of one of its indexes). */
function isTableArn(resource: Json): boolean {
  const tableOf = (ref: Json): Resource | undefined => {
    const [id, attribute] = ref?.['Fn::GetAtt'] ?? [];
    const table = template.Resources[id];
    return attribute === 'Arn' && table?.Type === 'AWS::DynamoDB::Table' ? table : undefined;
  };
  if (tableOf(resource)) return true;
  const [separator, parts] = resource?.['Fn::Join'] ?? [];
  if (separator !== '' || !Array.isArray(parts) || parts.length !== 2) return false;
  const table = tableOf(parts[0]);
  const indexes = list(table?.Properties?.GlobalSecondaryIndexes).map(
    (index: Json) => `/index/${index.IndexName}`,
  );
  return indexes.includes(parts[1]);
}

/** The secret name of an SSM parameter ARN under /<service>/prod/, or undefined. */
function parameterName(resource: Json): string | undefined {
  const arn = typeof resource === 'string' ? resource : resource?.['Fn::Sub'];
  return typeof arn === 'string' ? PARAMETER_ARN.exec(arn)?.[1] : undefined;
}

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'sls-package-'));
  try {
    await promisify(execFile)('npx', ['serverless', 'package', '--stage', STAGE, '--package', outDir], {
      cwd: ROOT,
      env: packagingEnv(),
      timeout: 170_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`serverless package failed:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
  templateText = await readFile(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8');
  template = JSON.parse(templateText);
}, 180_000);

afterAll(async () => {
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

describe('serverless package --stage prod', () => {
  it('runs every function on nodejs24.x', () => {
    const functions = resourcesOfType('AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThanOrEqual(3);
    for (const [id, fn] of functions) expect(fn.Properties?.Runtime, id).toBe('nodejs24.x');
  });

  it('declares the sign-in and profile routes on the HTTP API', () => {
    const routes = resourcesOfType('AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties?.RouteKey);
    expect(routes).toEqual(
      expect.arrayContaining(['POST /wechat/sign_in', 'GET /wechat/me', 'PUT /wechat/info']),
    );
  });

  it('runs every function under a template role; the shared fallback role only writes logs', () => {
    const functions = resourcesOfType('AWS::Lambda::Function');
    const roles = functions.map(([, fn]) => roleOf(fn));
    for (const id of roles) expect(template.Resources[id]?.Type).toBe('AWS::IAM::Role');
    // Functions with no statements of their own share the framework's logs-only role.
    const shared = functions.filter(([, fn]) => roleOf(fn) === 'IamRoleLambdaExecution');
    for (const [id] of shared) {
      const actions = statementsOf(template.Resources.IamRoleLambdaExecution as Resource).flatMap((s) =>
        list(s.Action),
      );
      expect(
        actions.every((action) => action.startsWith('logs:')),
        id,
      ).toBe(true);
    }
  });

  it('grants no wildcard action or resource in any role', () => {
    const roles = [...resourcesOfType('AWS::IAM::Role'), ...resourcesOfType('AWS::IAM::Policy')];
    expect(roles.length).toBeGreaterThan(0);
    for (const [id, role] of roles) {
      const statements =
        role.Type === 'AWS::IAM::Policy'
          ? list<Statement>(role.Properties?.PolicyDocument?.Statement)
          : statementsOf(role);
      for (const statement of statements) {
        expect(statement.NotAction, id).toBeUndefined();
        expect(statement.NotResource, id).toBeUndefined();
        for (const action of list(statement.Action)) expect(action, id).not.toMatch(/^\*$|:\*$/);
        for (const resource of list(statement.Resource)) expect(resource, id).not.toBe('*');
      }
    }
  });

  it('lets functions use only GetItem, BatchGetItem, PutItem, UpdateItem, Query, TransactWriteItems, on table ARNs', () => {
    for (const [id, role] of resourcesOfType('AWS::IAM::Role')) {
      for (const statement of statementsOf(role)) {
        const actions = list(statement.Action).filter((action) => action.startsWith('dynamodb:'));
        if (actions.length === 0) continue;
        expect(statement.Effect, id).toBe('Allow');
        if (actions.includes('dynamodb:DeleteItem')) {
          expect(DELETING_ROLES, id).toContain(id);
          expect(actions, id).toEqual(['dynamodb:DeleteItem']);
          expect(statement.Resource, id).toEqual({ 'Fn::GetAtt': ['UsersTable', 'Arn'] });
          continue;
        }
        for (const action of actions) {
          expect(FORBIDDEN_DYNAMODB, `${id} ${action}`).not.toContain(action);
          expect(ALLOWED_DYNAMODB.has(action), `${id} ${action}`).toBe(true);
        }
        // A statement mixing DynamoDB with other services would widen one or the other.
        expect(
          list(statement.Action).every((action) => action.startsWith('dynamodb:')),
          id,
        ).toBe(true);
        const resources = list(statement.Resource);
        expect(resources.length, id).toBeGreaterThan(0);
        for (const resource of resources)
          expect(isTableArn(resource), `${id} ${JSON.stringify(resource)}`).toBe(true);
      }
    }
  });

  it('lets functions read only their own /<service>/prod/ SSM parameters, with ssm:GetParameters', () => {
    for (const [id, fn] of resourcesOfType('AWS::Lambda::Function')) {
      const role = template.Resources[roleOf(fn)] as Resource;
      const granted = new Set<string>();
      for (const statement of statementsOf(role)) {
        const actions = list(statement.Action).filter((action) => action.startsWith('ssm:'));
        if (actions.length === 0) continue;
        expect(actions, id).toEqual(['ssm:GetParameters']);
        expect(list(statement.Action), id).toEqual(['ssm:GetParameters']);
        for (const resource of list(statement.Resource)) {
          const name = parameterName(resource);
          expect(name, `${id} ${JSON.stringify(resource)}`).toBeDefined();
          expect(SECRET_NAMES as readonly string[], id).toContain(name);
          granted.add(name as string);
        }
      }
      // The parameters a function is allowed to read are exactly the secrets it loads (SECRET_NAMES).
      const wanted = String(fn.Properties?.Environment?.Variables?.SECRET_NAMES ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean);
      expect([...granted].sort(), id).toEqual([...wanted].sort());
    }
  });

  it('lets kms:Decrypt touch only the template key', () => {
    for (const [id, role] of resourcesOfType('AWS::IAM::Role')) {
      for (const statement of statementsOf(role)) {
        if (!list(statement.Action).some((action) => action.startsWith('kms:'))) continue;
        expect(list(statement.Action), id).toEqual(['kms:Decrypt']);
        for (const resource of list(statement.Resource)) {
          const [key, attribute] = resource?.['Fn::GetAtt'] ?? [];
          expect(template.Resources[key]?.Type, id).toBe('AWS::KMS::Key');
          expect(attribute, id).toBe('Arn');
        }
      }
    }
  });

  it('puts no secret in any function environment, and reads secrets from SSM', () => {
    for (const [id, fn] of resourcesOfType('AWS::Lambda::Function')) {
      const variables: Record<string, unknown> = fn.Properties?.Environment?.Variables ?? {};
      expect(variables.SECRETS_SOURCE, id).toBe('ssm');
      for (const [name, value] of Object.entries(variables)) {
        expect([...SECRET_ENV_NAMES, ...SECRET_NAMES], `${id} ${name}`).not.toContain(name);
        expect(name, id).not.toMatch(/SECRET$|PRIVATE|PASSWORD/);
        if (typeof value !== 'string') continue;
        expect(value, `${id} ${name}`).not.toMatch(/-----BEGIN [A-Z ]+-----/);
        expect(value, `${id} ${name}`).not.toMatch(/^[A-Za-z0-9]{32}$/);
        expect(value, `${id} ${name}`).not.toMatch(/resolve:ssm-secure/);
      }
    }
  });

  it('holds no key material or local secret anywhere in the template', async () => {
    expect(templateText).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    expect(templateText).not.toMatch(/resolve:ssm-secure/);
    const example = parseEnv(await readFile(join(ROOT, '.env.example'), 'utf8'));
    for (const name of SECRET_ENV_NAMES) {
      const value = example[name];
      if (value && !value.startsWith('file:')) expect(templateText, name).not.toContain(value);
    }
  });

  it('passes the deploy checks: stage after its routes, no Retain on named resources, names in limits', () => {
    expect(templateProblems(template, { region: 'ap-southeast-1' })).toEqual([]);
  });

  it('puts every /admin/ route behind the IAM authorizer, and none among the unauthenticated routes', () => {
    const all = routes(template);
    const admin = all.filter((route) => route.key.split(' ')[1]?.startsWith('/admin/'));
    expect(admin.map((route) => route.key)).toEqual(
      expect.arrayContaining([
        'POST /admin/reconcile',
        'GET /admin/orders/{outTradeNo}',
        'GET /admin/exceptions',
      ]),
    );
    for (const route of admin) expect(route.authorization, route.key).toBe('AWS_IAM');
    const open = all.filter((route) => route.authorization === 'NONE').map((route) => route.key);
    expect(open).toContain('POST /wechat/sign_in');
    expect(open.filter((key) => key.includes(' /admin/'))).toEqual([]);
  });

  it('leaves the notify Function URL the only public invoke, and runs the reconciler on a schedule', () => {
    const urls = resourcesOfType('AWS::Lambda::Url').map(([, url]) => [
      url.Properties?.TargetFunctionArn?.['Fn::GetAtt']?.[0],
      url.Properties?.AuthType,
    ]);
    expect(urls).toEqual([['PayNotifyLambdaFunction', 'NONE']]);
    const rules = resourcesOfType('AWS::Events::Rule').filter(([, rule]) =>
      rule.Properties?.Targets?.some((t: Json) => t.Arn?.['Fn::GetAtt']?.[0] === 'ReconcileLambdaFunction'),
    );
    expect(rules.map(([, rule]) => rule.Properties?.ScheduleExpression)).toEqual(['rate(5 minutes)']);
  });

  it('passes PUBLIC_API_URL to the two OAuth functions only, empty when the stage leaves it out', () => {
    const given = resourcesOfType('AWS::Lambda::Function')
      .filter(([, fn]) => fn.Properties?.Environment?.Variables?.PUBLIC_API_URL !== undefined)
      .map(([id, fn]) => [id, fn.Properties?.Environment?.Variables?.PUBLIC_API_URL]);
    expect(given).toEqual([
      ['OauthAuthorizeLambdaFunction', ''],
      ['OauthCallbackLambdaFunction', ''],
    ]);
  });

  it('protects both tables in prod: on-demand, point-in-time recovery, deletion protection', () => {
    const tables = resourcesOfType('AWS::DynamoDB::Table');
    expect(tables.map(([id]) => id)).toEqual(expect.arrayContaining(['UsersTable', 'OrdersTable']));
    for (const [id, table] of tables) {
      expect(table.Properties?.BillingMode, id).toBe('PAY_PER_REQUEST');
      expect(table.Properties?.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled, id).toBe(true);
      expect(table.Properties?.DeletionProtectionEnabled, id).toBe(true);
    }
  });

  it('bundles AWS credentials from the environment only: no default-chain provider in any function', async () => {
    // Prepare: every function's bundle (custom.esbuild.alias swaps the chain for lib/clients/lambda-credentials);
    // each provider of the chain logs `@aws-sdk/credential-provider-<name> - <function>`, so its code carries that.
    const zips = (await readdir(outDir)).filter((file) => file.endsWith('.zip'));
    const bundles = await Promise.all(
      zips.map(async (zip) => {
        const files = zipEntries(await readFile(join(outDir, zip)));
        return [...files]
          .filter(([name]) => name.endsWith('.mjs'))
          .map(([name, code]) => [zip, name, code] as const);
      }),
    );

    // Act
    const withChain = bundles
      .flat()
      .filter(([, , code]) => /credential-provider-[a-z-]+ - /.test(code.toString()))
      .map(([zip, name]) => `${zip}:${name}`);

    // Assess
    expect(bundles.flat().length).toBe(zips.length);
    expect(withChain).toEqual([]);
  });

  it('bundles only GetParameters of the SSM client, and imports no Node built-in as an ES module', async () => {
    // Prepare: every function's bundle (custom.esbuild.plugins: deploy/esbuild-plugins.cjs). Names the full SSM
    // client carries although GetParameters never uses them: errors of other operations and their shapes.
    const zips = (await readdir(outDir)).filter((file) => file.endsWith('.zip'));
    const bundles = await Promise.all(
      zips.map(async (zip) => {
        const files = zipEntries(await readFile(join(outDir, zip)));
        const [, code] = [...files].find(([name]) => name.endsWith('.mjs')) ?? [];
        return [zip, code?.toString() ?? ''] as const;
      }),
    );
    const fullSsm = [
      'ParameterNotFound',
      'ParameterAlreadyExists',
      'AutomationStepNotFoundException',
      'AssociationDescription',
    ];

    // Act
    const withFullSsm = bundles.filter(([, code]) => fullSsm.some((name) => code.includes(name)));
    const esImports = bundles.flatMap(([zip, code]) =>
      [...code.matchAll(/(?:from|import)\s*["']([\w@][\w:@./-]*)["']/g)]
        .map((match) => match[1])
        .filter((specifier) => specifier !== 'node:module')
        .map((specifier) => `${zip}: ${specifier}`),
    );

    // Assess
    expect(bundles.filter(([, code]) => code.includes('GetParametersCommand')).length).toBeGreaterThan(10);
    expect(withFullSsm.map(([zip]) => zip)).toEqual([]);
    expect(esImports).toEqual([]);
  });

  it('loads no undici when a function bundle is imported (an ES import of node:http would)', async () => {
    // Prepare: each bundle written out, imported by a fresh node with a Lambda-like environment.
    const zips = (await readdir(outDir)).filter((file) => file.endsWith('.zip'));
    const dir = await mkdtemp(join(outDir, 'bundles-'));
    const files = await Promise.all(
      zips.map(async (zip) => {
        const [, code] = [...zipEntries(await readFile(join(outDir, zip)))].find(([name]) =>
          name.endsWith('.mjs'),
        ) ?? ['', Buffer.alloc(0)];
        const file = join(dir, `${zip}.mjs`);
        await writeFile(file, code);
        return file;
      }),
    );
    const probe =
      "await import(process.argv[1]); console.log(process.moduleLoadList.some((name) => name.includes('undici')));";

    // Act
    const loaded: string[] = [];
    for (const file of files) {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--input-type=module', '-e', probe, file],
        {
          env: {
            PATH: process.env.PATH,
            AWS_REGION: 'ap-southeast-1',
            AWS_ACCESS_KEY_ID: 'test',
            AWS_SECRET_ACCESS_KEY: 'test',
          },
        },
      );
      if (stdout.trim() !== 'false') loaded.push(`${file}: ${stdout.trim()}`);
    }

    // Assess
    expect(files.length).toBe(zips.length);
    expect(loaded).toEqual([]);
  }, 60_000);
});
