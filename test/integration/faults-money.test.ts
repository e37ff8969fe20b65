/**
 * Fault suite, money side (research/reliability.md §3.2 F6–F15, F21): errors, races, crashes and latency
 * injected around the REAL DynamoDB Local calls with middlewares on the shared `dynamo` client, while the
 * v2 notify handler, the create-payment and get-order handlers and the WeChat sandbox run for real.
 *
 * Every user starts as a member until BASE, far in the future, so one credit moves the membership to exactly
 * extendMembership(BASE, …, plan.days) whatever the clock says: INV-1 (credited at most once) is an equality.
 * Every SUCCESS reply is checked against the stored order at the moment it is sent (INV-3), and rejections
 * are counted for writes (INV-4). INV-6 is test/setup.ts's log sink.
 */
import { randomInt } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ThrottlingException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as getOrderHandler } from '#functions/get-order';
import { handler as notifyHandler } from '#functions/pay-notify';
import { dynamo } from '#lib/clients/dynamodb';
import { loadConfig, resetConfigCache } from '#lib/config';
import { extendMembership } from '#lib/payments/rules';
import { findPlan, type Plan } from '#lib/plans';
import { toUserRecord } from '#lib/repositories/user-repository';
import { V2_SUCCESS_REPLY } from '#lib/wechat-pay/v2-protocol';
import { context, httpEvent, lambdaContext } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { transactionCanceled } from '#test/helpers/dynamo';
import {
  clearFaults,
  countDynamoCalls,
  exceptionsFor,
  invoke,
  sandboxUrl,
  setFault,
  signInUser,
} from './helpers';

/** Everyone is a member until then before the test pays (far future: the credit extends from it). */
const BASE = '2099-01-31T00:00:00.000Z';
const SUCCESS = '<return_code><![CDATA[SUCCESS]]></return_code>';

type Reply = 'SUCCESS' | 'FAIL' | 'LAMBDA_ERROR';

interface Payer {
  token: string;
  userId: string;
  outTradeNo: string;
  plan: Plan;
  /** The user's version before anything was paid. */
  version: number;
}

// ---------------------------------------------------------------------------------------------------------
// DynamoDB: read-through helpers and fault injection around the shared client

async function storedOrder(outTradeNo: string): Promise<Record<string, unknown> | undefined> {
  const { ordersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item;
}

async function storedUser(id: string): Promise<Record<string, unknown> | undefined> {
  const { usersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: usersTable, Key: { id }, ConsistentRead: true }),
  );
  return toUserRecord(Item) as Record<string, unknown> | undefined;
}

/** The user item as stored (no mapping). */
async function rawUser(id: string): Promise<Record<string, unknown> | undefined> {
  const { usersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: usersTable, Key: { id }, ConsistentRead: true }),
  );
  return Item;
}

/** Rewrites a user's membership end in the pre-membershipEndMs form: the ISO string (version untouched). */
async function storeLegacyMembership(userId: string, end: string): Promise<void> {
  const { usersTable } = await loadConfig();
  await dynamo().send(
    new UpdateCommand({
      TableName: usersTable,
      Key: { id: userId },
      UpdateExpression: 'SET membershipExpiredAt = :end REMOVE membershipEndMs',
      ExpressionAttributeValues: { ':end': end },
    }),
  );
}

/** A concurrent membership change: another payment of the same user committed (version + 1, a new end). */
async function bumpMembership(userId: string, membershipExpiredAt: string): Promise<void> {
  const { usersTable } = await loadConfig();
  await dynamo().send(
    new UpdateCommand({
      TableName: usersTable,
      Key: { id: userId },
      UpdateExpression: 'SET version = version + :one, membershipEndMs = :end',
      ExpressionAttributeValues: { ':one': 1, ':end': Date.parse(membershipExpiredAt) },
    }),
  );
}

async function setOrderStatus(outTradeNo: string, status: string): Promise<void> {
  const { ordersTable } = await loadConfig();
  await dynamo().send(
    new UpdateCommand({
      TableName: ordersTable,
      Key: { outTradeNo },
      UpdateExpression: 'SET #s = :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': status },
    }),
  );
}

// lib-dynamodb's document commands reach the middleware stack as their low-level commands; map both.
const LOW_LEVEL: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  TransactWrite: 'TransactWriteItems',
};

function keyText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'S' in value) return String((value as { S: unknown }).S);
  return undefined;
}

interface DynamoCall {
  /** Low-level name: GetItem, PutItem, UpdateItem, TransactWriteItems… */
  command: string;
  /** The out_trade_no the command touches (Key, Item or the first transact item), when it touches an order. */
  outTradeNo?: string;
  input: Record<string, unknown>;
}

type Interceptor = (call: DynamoCall, proceed: () => Promise<unknown>) => Promise<unknown>;

function describeCall(commandName: unknown, input: Record<string, unknown>): DynamoCall {
  const name = String(commandName ?? 'unknown').replace(/Command$/, '');
  const key = (input.Key ?? input.Item) as Record<string, unknown> | undefined;
  const items = input.TransactItems as { Update?: { Key?: Record<string, unknown> } }[] | undefined;
  return {
    command: LOW_LEVEL[name] ?? name,
    outTradeNo: keyText(key?.outTradeNo) ?? keyText(items?.[0]?.Update?.Key?.outTradeNo),
    input,
  };
}

const injected = new Set<string>();
let injectionSeq = 0;

/**
 * Wraps every `dynamo.send` (step `initialize`: once per send, above the SDK's retries) or every HTTP attempt
 * (step `deserialize`: below the retry middleware, so the SDK's own retry strategy sees what is thrown).
 * `proceed()` runs the real call against DynamoDB Local. Returns the remover; afterEach removes leftovers.
 */
function intercept(step: 'initialize' | 'deserialize', interceptor: Interceptor): () => void {
  const name = `faultInjection${++injectionSeq}`;
  const wrap =
    <A extends { input: object }, R>(next: (args: A) => Promise<R>, commandName: unknown) =>
    async (args: A): Promise<R> =>
      (await interceptor(describeCall(commandName, args.input as Record<string, unknown>), () =>
        next(args),
      )) as R;
  // MiddlewareStack.add is overloaded per step literal, hence one call per step.
  if (step === 'initialize') {
    dynamo().middlewareStack.add((next, ctx) => wrap(next, ctx.commandName), { step, name });
  } else {
    dynamo().middlewareStack.add((next, ctx) => wrap(next, ctx.commandName), { step, name });
  }
  injected.add(name);
  return () => {
    dynamo().middlewareStack.remove(name);
    injected.delete(name);
  };
}

/** The notify's paid transition for this order. */
const isSettle = (call: DynamoCall, outTradeNo: string) =>
  call.command === 'TransactWriteItems' && call.outTradeNo === outTradeNo;

function throttled(): ThrottlingException {
  return new ThrottlingException({
    message: 'Throughput exceeds the current capacity for one or more tables.',
    $metadata: { httpStatusCode: 400 },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Notifies: direct deliveries (WeChat's redelivery is "deliver the same payment again") and the sandbox's own

/**
 * SUCCESS replies sent while the order was neither PAID with that transaction_id nor that payment recorded as
 * a payment exception (must stay empty: INV-3, acknowledge ⇔ durably recorded).
 */
const inv3Violations: string[] = [];

function notifyXml(
  payer: Pick<Payer, 'outTradeNo' | 'plan'>,
  transactionId: string,
  signType?: 'HMAC-SHA256',
) {
  return v2NotifyXml({
    outTradeNo: payer.outTradeNo,
    totalFee: payer.plan.totalFee,
    transactionId,
    signType,
  });
}

function newTransactionId(): string {
  return `4200000000${Array.from({ length: 18 }, () => randomInt(10)).join('')}`;
}

/**
 * Delivers one v2 notify to the payNotify handler. A handler that throws (a Lambda error: the Function URL
 * answers 5xx) counts as LAMBDA_ERROR. On SUCCESS the order must already be PAID with this transaction_id.
 */
async function deliver(xml: string, lambda: Context = context): Promise<Reply> {
  let body: string;
  try {
    const result = await notifyHandler(
      httpEvent({
        method: 'POST',
        path: '/wechat/notify',
        body: xml,
        headers: { 'content-type': 'text/xml' },
      }),
      lambda,
    );
    body = result.body ?? '';
  } catch {
    return 'LAMBDA_ERROR';
  }
  if (!body.includes(SUCCESS)) return 'FAIL';
  const outTradeNo = /<out_trade_no><!\[CDATA\[([^\]]+)\]\]>/.exec(xml)?.[1] ?? '';
  const transactionId = /<transaction_id><!\[CDATA\[([^\]]+)\]\]>/.exec(xml)?.[1];
  const order = await storedOrder(outTradeNo);
  const credited = order?.status === 'PAID' && order.transactionId === transactionId;
  const recorded =
    !credited && (await exceptionsFor(outTradeNo)).some((e) => e.transactionId === transactionId);
  if (!credited && !recorded) {
    inv3Violations.push(
      `SUCCESS for ${outTradeNo} while ${String(order?.status)} ${String(order?.transactionId)}`,
    );
  }
  return 'SUCCESS';
}

/** What the notify endpoint saw from the sandbox: the reply, and the order and user right after it. */
interface SandboxDelivery {
  reply: Reply;
  orderStatus: unknown;
  userVersion: unknown;
}

/** Orders whose sandbox notifies reach the handler; others are acknowledged unread (the notify got lost). */
const forwarded = new Map<string, SandboxDelivery[]>();
let notifyServer: Server;
let previousNotifyUrl: string | undefined;
let previousPayVersion: string | undefined;

async function sandbox(path: string, body?: object): Promise<Record<string, unknown>> {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await response.json()) as Record<string, unknown>;
}

/** Plays the user paying: the sandbox marks the order paid and posts the notify (retrying until acknowledged). */
async function sandboxPay(outTradeNo: string): Promise<string> {
  const paid = await sandbox('/sandbox/pay', { outTradeNo });
  expect(paid.transactionId).toEqual(expect.any(String));
  return paid.transactionId as string;
}

beforeAll(async () => {
  notifyServer = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const xml = Buffer.concat(chunks).toString('utf8');
    const outTradeNo = /<out_trade_no><!\[CDATA\[([^\]]+)\]\]>/.exec(xml)?.[1] ?? '';
    const log = forwarded.get(outTradeNo);
    let status = 200;
    let body = V2_SUCCESS_REPLY;
    if (log) {
      const reply = await deliver(xml);
      // Snapshot before answering: the sandbox schedules its redelivery only once it has our answer.
      const order = await storedOrder(outTradeNo);
      const user = await storedUser(String(order?.userId));
      log.push({ reply, orderStatus: order?.status, userVersion: user?.version });
      // A Lambda error reaches WeChat as the Function URL's 502.
      if (reply === 'LAMBDA_ERROR') status = 502;
      if (reply !== 'SUCCESS') body = '<xml><return_code><![CDATA[FAIL]]></return_code></xml>';
    }
    res.writeHead(status, { 'content-type': 'text/xml' }).end(body);
  });
  await new Promise<void>((resolve) => notifyServer.listen(0, '127.0.0.1', resolve));
  previousNotifyUrl = process.env.WECHAT_NOTIFY_URL;
  previousPayVersion = process.env.WECHAT_PAY_VERSION;
  process.env.WECHAT_NOTIFY_URL = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/wechat/notify`;
  process.env.WECHAT_PAY_VERSION = 'v2';
  resetConfigCache();
});

afterAll(async () => {
  process.env.WECHAT_NOTIFY_URL = previousNotifyUrl;
  process.env.WECHAT_PAY_VERSION = previousPayVersion;
  resetConfigCache();
  await new Promise((resolve) => notifyServer.close(resolve));
});

afterEach(() => {
  for (const name of injected) dynamo().middlewareStack.remove(name);
  injected.clear();
  forwarded.clear();
  const violations = inv3Violations.splice(0);
  expect(violations, 'INV-3: SUCCESS acknowledged before commit').toEqual([]);
});

// ---------------------------------------------------------------------------------------------------------
// Orders and the invariants

/** A signed-in member (until BASE) with a PENDING order created through create-payment and the sandbox. */
async function pendingOrder(planId = 'monthly'): Promise<Payer> {
  const { token, user } = await signInUser();
  const { usersTable } = await loadConfig();
  await dynamo().send(
    new UpdateCommand({
      TableName: usersTable,
      Key: { id: user.id },
      UpdateExpression: 'SET membershipEndMs = :base',
      ExpressionAttributeValues: { ':base': Date.parse(BASE) },
    }),
  );
  const created = await invoke(createPaymentHandler, {
    method: 'POST',
    path: '/wechat/pay',
    body: { planId },
    token,
  });
  expect(created.status).toBe(200);
  const stored = await storedUser(user.id);
  return {
    token,
    userId: user.id,
    outTradeNo: created.data?.order.outTradeNo,
    plan: findPlan(planId) as Plan,
    version: stored?.version as number,
  };
}

/**
 * INV-1: the order is PAID (with `transactionId` when given) and the membership moved exactly once from
 * `from` (credits 1), or nothing moved at all (credits 0). `bumps` counts injected concurrent changes.
 */
async function expectCredits(
  payer: Payer,
  credits: 0 | 1,
  { transactionId, from = BASE, bumps = 0 }: { transactionId?: string; from?: string; bumps?: number } = {},
): Promise<void> {
  const order = await storedOrder(payer.outTradeNo);
  const user = await storedUser(payer.userId);
  expect(user?.version).toBe(payer.version + credits + bumps);
  if (credits === 0) {
    expect(order?.status).toBe('PENDING');
    expect(user?.membershipExpiredAt).toBe(from);
    return;
  }
  expect(order?.status).toBe('PAID');
  if (transactionId) expect(order?.transactionId).toBe(transactionId);
  expect(user?.membershipExpiredAt).toBe(extendMembership(from, new Date(), payer.plan.days));
  expect(user?.role).toBe(1);
}

// ---------------------------------------------------------------------------------------------------------

describe('F6 DynamoDB throttling on the paid transition', () => {
  it('credits once on the first delivery when the SDK retry absorbs one throttled attempt', async () => {
    // Prepare
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    let attempts = 0;
    intercept('deserialize', async (call, proceed) => {
      if (!isSettle(call, payer.outTradeNo)) return proceed();
      if (++attempts === 1) throw throttled();
      return proceed();
    });
    const calls = countDynamoCalls();
    let reply: Reply;
    try {
      // Act
      reply = await deliver(notifyXml(payer, transactionId));
    } finally {
      calls.stop();
    }
    // Assess: two HTTP attempts of one send
    expect(reply).toBe('SUCCESS');
    expect(attempts).toBe(2);
    expect(calls.writes()).toEqual(['TransactWriteItems']);
    await expectCredits(payer, 1, { transactionId });
  });

  it('answers FAIL with no partial write when every SDK attempt is throttled, and WeChat’s redelivery credits once', async () => {
    // Prepare: the first send's 3 attempts (maxAttempts) are throttled; the sandbox delivers for real
    const payer = await pendingOrder();
    let attempts = 0;
    intercept('deserialize', async (call, proceed) => {
      if (!isSettle(call, payer.outTradeNo)) return proceed();
      if (++attempts <= 3) throw throttled();
      return proceed();
    });
    const deliveries: SandboxDelivery[] = [];
    forwarded.set(payer.outTradeNo, deliveries);
    // Act: the user pays; WeChat delivers, gets FAIL, and redelivers on its schedule
    const transactionId = await sandboxPay(payer.outTradeNo);
    await vi.waitFor(() => expect(deliveries.at(-1)?.reply).toBe('SUCCESS'), {
      timeout: 10_000,
      interval: 50,
    });
    // Assess: the FAIL left the order PENDING and the user untouched; the redelivery credited it once
    expect(deliveries[0]).toEqual({ reply: 'FAIL', orderStatus: 'PENDING', userVersion: payer.version });
    expect(deliveries).toHaveLength(2);
    expect(attempts).toBe(4);
    await expectCredits(payer, 1, { transactionId });
  });
});

describe('DynamoDB requests per notify (issue 12)', () => {
  it('credits a first notify with one GetItem and one TransactWriteItems, and a duplicate with one GetItem', async () => {
    // Prepare: an order opened through POST /wechat/pay carries its owner snapshot
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    const calls = countDynamoCalls();
    let first: string[];
    let duplicate: string[];
    // The handler alone (deliver() also reads the order afterwards, to check INV-3)
    const notify = async () =>
      (
        await notifyHandler(
          httpEvent({
            method: 'POST',
            path: '/wechat/notify',
            body: notifyXml(payer, transactionId),
            headers: { 'content-type': 'text/xml' },
          }),
          context,
        )
      ).body;
    try {
      // Act
      expect(await notify()).toContain(SUCCESS);
      first = calls.calls();
      calls.reset();
      expect(await notify()).toContain(SUCCESS);
      duplicate = calls.calls();
    } finally {
      calls.stop();
    }
    // Assess
    expect(first).toEqual(['GetItem', 'TransactWriteItems']);
    expect(duplicate).toEqual(['GetItem']);
    await expectCredits(payer, 1, { transactionId });
  });
});

describe('F7/F8 a notify for an order that is no longer PENDING', () => {
  it('F7 acknowledges a duplicate with the same transaction_id with 0 writes and 0 extra credits', async () => {
    // Prepare
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    expect(await deliver(notifyXml(payer, transactionId))).toBe('SUCCESS');
    const calls = countDynamoCalls();
    let replies: Reply[];
    try {
      // Act: WeChat redelivers (MD5 and HMAC-SHA256 signed)
      replies = [
        await deliver(notifyXml(payer, transactionId)),
        await deliver(notifyXml(payer, transactionId, 'HMAC-SHA256')),
      ];
    } finally {
      calls.stop();
    }
    // Assess
    expect(replies).toEqual(['SUCCESS', 'SUCCESS']);
    expect(calls.writes()).toEqual([]);
    await expectCredits(payer, 1, { transactionId });
  });

  it.each<[string, (payer: Payer) => Promise<void>]>([
    [
      'PAID by another transaction',
      async (payer) => void (await deliver(notifyXml(payer, newTransactionId()))),
    ],
    ['CLOSED', (payer) => setOrderStatus(payer.outTradeNo, 'CLOSED')],
    ['REFUNDED', (payer) => setOrderStatus(payer.outTradeNo, 'REFUNDED')],
  ])(
    'F8 never credits, and acknowledges once it records the exception, when the order is %s',
    async (_state, arrange) => {
      // Prepare
      const payer = await pendingOrder();
      await arrange(payer);
      const order = await storedOrder(payer.outTradeNo);
      const user = await storedUser(payer.userId);
      const calls = countDynamoCalls();
      const transactionId = newTransactionId();
      let replies: Reply[];
      try {
        // Act: WeChat delivers it twice
        replies = [
          await deliver(notifyXml(payer, transactionId)),
          await deliver(notifyXml(payer, transactionId)),
        ];
      } finally {
        calls.stop();
      }
      // Assess: INV-4 (order and user untouched); the exception is stored once, then acknowledged
      expect(replies).toEqual(['SUCCESS', 'SUCCESS']);
      expect(calls.writes()).toEqual(['PutItem', 'PutItem']);
      expect(await storedOrder(payer.outTradeNo)).toEqual(order);
      expect(await storedUser(payer.userId)).toEqual(user);
      const recorded = (await exceptionsFor(payer.outTradeNo)).filter(
        (e) => e.transactionId === transactionId,
      );
      expect(recorded).toHaveLength(1);
      expect(recorded[0]?.reason).toBe(order?.status === 'PAID' ? 'paid_by_other' : 'not_pending');
    },
  );

  it.each<[string, boolean, Reply]>([
    ['F7 the same transaction_id', true, 'SUCCESS'],
    ['F8 another transaction_id', false, 'SUCCESS'],
  ])(
    'settles the race once when %s commits between the read and the transaction',
    async (_name, sameTransaction, expected) => {
      // Prepare: right before our transaction, another delivery commits first
      const payer = await pendingOrder();
      const ours = newTransactionId();
      const theirs = sameTransaction ? ours : newTransactionId();
      let raced: Reply | undefined;
      intercept('initialize', async (call, proceed) => {
        if (isSettle(call, payer.outTradeNo) && raced === undefined) {
          raced = 'FAIL';
          raced = await deliver(notifyXml(payer, theirs));
        }
        return proceed();
      });
      // Act
      const reply = await deliver(notifyXml(payer, ours));
      // Assess: ConditionalCheckFailed on the order → duplicate (same txid) or an exception recorded and
      // acknowledged (other txid); 1 credit
      expect(raced).toBe('SUCCESS');
      expect(reply).toBe(expected);
      await expectCredits(payer, 1, { transactionId: theirs });
    },
  );
});

describe('F9 a concurrent membership change', () => {
  it('extends the LATEST end in place when another payment of the user commits first (no retry, no lost credit)', async () => {
    // Prepare: just before our transaction, another payment of this user commits (version + 1, a later end)
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    const latest = '2099-06-30T00:00:00.000Z';
    let settles = 0;
    intercept('initialize', async (call, proceed) => {
      if (isSettle(call, payer.outTradeNo) && settles++ === 0) await bumpMembership(payer.userId, latest);
      return proceed();
    });
    // Act
    const reply = await deliver(notifyXml(payer, transactionId));
    // Assess: one transaction, and the credit lands on the other payment's end
    expect(reply).toBe('SUCCESS');
    expect(settles).toBe(1);
    await expectCredits(payer, 1, { transactionId, from: latest, bumps: 1 });
  });

  it('sets an ended membership on its version, and extends in place once another payment restarted it', async () => {
    // Prepare: after the order was opened (snapshot: member until BASE), a refund ended the membership; then,
    // just before our second transaction, another payment of the user starts it again
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    const ended = new Date(Date.now() - 86_400_000).toISOString();
    await bumpMembership(payer.userId, ended);
    const restarted = '2099-06-30T00:00:00.000Z';
    let settles = 0;
    intercept('initialize', async (call, proceed) => {
      if (isSettle(call, payer.outTradeNo) && ++settles === 2) await bumpMembership(payer.userId, restarted);
      return proceed();
    });
    // Act
    const reply = await deliver(notifyXml(payer, transactionId));
    // Assess: the snapshot's extend is refused (ended), the set loses the version, the extend commits
    expect(reply).toBe('SUCCESS');
    expect(settles).toBe(3);
    await expectCredits(payer, 1, { transactionId, from: restarted, bumps: 2 });
  });

  it('converts a membership stored in the old ISO form, setting it on its version', async () => {
    // Prepare: a user item from before membershipEndMs (the ISO string itself), with a PENDING order
    const payer = await pendingOrder();
    await storeLegacyMembership(payer.userId, BASE);
    // Act: the first credit refuses the in-place extend and sets the end on the version
    expect(await deliver(notifyXml(payer, newTransactionId()))).toBe('SUCCESS');
    // Assess
    const raw = await rawUser(payer.userId);
    expect(raw?.membershipExpiredAt).toBeUndefined();
    expect(raw?.membershipEndMs).toBe(Date.parse(extendMembership(BASE, new Date(), payer.plan.days)));
    await expectCredits(payer, 1, {});
  });
});

describe('F10 TransactionConflict on the paid transition', () => {
  it.each<['order' | 'user', number]>([
    ['order', 1],
    ['user', 1],
    ['order', 4],
  ])('retries and credits once when the %s item conflicts %i time(s)', async (side, times) => {
    // Prepare
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    let conflicts = 0;
    intercept('initialize', async (call, proceed) => {
      if (isSettle(call, payer.outTradeNo) && conflicts < times) {
        conflicts++;
        throw side === 'order'
          ? transactionCanceled('TransactionConflict', 'None')
          : transactionCanceled('None', 'TransactionConflict');
      }
      return proceed();
    });
    // Act
    const reply = await deliver(notifyXml(payer, transactionId));
    // Assess
    expect(reply).toBe('SUCCESS');
    expect(conflicts).toBe(times);
    await expectCredits(payer, 1, { transactionId });
  });

  it('answers FAIL with nothing written when conflicts outlast the retry budget, and a redelivery credits once', async () => {
    // Prepare: every transaction conflicts until the fault is removed
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    let conflicts = 0;
    const remove = intercept('initialize', async (call, proceed) => {
      if (!isSettle(call, payer.outTradeNo)) return proceed();
      conflicts++;
      throw transactionCanceled('TransactionConflict', 'None');
    });
    // Act
    const reply = await deliver(notifyXml(payer, transactionId));
    // Assess: bounded, then FAIL (WeChat retries); nothing committed
    expect(reply).toBe('FAIL');
    expect(conflicts).toBeGreaterThan(1);
    await expectCredits(payer, 0);
    // Act: the conflict is gone; WeChat redelivers
    remove();
    const redelivered = await deliver(notifyXml(payer, transactionId));
    // Assess
    expect(redelivered).toBe('SUCCESS');
    await expectCredits(payer, 1, { transactionId });
  });
});

describe('F11 a crash after the commit, before the reply', () => {
  it('answers FAIL, then acknowledges the redelivery through the duplicate path with credits = 1', async () => {
    // Prepare: the transaction commits, then the function dies before it can answer
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    let crashed = false;
    intercept('initialize', async (call, proceed) => {
      const output = await proceed();
      if (isSettle(call, payer.outTradeNo) && !crashed) {
        crashed = true;
        throw new Error('crash after commit');
      }
      return output;
    });
    // Act
    const first = await deliver(notifyXml(payer, transactionId));
    // Assess: the commit is durable even though WeChat was told FAIL
    expect(crashed).toBe(true);
    expect(first).toBe('FAIL');
    await expectCredits(payer, 1, { transactionId });
    const calls = countDynamoCalls();
    let redelivered: Reply;
    try {
      // Act: WeChat redelivers
      redelivered = await deliver(notifyXml(payer, transactionId));
    } finally {
      calls.stop();
    }
    // Assess
    expect(redelivered).toBe('SUCCESS');
    expect(calls.writes()).toEqual([]);
    await expectCredits(payer, 1, { transactionId });
  });
});

describe('F13 the paid transition is one write by construction', () => {
  it('makes exactly one TransactWriteItems and no other write for a first notify', async () => {
    // Prepare
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    const calls = countDynamoCalls();
    let reply: Reply;
    try {
      // Act
      reply = await deliver(notifyXml(payer, transactionId));
    } finally {
      calls.stop();
    }
    // Assess
    expect(reply).toBe('SUCCESS');
    expect(calls.writes()).toEqual(['TransactWriteItems']);
    expect(calls.calls().filter((name) => name !== 'GetItem')).toEqual(['TransactWriteItems']);
    await expectCredits(payer, 1, { transactionId });
  });
});

describe('F14 concurrent duplicates of one payment', () => {
  it('credits once when notifies, the sandbox’s redelivery and order queries race', async () => {
    // Prepare: paid in WeChat, the first notify lost
    const payer = await pendingOrder();
    const transactionId = await sandboxPay(payer.outTradeNo);
    const deliveries: SandboxDelivery[] = [];
    forwarded.set(payer.outTradeNo, deliveries);
    // Act
    const [replies, views, again] = await Promise.all([
      Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          deliver(notifyXml(payer, transactionId, i % 2 ? 'HMAC-SHA256' : undefined)),
        ),
      ),
      Promise.all(
        Array.from({ length: 3 }, () =>
          invoke(getOrderHandler, {
            path: `/wechat/orders/${payer.outTradeNo}`,
            pathParameters: { outTradeNo: payer.outTradeNo },
            token: payer.token,
          }),
        ),
      ),
      sandbox('/sandbox/pay/notify-again', { outTradeNo: payer.outTradeNo }),
    ]);
    // Assess
    expect(replies).toEqual(Array(6).fill('SUCCESS'));
    // (one view queries WeChat, the others within the query cooldown answer what is stored at that moment)
    for (const view of views) {
      expect(view.status).toBe(200);
      expect(['PENDING', 'PAID']).toContain(view.data?.order.status);
    }
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({ status: 'PAID', transactionId });
    expect(again.delivered).toBe(true);
    expect(deliveries.map((delivery) => delivery.reply)).toEqual(['SUCCESS']);
    await expectCredits(payer, 1, { transactionId });
  });
});

describe('F15 the notify commits while createPayment is still running', () => {
  it('keeps the order PAID and answers 409 ORDER_PAID when the notify lands between prepay and savePrepayId', async () => {
    // Prepare: an open order stored without a prepay_id (WeChat was busy on the first tap); when paying it
    // again is about to store the prepay_id, the user has already paid and WeChat's notify has committed
    const { token, user } = await signInUser();
    const version = (await storedUser(user.id))?.version as number;
    await setFault('/pay/unifiedorder', 'busy', 2);
    const busy = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      body: { planId: 'monthly' },
      token,
    });
    await clearFaults();
    expect(busy.status).toBe(503);
    let outTradeNo = '';
    const deliveries: SandboxDelivery[] = [];
    intercept('initialize', async (call, proceed) => {
      const savingPrepayId =
        call.command === 'UpdateItem' && String(call.input.UpdateExpression).includes('prepayId');
      if (savingPrepayId && !outTradeNo) {
        outTradeNo = call.outTradeNo as string;
        forwarded.set(outTradeNo, deliveries);
        await sandboxPay(outTradeNo);
      }
      return proceed();
    });
    // Act: the double tap continues the open order and requests its prepay_id
    const result = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      body: { planId: 'monthly' },
      token,
    });
    // Assess: the late write did not revert the status; the client is told it is paid
    expect(deliveries.map((delivery) => delivery.reply)).toEqual(['SUCCESS']);
    expect(result.status).toBe(409);
    expect(result.code).toBe('ORDER_PAID');
    const order = await storedOrder(outTradeNo);
    expect(order?.status).toBe('PAID');
    expect(order?.prepayId).toBeUndefined();
    expect((await storedUser(user.id))?.version).toBe(version + 1);
  });

  it('records a notify that arrives before the order row exists as an exception, credits nothing from it, then credits a redelivery once', async () => {
    // Prepare: a notify for the out_trade_no createPayment is about to store (another plan than the
    // user's open order, so createPayment opens a new order rather than continuing that one)
    const first = await pendingOrder();
    const payer = { ...first, plan: findPlan('quarterly') as Plan, outTradeNo: '' };
    const transactionId = newTransactionId();
    let early: Reply | undefined;
    intercept('initialize', async (call, proceed) => {
      if (call.command === 'PutItem' && call.outTradeNo && early === undefined) {
        early = 'FAIL';
        payer.outTradeNo = call.outTradeNo;
        early = await deliver(notifyXml(payer, transactionId));
        expect(await storedOrder(call.outTradeNo)).toBeUndefined();
      }
      return proceed();
    });
    // Act
    const created = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      body: { planId: 'quarterly' },
      token: payer.token,
    });
    // Assess: never credited, never created from the notify (acknowledged once recorded as an exception;
    // the reconciler settles such a payment from WeChat's order query); the order is created PENDING
    expect(early).toBe('SUCCESS');
    expect((await exceptionsFor(payer.outTradeNo)).map((e) => e.reason)).toEqual(['unknown_order']);
    expect(created.status).toBe(200);
    expect(created.data?.order).toMatchObject({ outTradeNo: payer.outTradeNo, status: 'PENDING' });
    await expectCredits(payer, 0);
    // Act: WeChat redelivers
    const redelivered = await deliver(notifyXml(payer, transactionId));
    // Assess
    expect(redelivered).toBe('SUCCESS');
    await expectCredits(payer, 1, { transactionId });
  });
});

describe('F21 slow DynamoDB on the notify (Lambda timeout 4 s, middy early timeout by default)', () => {
  const LAMBDA_TIMEOUT_MS = 4000;

  /**
   * Holds our order's first paid transition before it reaches DynamoDB until `hold` settles; resolves once
   * that transaction has landed.
   */
  function delaySettle(outTradeNo: string, hold: Promise<unknown>): Promise<void> {
    let landed: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      landed = resolve;
    });
    let delayed = false;
    intercept('initialize', async (call, proceed) => {
      if (!isSettle(call, outTradeNo) || delayed) return proceed();
      delayed = true;
      await hold;
      try {
        return await proceed();
      } finally {
        landed();
      }
    });
    return done;
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it.concurrent('answers SUCCESS within the window when the transaction takes 2 s', async ({ expect }) => {
    // Prepare
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    const landed = delaySettle(payer.outTradeNo, sleep(2000));
    // Act
    const reply = await deliver(notifyXml(payer, transactionId), lambdaContext(LAMBDA_TIMEOUT_MS));
    // Assess
    expect(reply).toBe('SUCCESS');
    await landed;
    await expectCredits(payer, 1, { transactionId });
  });

  /**
   * Lets our order's first paid transition reach DynamoDB (it commits), then holds its answer until `hold`
   * settles; resolves once the answer is released.
   */
  function delayAnswer(outTradeNo: string, hold: Promise<unknown>): Promise<void> {
    let delayed = false;
    return new Promise<void>((released) => {
      intercept('initialize', async (call, proceed) => {
        if (!isSettle(call, outTradeNo) || delayed) return proceed();
        delayed = true;
        const answer = await proceed();
        await hold;
        released();
        return answer;
      });
    });
  }

  /**
   * Delivers the notify of a fresh PENDING order under a 4 s Lambda context while its paid transition is held
   * past the deadline: before it is sent (`request`) or after it committed (`answer`). `release` ends the hold.
   */
  async function deliverHeld(where: 'request' | 'answer') {
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    let release: () => void = () => {};
    const hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const landed =
      where === 'request' ? delaySettle(payer.outTradeNo, hold) : delayAnswer(payer.outTradeNo, hold);
    const started = Date.now();
    const reply = await deliver(notifyXml(payer, transactionId), lambdaContext(LAMBDA_TIMEOUT_MS));
    return { payer, transactionId, reply, ms: Date.now() - started, release, landed };
  }

  it.concurrent('answers FAIL before the deadline when the transaction is not sent in time; it is never sent late, and the redelivery credits once', async ({
    expect,
  }) => {
    // Act: the transaction is held before it is sent, past the 4 s Lambda timeout
    const { payer, transactionId, reply, ms, release, landed } = await deliverHeld('request');
    // Assess: an answer WeChat retries, before the Lambda's timeout, with nothing committed
    expect(reply).toBe('FAIL');
    expect(ms).toBeLessThan(LAMBDA_TIMEOUT_MS);
    await expectCredits(payer, 0);
    // Act: released past the invocation's deadline, the held transaction is refused, not sent late
    release();
    await landed;
    await expectCredits(payer, 0);
    const redelivered = await deliver(notifyXml(payer, transactionId));
    // Assess
    expect(redelivered).toBe('SUCCESS');
    await expectCredits(payer, 1, { transactionId });
  });

  it.concurrent('answers FAIL before the deadline when the commit is answered late; the late commit makes the redelivery a duplicate', async ({
    expect,
  }) => {
    // Act: the transaction commits, its answer is held past the 4 s Lambda timeout
    const { payer, transactionId, reply, ms, release, landed } = await deliverHeld('answer');
    // Assess: middy's early timeout answers FAIL (never SUCCESS without the commit's answer) in time
    expect(reply).toBe('FAIL');
    expect(ms).toBeLessThan(LAMBDA_TIMEOUT_MS);
    await expectCredits(payer, 1, { transactionId });
    // Act: WeChat redelivers
    release();
    await landed;
    const redelivered = await deliver(notifyXml(payer, transactionId));
    // Assess
    expect(redelivered).toBe('SUCCESS');
    await expectCredits(payer, 1, { transactionId });
  });

  it('credits once when WeChat redelivers while the slow first attempt is still in flight', async () => {
    // Prepare: the first attempt's transaction is held until the redelivery has committed
    const payer = await pendingOrder();
    const transactionId = newTransactionId();
    let reached: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let first = true;
    intercept('initialize', async (call, proceed) => {
      if (isSettle(call, payer.outTradeNo) && first) {
        first = false;
        reached();
        await gate;
      }
      return proceed();
    });
    // Act
    const slow = deliver(notifyXml(payer, transactionId));
    await held;
    const redelivered = await deliver(notifyXml(payer, transactionId));
    release();
    // Assess: the redelivery committed; the slow attempt found the order PAID with its txid (duplicate)
    expect(redelivered).toBe('SUCCESS');
    expect(await slow).toBe('SUCCESS');
    await expectCredits(payer, 1, { transactionId });
  });
});
