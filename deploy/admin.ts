import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest } from '@smithy/types';
import { USER_ID } from '#lib/auth';
import { OUT_TRADE_NO } from '#lib/wechat-pay/fields';

/**
 * `npm run admin -- <command> [--stage <stage>]`: the operators' CLI for the /admin routes (issue 10).
 * Without --stage it calls the local stack plainly (http://127.0.0.1:$PORT, default 3000; the routes are
 * open on loopback). With --stage it reads the deployed HTTP API URL from the CloudFormation outputs of
 * `<service>-<stage>` (region from stages/<stage>.yml) and signs every request with SigV4 (service
 * execute-api) using the operator's own AWS credentials from the SDK's default chain (AWS_PROFILE, env,
 * SSO, …): the admin routes carry the aws_iam authorizer. Prints the answer's data; exits 1 with the
 * server's message and code when it refuses, 2 on bad arguments.
 */

export const USAGE = `usage: npm run admin -- <command> [--stage <stage>]

commands:
  reconcile [--all]                     run one reconcile pass now (--all: every PENDING order, whatever its back-off step)
  order <outTradeNo>                    show one stored order (owner, payVersion, prepay, timestamps)
  exceptions [--limit N] [--cursor C]   list payment exceptions, newest first (limit 1–100)
  user <id>                             show a user for support (profile, membership, orders)
  delete-user <id>                      cancel an account on a support request (as DELETE /wechat/me)
  bill <YYYY-MM-DD>                     check that China-time day's WeChat trade bill against the ledger now
  refund <outTradeNo> [--amount N] [--reason R] [--key K]
                                        refund N fen (default: all still refundable) of a PAID order; --key is the
                                        Idempotency-Key (default: a new one, printed: pass it again to retry safely)

--stage <stage>  call the deployed stage, signed with your AWS credentials (AWS_PROFILE …);
                 without it, the local stack at http://127.0.0.1:\${PORT:-3000}`;

export type Command =
  | { name: 'reconcile'; all: boolean }
  | { name: 'order'; outTradeNo: string }
  | { name: 'exceptions'; limit?: number; cursor?: string }
  | { name: 'user' | 'delete-user'; id: string }
  | { name: 'bill'; date: string }
  | { name: 'refund'; outTradeNo: string; amount?: number; reason?: string; key: string };

export interface Invocation {
  command: Command;
  stage?: string;
}

/** A usage error: what is wrong with the arguments (the CLI prints it with USAGE and exits 2). */
export class UsageError extends Error {}

/** Parses the CLI's arguments (after `--`). Throws UsageError naming what is wrong. */
export function parseAdminArgs(argv: readonly string[]): Invocation {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [name, ...rest] = positionals;
  const stage = values.stage;
  if (stage !== undefined && !/^[a-z][a-z0-9-]*$/.test(stage)) {
    throw new UsageError(`--stage "${stage}": lowercase letters, digits and -`);
  }
  const allowed: Record<string, string[]> = {
    reconcile: ['all'],
    order: [],
    exceptions: ['limit', 'cursor'],
    user: [],
    'delete-user': [],
    bill: [],
    refund: ['amount', 'reason', 'key'],
  };
  const takesOne: Record<string, string> = {
    order: 'outTradeNo',
    refund: 'outTradeNo',
    user: 'user id',
    'delete-user': 'user id',
    bill: 'date',
  };
  if (!name) throw new UsageError('no command');
  const options = allowed[name];
  if (!options) throw new UsageError(`unknown command "${name}"`);
  for (const option of Object.keys(values)) {
    if (option !== 'stage' && !options.includes(option)) {
      throw new UsageError(`--${option} does not apply to ${name}`);
    }
  }
  const one = takesOne[name];
  if (rest.length !== (one ? 1 : 0)) {
    throw new UsageError(one ? `${name} takes one ${one}` : `unexpected argument "${rest[0]}" for ${name}`);
  }
  let command: Command;
  if (name === 'reconcile') command = { name, all: values.all === true };
  else if (name === 'order' || name === 'refund') {
    const outTradeNo = rest[0] as string;
    if (!OUT_TRADE_NO.test(outTradeNo)) {
      throw new UsageError(`"${outTradeNo}" is not an outTradeNo (6–32 of 0-9 A-Z a-z _ - | *)`);
    }
    command = name === 'order' ? { name, outTradeNo } : refundCommand(outTradeNo, values);
  } else if (name === 'user' || name === 'delete-user') {
    const id = rest[0] as string;
    if (!USER_ID.test(id)) throw new UsageError(`"${id}" is not a user id (u and 8–64 of 0-9 A-Z a-z _ -)`);
    command = { name, id };
  } else if (name === 'bill') {
    const date = rest[0] as string;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new UsageError(`"${date}" is not a date YYYY-MM-DD`);
    command = { name, date };
  } else {
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 100)) {
      throw new UsageError(`--limit ${values.limit}: a whole number from 1 to 100`);
    }
    if (values.cursor !== undefined && !/^[A-Za-z0-9_-]+$/.test(values.cursor)) {
      throw new UsageError('--cursor: pass the nextCursor of a previous page as it was printed');
    }
    command = { name: 'exceptions', limit, cursor: values.cursor };
  }
  return stage === undefined ? { command } : { command, stage };
}

function refundCommand(outTradeNo: string, values: ReturnType<typeof parseOptions>['values']): Command {
  const amount = values.amount === undefined ? undefined : Number(values.amount);
  if (
    amount !== undefined &&
    !(Number.isSafeInteger(amount) && amount >= 1 && /^\d+$/.test(values.amount ?? ''))
  ) {
    throw new UsageError(`--amount ${values.amount}: a whole number of fen (1 yuan = 100)`);
  }
  if (values.reason !== undefined && values.reason.length > 80) {
    throw new UsageError('--reason: at most 80 characters');
  }
  if (values.key !== undefined && !/^[\x21-\x7e]{1,128}$/.test(values.key)) {
    throw new UsageError('--key: 1–128 visible ASCII characters');
  }
  return {
    name: 'refund',
    outTradeNo,
    ...(amount !== undefined ? { amount } : {}),
    ...(values.reason !== undefined ? { reason: values.reason } : {}),
    key: values.key ?? randomUUID(),
  };
}

function parseOptions(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      stage: { type: 'string' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      amount: { type: 'string' },
      reason: { type: 'string' },
      key: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
}

export interface AdminRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query: Record<string, string>;
  body?: string;
  /** Extra headers (the refund's Idempotency-Key), signed with the rest. */
  headers?: Record<string, string>;
}

/** RFC 3986 escaping (encodeURIComponent leaves !'()* alone; SigV4 escapes them). */
const uriEscape = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The admin route a command calls: POST /admin/reconcile, GET /admin/orders/{no}, GET /admin/exceptions,
 * GET / DELETE /admin/users/{id}, GET /admin/bill?date=.
 * GET / DELETE /admin/users/{id}, POST /admin/refunds (with its Idempotency-Key).
 */
export function requestFor(command: Command): AdminRequest {
  switch (command.name) {
    case 'reconcile':
      return {
        method: 'POST',
        path: '/admin/reconcile',
        query: {},
        body: JSON.stringify({ all: command.all }),
      };
    case 'order':
      return { method: 'GET', path: `/admin/orders/${uriEscape(command.outTradeNo)}`, query: {} };
    case 'exceptions': {
      const query: Record<string, string> = {};
      if (command.limit !== undefined) query.limit = String(command.limit);
      if (command.cursor !== undefined) query.cursor = command.cursor;
      return { method: 'GET', path: '/admin/exceptions', query };
    }
    case 'bill':
      return { method: 'GET', path: '/admin/bill', query: { date: command.date } };
    case 'refund':
      return {
        method: 'POST',
        path: '/admin/refunds',
        query: {},
        body: JSON.stringify({
          outTradeNo: command.outTradeNo,
          ...(command.amount !== undefined ? { amount: command.amount } : {}),
          ...(command.reason !== undefined ? { reason: command.reason } : {}),
        }),
        headers: { 'idempotency-key': command.key },
      };
    case 'user':
    case 'delete-user':
      return {
        method: command.name === 'user' ? 'GET' : 'DELETE',
        path: `/admin/users/${uriEscape(command.id)}`,
        query: {},
      };
  }
}

export type Credentials = NonNullable<ConstructorParameters<typeof SignatureV4>[0]['credentials']>;

/** Where the requests go: a base URL, plus the region and credentials to sign with (none locally). */
export interface Target {
  baseUrl: string;
  signing?: { region: string; credentials: Credentials };
}

/** The URL and headers of a request to `baseUrl`, SigV4-signed for execute-api when `signing` is given. */
export async function prepare(
  request: AdminRequest,
  target: Target,
  signingDate?: Date,
): Promise<{ url: string; init: RequestInit }> {
  const base = new URL(target.baseUrl);
  const prefix = base.pathname.replace(/\/$/, '');
  const search = Object.entries(request.query)
    .map(([name, value]) => `${uriEscape(name)}=${uriEscape(value)}`)
    .join('&');
  const url = `${base.origin}${prefix}${request.path}${search ? `?${search}` : ''}`;
  let headers: Record<string, string> = { accept: 'application/json', ...request.headers };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  if (target.signing) {
    const signer = new SignatureV4({
      service: 'execute-api',
      region: target.signing.region,
      credentials: target.signing.credentials,
      sha256: Hash.bind(null, 'sha256'),
    });
    const unsigned: HttpRequest = {
      method: request.method,
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port ? Number(base.port) : undefined,
      path: `${prefix}${request.path}`,
      query: request.query,
      headers: { ...headers, host: base.host },
      body: request.body,
    };
    const signed = await signer.sign(unsigned, { signingDate });
    // fetch sets Host itself (the same value); it must not be passed.
    const { host: _host, ...rest } = signed.headers;
    headers = rest;
  }
  return { url, init: { method: request.method, headers, body: request.body } };
}

interface Envelope {
  success?: boolean;
  message?: string;
  code?: string;
  data?: unknown;
}

export interface Io {
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Finds a deployed stage's URL and signing (default: CloudFormation outputs + the SDK credential chain). */
  stageTarget: (stage: string) => Promise<Target>;
}

const ROOT = resolve(import.meta.dirname, '..');

/** The service name serverless.yml declares. */
function serviceName(): string {
  const match = /^service:\s*(\S+)/m.exec(readFileSync(resolve(ROOT, 'serverless.yml'), 'utf8'));
  if (!match?.[1]) throw new Error('serverless.yml names no service');
  return match[1];
}

/**
 * A deployed stage: region from stages/<stage>.yml, the HttpApiUrl output of the `<service>-<stage>`
 * CloudFormation stack, credentials from the AWS SDK's default chain (fromNodeProviderChain).
 */
export async function deployedTarget(stage: string): Promise<Target> {
  const stageFile = createRequire(import.meta.url)('./stage.cjs') as {
    readStageFile: (stage: string) => Record<string, string>;
  };
  const region = stageFile.readStageFile(stage).REGION as string;
  const [{ CloudFormationClient, DescribeStacksCommand }, { fromNodeProviderChain }] = await Promise.all([
    import('@aws-sdk/client-cloudformation'),
    import('@aws-sdk/credential-providers'),
  ]);
  const credentials = fromNodeProviderChain();
  const stackName = `${serviceName()}-${stage}`;
  const cloudFormation = new CloudFormationClient({ region, credentials });
  let outputs: { OutputKey?: string; OutputValue?: string }[];
  try {
    const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Stacks?.[0]?.Outputs ?? [];
  } catch (error) {
    throw new Error(`stack ${stackName} in ${region}: ${(error as Error).message}`);
  } finally {
    cloudFormation.destroy();
  }
  const url = outputs.find((output) => output.OutputKey === 'HttpApiUrl')?.OutputValue;
  if (!url) throw new Error(`stack ${stackName} in ${region} has no HttpApiUrl output (is it deployed?)`);
  return { baseUrl: url, signing: { region, credentials } };
}

const defaultIo = (): Io => ({
  env: process.env,
  out: (text) => console.log(text),
  err: (text) => console.error(text),
  stageTarget: deployedTarget,
});

/** What the CLI prints after the data, to fetch the next page. */
function nextPageHint(invocation: Invocation, data: unknown): string | undefined {
  const next = (data as { nextCursor?: unknown } | null)?.nextCursor;
  if (invocation.command.name !== 'exceptions' || typeof next !== 'string') return undefined;
  const stage = invocation.stage ? ` --stage ${invocation.stage}` : '';
  const limit = invocation.command.limit ? ` --limit ${invocation.command.limit}` : '';
  return `next page: npm run admin -- exceptions${limit} --cursor ${next}${stage}`;
}

/**
 * Runs the CLI on `argv` (the arguments after `--`) and returns the exit code: 0 done, 1 the server or the
 * network refused (its message and code printed), 2 bad arguments (usage printed).
 */
export async function run(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseAdminArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  const request = requestFor(invocation.command);
  if (invocation.command.name === 'refund') {
    io.err(
      `Idempotency-Key ${invocation.command.key} (pass --key ${invocation.command.key} to retry this refund)`,
    );
  }
  let status: number;
  let text: string;
  let where: string;
  try {
    const target = invocation.stage
      ? await io.stageTarget(invocation.stage)
      : { baseUrl: `http://127.0.0.1:${io.env.PORT || 3000}` };
    const { url, init } = await prepare(request, target);
    where = `${request.method} ${url}`;
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
    status = response.status;
    text = await response.text();
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code || cause?.message;
    io.err(`failed: ${(error as Error).message}${detail ? ` (${detail})` : ''}`);
    if (!invocation.stage) io.err('is the local stack running (npm start)? or pass --stage <stage>');
    return 1;
  }
  let envelope: Envelope | undefined;
  try {
    envelope = JSON.parse(text) as Envelope;
  } catch {
    envelope = undefined;
  }
  if (status >= 200 && status < 300 && envelope?.success === true) {
    if (envelope.message) io.out(envelope.message);
    io.out(JSON.stringify(envelope.data ?? null, null, 2));
    const hint = nextPageHint(invocation, envelope.data);
    if (hint) io.err(hint);
    return 0;
  }
  if (envelope?.message && envelope.code) io.err(`${envelope.message} (${envelope.code}, HTTP ${status})`);
  else if (status === 403 && invocation.stage) {
    // API Gateway's own refusal of an unsigned or unauthorized request: {"message":"Forbidden"}.
    io.err(
      `HTTP 403 from ${where}: ${text.slice(0, 300)} (do your AWS credentials allow execute-api:Invoke?)`,
    );
  } else io.err(`HTTP ${status} from ${where}: ${text.slice(0, 300)}`);
  return 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await run(process.argv.slice(2));
}
