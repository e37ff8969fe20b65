/**
 * Issue 10: no payment left behind. The reconciler credits lost notifies through the same exactly-once
 * settle, closes expired orders at WeChat and here, and races notifies and itself safely; owners close
 * their own orders; operators read orders and payment exceptions. Against DynamoDB Local and the sandbox,
 * with true concurrency (Promise.all in process).
 */
import { DeleteCommand, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { handler as adminGetOrderHandler } from '#functions/admin-get-order';
import { handler as adminExceptionsHandler } from '#functions/admin-list-exceptions';
import { handler as adminReconcileHandler } from '#functions/admin-reconcile';
import { handler as closeOrderHandler } from '#functions/close-order';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { dynamo } from '#lib/clients/dynamodb';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { reconcile } from '#lib/payments/reconcile';
import { RECONCILE_STEPS_MINUTES } from '#lib/payments/rules';
import { context, envelope, httpEvent } from '#local/fixtures/events';
import {
  exceptionsFor,
  invoke,
  deliverV2Notify as notify,
  sandboxUrl,
  signInUser,
  storedUser,
} from './helpers';

const SUCCESS = '<return_code><![CDATA[SUCCESS]]></return_code>';

async function sandbox(
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** A signed-in user with a PENDING order (prepay done) for `planId`. */
async function pendingOrder(planId = 'monthly') {
  const { token, user } = await signInUser();
  const created = await invoke(createPaymentHandler, {
    method: 'POST',
    path: '/wechat/pay',
    body: { planId },
    token,
  });
  expect(created.status).toBe(200);
  return { token, userId: user.id, outTradeNo: created.data?.order.outTradeNo as string };
}

/** The user pays in WeChat, and the notify is lost (never delivered). Returns the transaction_id. */
async function payAndLoseNotify(outTradeNo: string): Promise<string> {
  const paid = await sandbox('/sandbox/pay', { outTradeNo, deliver: false });
  expect(paid.status).toBe(200);
  expect(paid.json.delivered).toBe(false);
  return paid.json.transactionId as string;
}

async function storedOrder(outTradeNo: string): Promise<Record<string, unknown> | undefined> {
  const { ordersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item;
}

/** Plays time: the order expired (and is due) `minutes` ago. */
async function expire(outTradeNo: string, minutes = 1): Promise<void> {
  const { ordersTable } = await loadConfig();
  const past = new Date(Date.now() - minutes * 60_000).toISOString();
  await dynamo().send(
    new UpdateCommand({
      TableName: ordersTable,
      Key: { outTradeNo },
      UpdateExpression: 'SET timeExpire = :past, reconcileAt = :past',
      ExpressionAttributeValues: { ':past': past },
    }),
  );
}

async function pass(options: { all?: boolean; deadlineMs?: number } = {}) {
  const config = await loadConfig();
  return reconcile(config, paymentProvider(config), {
    all: options.all,
    deadline: Date.now() + (options.deadlineMs ?? 60_000),
  });
}

describe('the reconciler', () => {
  it('credits a lost notify once; the late notify then adds no credit', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    const transactionId = await payAndLoseNotify(outTradeNo);
    // Act
    const summary = await pass({ all: true });
    const late = await notify(outTradeNo, transactionId);
    const again = await pass({ all: true });
    // Assess
    expect(summary.credited).toBeGreaterThanOrEqual(1);
    expect(await storedOrder(outTradeNo)).toMatchObject({
      status: 'PAID',
      transactionId,
      paidVia: 'orderquery-v2',
    });
    expect(await storedOrder(outTradeNo)).not.toHaveProperty('reconcileAt');
    expect(late.body).toContain(SUCCESS);
    expect((await storedUser(userId))?.version).toBe(1);
    expect(again.checked).toBeGreaterThanOrEqual(0);
    expect((await storedUser(userId))?.version).toBe(1);
  });

  it('still checks orders in a pass too short to keep a quarter for refunds (14 s: one order needs 12 s)', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    const transactionId = await payAndLoseNotify(outTradeNo);
    // Act
    const summary = await pass({ all: true, deadlineMs: 14_000 });
    // Assess
    expect(summary.credited).toBeGreaterThanOrEqual(1);
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PAID', transactionId });
    expect((await storedUser(userId))?.version).toBe(1);
  });

  it('leaves an order that is not due alone, and moves a checked unpaid one to its next back-off step', async () => {
    // Prepare
    const { outTradeNo } = await pendingOrder();
    const before = await storedOrder(outTradeNo);
    // Act: a normal pass (the first check is due a minute after creation)
    await pass();
    const untouched = await storedOrder(outTradeNo);
    await pass({ all: true });
    const checked = await storedOrder(outTradeNo);
    // Assess
    expect(untouched?.reconcileAt).toBe(before?.reconcileAt);
    const created = Date.parse(before?.createdAt as string);
    expect(Date.parse(before?.reconcileAt as string) - created).toBe(RECONCILE_STEPS_MINUTES[0] * 60_000);
    expect(Date.parse(checked?.reconcileAt as string) - created).toBe(RECONCILE_STEPS_MINUTES[0] * 60_000);
    expect(checked?.status).toBe('PENDING');
  });

  it('closes an expired unpaid order at WeChat and here, and it leaves the reconcile index', async () => {
    // Prepare
    const { outTradeNo } = await pendingOrder();
    await expire(outTradeNo);
    // Act
    const summary = await pass();
    // Assess
    expect(summary.closed).toBeGreaterThanOrEqual(1);
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'CLOSED' });
    expect(await storedOrder(outTradeNo)).not.toHaveProperty('reconcileShard');
    const payAfterClose = await sandbox('/sandbox/pay', { outTradeNo });
    expect(payAfterClose.status).toBe(409);
  });

  it('settles, rather than closes, an expired order WeChat says was paid', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    const transactionId = await payAndLoseNotify(outTradeNo);
    await expire(outTradeNo);
    // Act
    await pass();
    // Assess
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PAID', transactionId });
    expect((await storedUser(userId))?.version).toBe(1);
  });

  it('F22 credits once when passes overlap and race the notify', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    const transactionId = await payAndLoseNotify(outTradeNo);
    // Act
    const [first, second, reply] = await Promise.all([
      pass({ all: true }),
      pass({ all: true }),
      notify(outTradeNo, transactionId),
    ]);
    // Assess
    expect(reply.body).toContain(SUCCESS);
    expect(first.failed + second.failed).toBe(0);
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PAID', transactionId });
    expect((await storedUser(userId))?.version).toBe(1);
  });

  it('takes no order once its time budget is spent, and says more is due', async () => {
    // Prepare
    const { outTradeNo } = await pendingOrder();
    await expire(outTradeNo);
    // Act
    const summary = await pass({ deadlineMs: 1000 });
    // Assess
    expect(summary).toMatchObject({ checked: 0, more: true });
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PENDING' });
    await pass();
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'CLOSED' });
  });
});

describe('payment exceptions', () => {
  it('records a payment whose owner was deleted once, acknowledges it, credits nothing', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    const { usersTable } = await loadConfig();
    await dynamo().send(new DeleteCommand({ TableName: usersTable, Key: { id: userId } }));
    const transactionId = await payAndLoseNotify(outTradeNo);
    // Act: WeChat delivers it twice, and the reconciler sees it too
    const replies = [await notify(outTradeNo, transactionId), await notify(outTradeNo, transactionId)];
    await pass({ all: true });
    // Assess
    expect(replies.every((reply) => reply.body?.includes(SUCCESS))).toBe(true);
    expect((await exceptionsFor(outTradeNo)).map((e) => [e.reason, e.transactionId, e.orderFee])).toEqual([
      ['owner_missing', transactionId, 1800],
    ]);
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PENDING' });
    expect(await storedUser(userId)).toBeUndefined();
  });
});

describe('POST /wechat/orders/{outTradeNo}/close', () => {
  const close = (token: string, outTradeNo: string) =>
    invoke(closeOrderHandler, {
      method: 'POST',
      path: `/wechat/orders/${outTradeNo}/close`,
      pathParameters: { outTradeNo },
      token,
    });

  it('closes the owner’s unpaid order at WeChat first, then here', async () => {
    // Prepare
    const { token, outTradeNo } = await pendingOrder();
    // Act
    const closed = await close(token, outTradeNo);
    const again = await close(token, outTradeNo);
    // Assess
    expect(closed.status).toBe(200);
    expect(closed.data?.order).toMatchObject({ outTradeNo, status: 'CLOSED' });
    expect(again.data?.order.status).toBe('CLOSED');
    expect((await sandbox('/sandbox/pay', { outTradeNo })).status).toBe(409);
  });

  it('answers 409 ORDER_PAID and credits once when WeChat says the order was paid', async () => {
    // Prepare
    const { token, userId, outTradeNo } = await pendingOrder();
    const transactionId = await payAndLoseNotify(outTradeNo);
    // Act
    const closed = await close(token, outTradeNo);
    // Assess
    expect(closed.status).toBe(409);
    expect(closed.code).toBe('ORDER_PAID');
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PAID', transactionId });
    expect((await storedUser(userId))?.version).toBe(1);
  });

  it('hides another user’s order (404) and touches nothing', async () => {
    // Prepare
    const { outTradeNo } = await pendingOrder();
    const stranger = await signInUser();
    // Act
    const closed = await close(stranger.token, outTradeNo);
    // Assess
    expect(closed.status).toBe(404);
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PENDING' });
  });
});

describe('the admin routes', () => {
  it('runs a reconcile pass, shows the whole order, and lists payment exceptions newest first', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    await payAndLoseNotify(outTradeNo);
    const stray = `M20990101000000admin${String(Date.now()).slice(-6)}`;
    await notify(stray, '4200000000202611300000000001');
    // Act
    const lambda = { ...context, getRemainingTimeInMillis: () => 25_000 };
    const result = await adminReconcileHandler(
      httpEvent({ method: 'POST', path: '/admin/reconcile', body: { all: true } }),
      lambda,
    );
    const ran = { status: result.statusCode, ...envelope(result) };
    const order = await invoke(adminGetOrderHandler, {
      path: `/admin/orders/${outTradeNo}`,
      pathParameters: { outTradeNo },
    });
    const listed = await invoke(adminExceptionsHandler, {
      path: '/admin/exceptions',
      queryStringParameters: { limit: '100' },
    });
    const bad = await invoke(adminReconcileHandler, {
      method: 'POST',
      path: '/admin/reconcile',
      body: { all: 'yes' },
    });
    // Assess
    expect(ran.status).toBe(200);
    expect(ran.data).toMatchObject({ checked: expect.any(Number), credited: expect.any(Number) });
    expect(order.data?.order).toMatchObject({ outTradeNo, userId, status: 'PAID', payVersion: 'v2' });
    expect(order.data?.order.prepayId).toEqual(expect.any(String));
    const exceptions = listed.data?.exceptions as { outTradeNo: string; reason: string; at: string }[];
    expect(exceptions.find((e) => e.outTradeNo === stray)).toMatchObject({
      reason: 'unknown_order',
      reportedFee: 1800,
    });
    const times = exceptions.map((e) => e.at);
    expect([...times].sort().reverse()).toEqual(times);
    expect(bad.status).toBe(400);
  });

  it('pages exceptions with an opaque cursor and refuses a forged one', async () => {
    // Prepare
    for (let i = 0; i < 3; i++)
      await notify(
        `M20990101000000page${i}${String(Date.now()).slice(-6)}`,
        `42000000002026113000000001${i}`,
      );
    // Act
    const first = await invoke(adminExceptionsHandler, {
      path: '/admin/exceptions',
      queryStringParameters: { limit: '2' },
    });
    const next = await invoke(adminExceptionsHandler, {
      path: '/admin/exceptions',
      queryStringParameters: { limit: '2', cursor: first.data?.nextCursor },
    });
    const forged = await invoke(adminExceptionsHandler, {
      path: '/admin/exceptions',
      queryStringParameters: { cursor: Buffer.from('{"outTradeNo":"M1"}').toString('base64url') },
    });
    // Assess
    expect(first.data?.exceptions).toHaveLength(2);
    expect(first.data?.nextCursor).toEqual(expect.any(String));
    expect(next.data?.exceptions[0].at <= first.data?.exceptions[1].at).toBe(true);
    expect(forged.status).toBe(400);
    expect(forged.code).toBe('INVALID_CURSOR');
  });
});
