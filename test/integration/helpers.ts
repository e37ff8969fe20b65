import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { handler as notifyHandler } from '#functions/pay-notify';
import { handler as signInHandler } from '#functions/sign-in';
import { dynamo } from '#lib/clients/dynamodb';
import { loadConfig, resetConfigCache } from '#lib/config';
import type { HttpEvent, HttpResult } from '#lib/http';
import { listExceptions, type PaymentException } from '#lib/repositories/exception-repository';
import { findUserByOpenid, toUserRecord, type UserRecord } from '#lib/repositories/user-repository';
import type { PublicUser } from '#lib/users';
import { context, envelope, type HttpEventInput, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { serverlessRoutes } from '#local/serverless-routes';
import { checkResponse } from '#test/helpers/openapi';
import { TEST_SANDBOX_PORT } from '#test/test-env';

/** The WeChat sandbox the integration global setup started (real HTTP on loopback). */
export const sandboxUrl = `http://127.0.0.1:${TEST_SANDBOX_PORT}`;

/** The code2Session endpoint as the sandbox records and faults it. */
export const CODE2SESSION = '/sns/jscode2session';

export type SandboxFaultMode = 'timeout' | 'busy' | '5xx' | 'quota';

async function sandboxRequest<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`sandbox ${method} ${path} answered ${response.status}`);
  return (await response.json()) as T;
}

/** A sandbox route called as a test does: its HTTP status and JSON answer, whatever the status. */
export async function sandboxJson(
  path: string,
  body?: unknown,
  method = 'POST',
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/**
 * A loopback notify_url for the sandbox's deliveries (payments and refunds): every POST runs the real payNotify
 * handler, as the Function URL does on AWS. Sets WECHAT_NOTIFY_URL for the file's tests (and keeps
 * WECHAT_PAY_VERSION, which they may switch); call it in beforeAll and await what it returns in afterAll, which
 * restores both, forgets the config and closes the server.
 */
export async function useLoopbackNotify(): Promise<() => Promise<void>> {
  const saved = Object.fromEntries(
    ['WECHAT_NOTIFY_URL', 'WECHAT_PAY_VERSION'].map((name) => [name, process.env[name]]),
  );
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = Object.fromEntries(
      Object.entries(req.headers).flatMap(([name, value]) =>
        typeof value === 'string' ? [[name, value]] : [],
      ),
    );
    const result = await notifyHandler(
      httpEvent({
        method: 'POST',
        path: '/wechat/notify',
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }),
      context,
    );
    res.writeHead(result.statusCode ?? 200, (result.headers ?? {}) as Record<string, string>);
    res.end(result.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.WECHAT_NOTIFY_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/wechat/notify`;
  return async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    resetConfigCache();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/** A fresh openid in WeChat's shape (letters, digits, `_`, `-`; 6–64 chars). */
export function randomOpenid(prefix = 'oTest'): string {
  return `${prefix}${randomBytes(12).toString('base64url')}`;
}

/**
 * Plays `wx.login`: a single-use code for `openid` (a new random openid when omitted), optionally bound
 * to a unionid.
 */
export function sandboxLogin(openid?: string, unionid?: string): Promise<{ code: string; openid: string }> {
  return sandboxRequest('POST', '/sandbox/login', {
    ...(openid ? { openid } : {}),
    ...(unionid ? { unionid } : {}),
  });
}

/** Switches a fault on for one WeChat endpoint (e.g. CODE2SESSION); `count` calls, or until cleared. */
export async function setFault(endpoint: string, mode: SandboxFaultMode, count?: number): Promise<void> {
  await sandboxRequest('POST', '/sandbox/faults', { endpoint, mode, ...(count ? { count } : {}) });
}

/** Clears every sandbox fault. */
export async function clearFaults(): Promise<void> {
  await sandboxRequest('DELETE', '/sandbox/faults');
}

/** Every call the sandbox received on a WeChat endpoint since it started (oldest first). */
export async function sandboxCalls(): Promise<{ method: string; path: string; at: number }[]> {
  const { calls } = await sandboxRequest<{ calls: { method: string; path: string; at: number }[] }>(
    'GET',
    '/sandbox/calls',
  );
  return calls;
}

/**
 * How many calls `path` has received so far; take it before and after an action to count that action's
 * calls.
 */
export async function sandboxCallCount(path = CODE2SESSION): Promise<number> {
  return (await sandboxCalls()).filter((call) => call.path === path).length;
}

type Handler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

let routesByHandler: Promise<Map<unknown, { method: string; path: string }>> | undefined;

/** serverless.yml's route for each handler function (the modules are the ones the tests import). */
function routeOf(handler: Handler): Promise<{ method: string; path: string } | undefined> {
  routesByHandler ??= Promise.all(
    serverlessRoutes().map(async (route) => {
      const name = route.module.slice('functions/'.length);
      const module = (await import(`#functions/${name}`)) as { handler: unknown };
      return [module.handler, route] as const;
    }),
  ).then((entries) => new Map(entries));
  return routesByHandler.then((routes) => routes.get(handler));
}

/**
 * Invokes a handler in-process with an HTTP API v2 event (and the fixed context, or `lambda`); returns the status, headers and parsed envelope. Every
 * answer is checked against the OpenAPI spec for the handler's route in serverless.yml (throws when it differs).
 */
export async function invoke(handler: Handler, input: HttpEventInput = {}, lambda: Context = context) {
  const result = await handler(httpEvent(input), lambda);
  const route = await routeOf(handler);
  if (!route) throw new Error('invoke: this handler serves no route in serverless.yml');
  const parsed = envelope(result);
  checkResponse(route.method, route.path, result.statusCode ?? 200, parsed);
  return {
    status: result.statusCode,
    headers: result.headers ?? {},
    cookies: result.cookies ?? [],
    ...parsed,
  };
}

/** Signs a user in through the real signIn handler (sandbox code → token). Throws unless it answers 200. */
export async function signInUser(openid?: string): Promise<{ token: string; user: PublicUser }> {
  const { code } = await sandboxLogin(openid);
  const result = await invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } });
  if (result.status !== 200 || !result.data) {
    throw new Error(`sign-in answered ${result.status} ${result.code ?? ''}`);
  }
  return { token: result.data.token as string, user: result.data.user as PublicUser };
}

/** The stored user item as the app reads it (membershipEndMs as membershipExpiredAt; strongly consistent); undefined when absent. */
export async function storedUser(id: string): Promise<Record<string, unknown> | undefined> {
  const { usersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: usersTable, Key: { id }, ConsistentRead: true }),
  );
  return toUserRecord(Item) as Record<string, unknown> | undefined;
}

/** The user an openid is linked to (through the repository, strongly consistent); undefined when none is. */
export async function storedUserOf(openid: string): Promise<UserRecord | undefined> {
  return findUserByOpenid((await loadConfig()).usersTable, openid);
}

/** Every item of a table (a consistent Scan: tests only). */
export async function scanTable(table: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey }),
    );
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/** DynamoDB commands that write. */
export const WRITE_COMMANDS: ReadonlySet<string> = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'TransactWriteItems',
  'BatchWriteItem',
]);

// lib-dynamodb's document commands reach the client as their low-level commands; map the names anyway.
const DOCUMENT_TO_LOW_LEVEL: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchGet: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  TransactGet: 'TransactGetItems',
  TransactWrite: 'TransactWriteItems',
};

const COUNTER_NAME = 'testCallCounter';

export interface DynamoCallCounter {
  /** Every command sent since the counter started (or was reset), e.g. `['GetItem', 'PutItem']`. */
  calls(): string[];
  /** The commands among them that write. */
  writes(): string[];
  /** Forgets what was recorded so far. */
  reset(): void;
  /** Removes the middleware from the shared client. */
  stop(): void;
}

/**
 * Counts every command the shared DynamoDB client `dynamo` sends, by low-level name (PutItem, GetItem, …),
 * with an `initialize`-step middleware (one entry per `send`, retries included once). Call `stop()` when
 * done; starting a new counter replaces a previous one.
 */
export function countDynamoCalls(): DynamoCallCounter {
  const names: string[] = [];
  dynamo().middlewareStack.remove(COUNTER_NAME);
  dynamo().middlewareStack.add(
    (next, handlerContext) => async (args) => {
      const name = String(handlerContext.commandName ?? 'unknown').replace(/Command$/, '');
      names.push(DOCUMENT_TO_LOW_LEVEL[name] ?? name);
      return next(args);
    },
    { step: 'initialize', name: COUNTER_NAME },
  );
  return {
    calls: () => [...names],
    writes: () => names.filter((name) => WRITE_COMMANDS.has(name)),
    reset: () => {
      names.length = 0;
    },
    stop: () => {
      dynamo().middlewareStack.remove(COUNTER_NAME);
    },
  };
}

/** The payment exceptions recorded for an out_trade_no (newest first), read through the repository. */
export async function exceptionsFor(outTradeNo: string): Promise<PaymentException[]> {
  const { ordersTable } = await loadConfig();
  const { exceptions } = await listExceptions(ordersTable, 1000);
  return exceptions.filter((exception) => exception.outTradeNo === outTradeNo);
}

/** Plays the passing of the order-query cooldown: the order's last WeChat query moves an hour back. */
export async function expireQueryCooldown(outTradeNo: string): Promise<void> {
  const { ordersTable } = await loadConfig();
  await dynamo().send(
    new UpdateCommand({
      TableName: ordersTable,
      Key: { outTradeNo },
      UpdateExpression: 'SET lastQueryAt = :old',
      ExpressionAttributeValues: { ':old': new Date(Date.now() - 3_600_000).toISOString() },
    }),
  );
}

/** WeChat Pay posts a signed v2 notify of a 1800-fen payment to the real payNotify handler. */
export function deliverV2Notify(outTradeNo: string, transactionId: string, totalFee = 1800) {
  return notifyHandler(
    httpEvent({
      method: 'POST',
      path: '/wechat/notify',
      body: v2NotifyXml({ outTradeNo, totalFee, transactionId }),
      headers: { 'content-type': 'text/xml' },
    }),
    context,
  );
}
