/**
 * Issue 11, refunds: POST /admin/refunds against DynamoDB Local and the sandbox, v2 (mutual TLS) and v3. The
 * sandbox really delivers the payment and refund notifies over HTTP to a loopback server that runs the real
 * payNotify handler, so every path (refund answer, notify, reconciler query) goes through the real code.
 */

import { request as httpsRequest } from 'node:https';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as adminRefundHandler } from '#functions/admin-refund';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as getOrderHandler } from '#functions/get-order';
import { dynamo } from '#lib/clients/dynamodb';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { type Config, loadConfig, resetConfigCache } from '#lib/config';
import { reconcile } from '#lib/payments/reconcile';
import { reconcileRefunds } from '#lib/payments/refunds';
import { getRefund, type RefundRecord } from '#lib/repositories/refund-repository';
import { sandboxTlsFiles } from '#local/sandbox/index';
import { TEST_SANDBOX_TLS_PORT } from '#test/test-env';
import {
  exceptionsFor,
  invoke,
  sandboxCallCount,
  sandboxJson,
  sandboxUrl,
  signInUser,
  storedUser,
  useLoopbackNotify,
} from './helpers';

const DAY_MS = 86_400_000;

let stopNotify: () => Promise<void>;
beforeAll(async () => {
  stopNotify = await useLoopbackNotify();
});
afterAll(() => stopNotify());

const sandbox = sandboxJson;

async function storedOrder(outTradeNo: string): Promise<Record<string, unknown>> {
  const { ordersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item ?? {};
}

/** A signed-in user (or `user`) pays a new order of `planId` through the sandbox; the notify is delivered. */
async function paidOrder(
  planId = 'monthly',
  user?: { token: string; userId: string },
): Promise<{ token: string; userId: string; outTradeNo: string; transactionId: string }> {
  const payer: { token: string; userId: string } =
    user ?? (await signInUser().then(({ token, user: signedIn }) => ({ token, userId: signedIn.id })));
  const created = await invoke(createPaymentHandler, {
    method: 'POST',
    path: '/wechat/pay',
    body: { planId },
    token: payer.token,
  });
  expect(created.status).toBe(200);
  const outTradeNo = created.data?.order.outTradeNo as string;
  const paid = await sandbox('/sandbox/pay', { outTradeNo });
  expect(paid.json.delivered).toBe(true);
  expect((await storedOrder(outTradeNo)).status).toBe('PAID');
  return { ...payer, outTradeNo, transactionId: paid.json.transactionId as string };
}

function refund(body: Record<string, unknown>, key?: string) {
  return invoke(adminRefundHandler, {
    method: 'POST',
    path: '/admin/refunds',
    body,
    ...(key ? { headers: { 'idempotency-key': key } } : {}),
  });
}

/** Waits until a refund is final in our table (the sandbox finishes it after a short delay, then notifies). */
async function settled(outRefundNo: string, timeoutMs = 10_000): Promise<RefundRecord> {
  const { ordersTable } = await loadConfig();
  const until = Date.now() + timeoutMs;
  for (;;) {
    const stored = await getRefund(ordersTable, outRefundNo);
    if (stored && stored.status !== 'PROCESSING') return stored;
    if (Date.now() > until) throw new Error(`refund ${outRefundNo} still ${stored?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the sandbox has finished a refund on its side (its notify possibly lost). */
async function finishedAtWechat(outRefundNo: string): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const { json } = await sandbox('/sandbox/refunds', undefined, 'GET');
    const found = (json.refunds as { outRefundNo: string; status: string }[]).find(
      (r) => r.outRefundNo === outRefundNo,
    );
    if (found && found.status !== 'PROCESSING') return;
    if (Date.now() > until) throw new Error(`sandbox refund ${outRefundNo} not finished`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const endOf = async (userId: string) => Date.parse((await storedUser(userId))?.membershipExpiredAt as string);

describe.each(['v2', 'v3'] as const)('refunds on %s', (version) => {
  let config: Config;

  beforeAll(async () => {
    process.env.WECHAT_PAY_VERSION = version;
    resetConfigCache();
    config = await loadConfig();
  });

  it('a full refund ends REFUNDED and leaves the membership exactly as without the order', async () => {
    // Prepare: two monthly orders; the membership after the first one is what it would be without the second
    const first = await paidOrder();
    const endWithoutSecond = await endOf(first.userId);
    const second = await paidOrder('monthly', first);
    expect(await endOf(first.userId)).toBe(endWithoutSecond + 31 * DAY_MS);
    const endpoint = version === 'v2' ? '/secapi/pay/refund' : '/v3/refund/domestic/refunds';
    const calls = await sandboxCallCount(endpoint);
    // Act
    const answered = await refund({ outTradeNo: second.outTradeNo, reason: '用户申请退款' });
    const done = await settled(answered.data?.refund.outRefundNo as string);
    // Assess: one refund request to WeChat (v2: over the mutual-TLS listener, the only one that serves it)
    expect(await sandboxCallCount(endpoint)).toBe(calls + 1);
    expect(answered.status).toBe(200);
    expect(answered.data?.refund).toMatchObject({ outTradeNo: second.outTradeNo, amount: 1800 });
    expect(done).toMatchObject({
      kind: 'refund',
      refundOf: second.outTradeNo,
      amount: 1800,
      totalFee: 1800,
      status: 'SUCCESS',
      payVersion: version,
      reason: '用户申请退款',
    });
    expect(done.ledgerDay).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(done.refundId).toMatch(/^5030/);
    expect(await storedOrder(second.outTradeNo)).toMatchObject({
      status: 'REFUNDED',
      refundedFee: 1800,
      refundReservedFee: 1800,
      revokedDays: 31,
    });
    expect(await endOf(first.userId)).toBe(endWithoutSecond);
    expect((await storedUser(first.userId))?.role).toBe(1);
    const view = await invoke(getOrderHandler, {
      method: 'GET',
      path: `/wechat/orders/${second.outTradeNo}`,
      pathParameters: { outTradeNo: second.outTradeNo },
      token: first.token,
    });
    expect(view.data?.order).toMatchObject({ status: 'REFUNDED', refundedFee: 1800 });
  });

  it('a full refund of a member’s only order returns the role to 0', async () => {
    // Prepare
    const payer = await paidOrder();
    // Act
    const answered = await refund({ outTradeNo: payer.outTradeNo });
    await settled(answered.data?.refund.outRefundNo as string);
    // Assess
    const user = await storedUser(payer.userId);
    expect(user?.role).toBe(0);
    expect(Date.parse(user?.membershipExpiredAt as string)).toBeLessThanOrEqual(Date.now());
  });

  it('partial refunds revoke proportionally; refunding more than remains is 400 REFUND_EXCEEDS and writes nothing', async () => {
    // Prepare
    const payer = await paidOrder();
    const paidEnd = await endOf(payer.userId);
    // Act: two refunds of 600 fen on the 1800-fen order, then 700
    const one = await refund({ outTradeNo: payer.outTradeNo, amount: 600 });
    await settled(one.data?.refund.outRefundNo as string);
    const two = await refund({ outTradeNo: payer.outTradeNo, amount: 600 });
    await settled(two.data?.refund.outRefundNo as string);
    const before = await storedOrder(payer.outTradeNo);
    const tooMuch = await refund({ outTradeNo: payer.outTradeNo, amount: 700 });
    // Assess
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.code).toBe('REFUND_EXCEEDS');
    expect(await storedOrder(payer.outTradeNo)).toEqual(before);
    expect(before).toMatchObject({
      status: 'PAID',
      refundedFee: 1200,
      refundReservedFee: 1200,
      revokedDays: 20,
    });
    expect(await endOf(payer.userId)).toBe(paidEnd - 20 * DAY_MS);
    const view = await invoke(getOrderHandler, {
      method: 'GET',
      path: `/wechat/orders/${payer.outTradeNo}`,
      pathParameters: { outTradeNo: payer.outTradeNo },
      token: payer.token,
    });
    expect(view.data?.order).toMatchObject({ status: 'PAID', refundedFee: 1200 });
    // The rest (600 by default) completes it: exactly the plan's 31 days revoked in all
    const rest = await refund({ outTradeNo: payer.outTradeNo });
    expect(rest.data?.refund.amount).toBe(600);
    await settled(rest.data?.refund.outRefundNo as string);
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({ status: 'REFUNDED', revokedDays: 31 });
    expect(await endOf(payer.userId)).toBe(paidEnd - 31 * DAY_MS);
  });

  it('concurrent refunds never sum above the total', async () => {
    // Prepare
    const payer = await paidOrder();
    // Act: ten operators refund 400 fen at once
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => refund({ outTradeNo: payer.outTradeNo, amount: 400 })),
    );
    const accepted = answers.filter((answer) => answer.status === 200);
    await Promise.all(accepted.map((answer) => settled(answer.data?.refund.outRefundNo as string)));
    // Assess
    expect(accepted).toHaveLength(4);
    for (const answer of answers.filter((a) => a.status !== 200)) {
      expect([answer.status, answer.code]).toEqual([400, 'REFUND_EXCEEDS']);
    }
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({
      status: 'PAID',
      refundReservedFee: 1600,
      refundedFee: 1600,
      revokedDays: Math.floor((31 * 1600) / 1800),
    });
  });

  it('50 duplicate refund notifies at once revoke once', async () => {
    // Prepare: the refund's own notify is lost; WeChat then delivers it 50 times at once
    const payer = await paidOrder();
    const paidEnd = await endOf(payer.userId);
    const versionBefore = (await storedUser(payer.userId))?.version as number;
    await sandbox('/sandbox/refunds/outcome', { mode: 'SUCCESS', deliver: false, delayMs: 0 });
    const answered = await refund({ outTradeNo: payer.outTradeNo, amount: 900 });
    const outRefundNo = answered.data?.refund.outRefundNo as string;
    await finishedAtWechat(outRefundNo);
    // Act
    const deliveries = await Promise.all(
      Array.from({ length: 50 }, () => sandbox('/sandbox/refunds/notify-again', { outRefundNo })),
    );
    // Assess
    expect(deliveries.every((d) => d.status === 200 && d.json.accepted === true)).toBe(true);
    expect((await settled(outRefundNo)).status).toBe('SUCCESS');
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({ refundedFee: 900, revokedDays: 15 });
    expect(await endOf(payer.userId)).toBe(paidEnd - 15 * DAY_MS);
    expect((await storedUser(payer.userId))?.version).toBe(versionBefore + 1);
  });

  it('F16: a refund notify racing the reconciler’s refund query applies once', async () => {
    // Prepare
    const payer = await paidOrder();
    const paidEnd = await endOf(payer.userId);
    await sandbox('/sandbox/refunds/outcome', { mode: 'SUCCESS', deliver: false, delayMs: 0 });
    const answered = await refund({ outTradeNo: payer.outTradeNo });
    const outRefundNo = answered.data?.refund.outRefundNo as string;
    await finishedAtWechat(outRefundNo);
    // Act
    const [notified, pass] = await Promise.all([
      sandbox('/sandbox/refunds/notify-again', { outRefundNo }),
      reconcileRefunds(config, paymentProviders(config), { deadline: Date.now() + 20_000, all: true }),
    ]);
    // Assess
    expect(notified.json.accepted).toBe(true);
    expect(pass.failed).toBe(0);
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({ status: 'REFUNDED', revokedDays: 31 });
    expect(await endOf(payer.userId)).toBe(paidEnd - 31 * DAY_MS);
  });

  it('F16: a late TRANSACTION.SUCCESS after a full refund is a duplicate and never credits again', async () => {
    // Prepare
    const payer = await paidOrder();
    const answered = await refund({ outTradeNo: payer.outTradeNo });
    await settled(answered.data?.refund.outRefundNo as string);
    const user = await storedUser(payer.userId);
    // Act: WeChat resends the payment notify
    const again = await sandbox('/sandbox/pay/notify-again', { outTradeNo: payer.outTradeNo });
    // Assess
    expect(again.json.delivered).toBe(true);
    expect(await storedUser(payer.userId)).toEqual(user);
    expect((await storedOrder(payer.outTradeNo)).status).toBe('REFUNDED');
    expect(await exceptionsFor(payer.outTradeNo)).toEqual([]);
  });

  it('the reconciler settles a refund whose notify was lost', async () => {
    // Prepare
    const payer = await paidOrder();
    await sandbox('/sandbox/refunds/outcome', { mode: 'SUCCESS', deliver: false, delayMs: 0 });
    const answered = await refund({ outTradeNo: payer.outTradeNo, amount: 600 });
    const outRefundNo = answered.data?.refund.outRefundNo as string;
    await finishedAtWechat(outRefundNo);
    // Act
    const pass = await reconcile(config, paymentProviders(config), {
      deadline: Date.now() + 20_000,
      all: true,
    });
    // Assess
    expect(pass.refundsSettled).toBeGreaterThanOrEqual(1);
    expect((await getRefund(config.ordersTable, outRefundNo))?.status).toBe('SUCCESS');
    expect((await storedOrder(payer.outTradeNo)).refundedFee).toBe(600);
  });

  it('CLOSED releases the reservation; ABNORMAL is recorded as a payment exception and keeps it', async () => {
    // Prepare
    const payer = await paidOrder();
    const paidEnd = await endOf(payer.userId);
    // Act
    await sandbox('/sandbox/refunds/outcome', { mode: 'CLOSED' });
    const closed = await refund({ outTradeNo: payer.outTradeNo, amount: 600 });
    const closedRefund = await settled(closed.data?.refund.outRefundNo as string);
    const afterClose = await storedOrder(payer.outTradeNo);
    await sandbox('/sandbox/refunds/outcome', { mode: 'ABNORMAL' });
    const abnormal = await refund({ outTradeNo: payer.outTradeNo, amount: 600 });
    const abnormalRefund = await settled(abnormal.data?.refund.outRefundNo as string);
    // Assess
    expect(closedRefund.status).toBe('CLOSED');
    expect(afterClose).toMatchObject({ status: 'PAID', refundReservedFee: 0 });
    expect(abnormalRefund.status).toBe('ABNORMAL');
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({ status: 'PAID', refundReservedFee: 600 });
    expect((await storedOrder(payer.outTradeNo)).refundedFee).toBeUndefined();
    expect(await endOf(payer.userId)).toBe(paidEnd);
    const recorded = await exceptionsFor(payer.outTradeNo);
    expect(recorded.map((e) => [e.reason, e.transactionId, e.reportedFee])).toEqual([
      ['refund_abnormal', `REFUND#${abnormalRefund.outRefundNo}`, 600],
    ]);
  });

  it('an ABNORMAL refund the merchant re-applied ends SUCCESS once: revoked once, its reservation spent, duplicates ignored', async () => {
    // Prepare: the refund of 600 goes ABNORMAL (the user's card is closed)
    const payer = await paidOrder();
    const paidEnd = await endOf(payer.userId);
    await sandbox('/sandbox/refunds/outcome', { mode: 'ABNORMAL' });
    const answered = await refund({ outTradeNo: payer.outTradeNo, amount: 600 });
    const outRefundNo = answered.data?.refund.outRefundNo as string;
    expect((await settled(outRefundNo)).status).toBe('ABNORMAL');
    // Act: the merchant re-applies it; WeChat reports SUCCESS (notify), then again, and a reconcile pass races
    await sandbox('/sandbox/refunds/resolve', { outRefundNo, status: 'SUCCESS' });
    const until = Date.now() + 10_000;
    while ((await getRefund(config.ordersTable, outRefundNo))?.status !== 'SUCCESS' && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const [again, pass] = await Promise.all([
      sandbox('/sandbox/refunds/notify-again', { outRefundNo }),
      reconcileRefunds(config, paymentProviders(config), { deadline: Date.now() + 20_000, all: true }),
    ]);
    // Assess: ⌊31 × 600 ÷ 1800⌋ = 10 days revoked exactly once
    expect(again.json.accepted).toBe(true);
    expect(pass.failed).toBe(0);
    expect((await getRefund(config.ordersTable, outRefundNo))?.status).toBe('SUCCESS');
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({
      status: 'PAID',
      refundReservedFee: 600,
      refundedFee: 600,
      revokedDays: 10,
    });
    expect(await endOf(payer.userId)).toBe(paidEnd - 10 * DAY_MS);
  });

  it('an ABNORMAL refund stays due for the reconciler, and CLOSED at WeChat releases its reservation', async () => {
    // Prepare
    const payer = await paidOrder();
    const paidEnd = await endOf(payer.userId);
    await sandbox('/sandbox/refunds/outcome', { mode: 'ABNORMAL' });
    const answered = await refund({ outTradeNo: payer.outTradeNo, amount: 600 });
    const outRefundNo = answered.data?.refund.outRefundNo as string;
    await settled(outRefundNo);
    const stillAbnormal = await reconcileRefunds(config, paymentProviders(config), {
      deadline: Date.now() + 20_000,
      all: true,
    });
    const abnormal = await getRefund(config.ordersTable, outRefundNo);
    // Act: it ends CLOSED at WeChat (the merchant gave up on it); its notify races a reconcile pass
    const resolved = await sandbox('/sandbox/refunds/resolve', { outRefundNo, status: 'CLOSED' });
    const pass = await reconcileRefunds(config, paymentProviders(config), {
      deadline: Date.now() + 20_000,
      all: true,
    });
    // Assess
    expect(stillAbnormal.failed).toBe(0);
    expect(abnormal?.status).toBe('ABNORMAL');
    expect(abnormal?.reconcileAt).toBeDefined();
    expect(resolved.status).toBe(200);
    expect(pass.failed).toBe(0);
    expect((await getRefund(config.ordersTable, outRefundNo))?.status).toBe('CLOSED');
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({ status: 'PAID', refundReservedFee: 0 });
    expect(await endOf(payer.userId)).toBe(paidEnd);
  });

  it('an Idempotency-Key makes retried and concurrent requests answer the same refund, refunded once', async () => {
    // Prepare
    const payer = await paidOrder();
    const key = `op-${version}-${payer.outTradeNo}`;
    // Act
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => refund({ outTradeNo: payer.outTradeNo, amount: 500 }, key)),
    );
    const outRefundNo = answers[0]?.data?.refund.outRefundNo as string;
    await settled(outRefundNo);
    const retried = await refund({ outTradeNo: payer.outTradeNo, amount: 500 }, key);
    const reused = await refund({ outTradeNo: payer.outTradeNo, amount: 400 }, key);
    // Assess
    expect(answers.map((a) => [a.status, a.data?.refund.outRefundNo])).toEqual(
      Array.from({ length: 5 }, () => [200, outRefundNo]),
    );
    expect(retried.data?.refund).toEqual({
      outRefundNo,
      outTradeNo: payer.outTradeNo,
      amount: 500,
      status: 'SUCCESS',
    });
    expect([reused.status, reused.code]).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    const { json } = await sandbox(`/sandbox/refunds?outTradeNo=${payer.outTradeNo}`, undefined, 'GET');
    expect((json.refunds as unknown[]).length).toBe(1);
    expect(await storedOrder(payer.outTradeNo)).toMatchObject({ refundReservedFee: 500, refundedFee: 500 });
  });

  it('refuses an order that is not PAID with 409 and an unknown one with 404, writing nothing', async () => {
    // Prepare
    const { token } = await signInUser();
    const created = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      body: { planId: 'monthly' },
      token,
    });
    const outTradeNo = created.data?.order.outTradeNo as string;
    const before = await storedOrder(outTradeNo);
    // Act
    const pending = await refund({ outTradeNo });
    const unknown = await refund({ outTradeNo: 'M20990101000000unknown0000' });
    const bad = await refund({ outTradeNo, amount: 1.5, reason: 'x'.repeat(81) });
    // Assess
    expect([pending.status, pending.code]).toEqual([409, 'ORDER_NOT_REFUNDABLE']);
    expect([unknown.status, unknown.code]).toEqual([404, 'ORDER_NOT_FOUND']);
    expect([bad.status, bad.code]).toEqual([400, 'VALIDATION_ERROR']);
    expect(await storedOrder(outTradeNo)).toEqual(before);
  });
});

describe('v2 /secapi/ over mutual TLS', () => {
  const tls = sandboxTlsFiles();
  const post = (options: { cert?: string; key?: string }) =>
    new Promise<number>((resolve, reject) => {
      const req = httpsRequest(
        `https://127.0.0.1:${TEST_SANDBOX_TLS_PORT}/secapi/pay/refund`,
        { method: 'POST', ca: tls.ca, ...options },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end('<xml></xml>');
    });

  it('refuses a client without the merchant certificate at the TLS handshake, and accepts one with it', async () => {
    // Prepare: the merchant API certificate and key of .env.example (WECHAT_MCH_CERT, WECHAT_MCH_PRIVATE_KEY)
    const cert = process.env.WECHAT_MCH_CERT as string;
    const key = process.env.WECHAT_MCH_PRIVATE_KEY as string;
    // Act
    const without = await post({}).then(
      (status) => ({ status }),
      (error: Error) => ({ error }),
    );
    const withCert = await post({ cert, key });
    // Assess
    expect('error' in without).toBe(true);
    expect(withCert).toBe(200);
  });

  it('answers the plain listener’s /secapi/ with a certificate error', async () => {
    // Act
    const response = await fetch(`${sandboxUrl}/secapi/pay/refund`, { method: 'POST', body: '<xml></xml>' });
    // Assess
    expect(await response.text()).toContain('CERT_ERROR');
  });
});
