/**
 * POST /admin/refunds/{outRefundNo}/apply-abnormal against DynamoDB Local and the sandbox: a v3 refund the sandbox
 * makes ABNORMAL is re-applied through our API on the wire (signed, Wechatpay-Serial, RSA-OAEP bank fields the
 * sandbox decrypts), goes back to PROCESSING, and its SUCCESS (the sandbox's resolve, delivered as a real notify to a
 * loopback server running payNotify) revokes the membership exactly once. On v2 the route refuses without a call.
 */

import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as adminAbnormalHandler } from '#functions/admin-abnormal-refund';
import { handler as adminRefundHandler } from '#functions/admin-refund';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { dynamo } from '#lib/clients/dynamodb';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { type Config, loadConfig, resetConfigCache } from '#lib/config';
import { reconcileRefunds } from '#lib/payments/refunds';
import { getRefund, type RefundRecord, refundKey } from '#lib/repositories/refund-repository';
import { forbidInLogs } from '#test/helpers/log-sink';
import { invoke, sandboxCalls, sandboxJson, signInUser, storedUser, useLoopbackNotify } from './helpers';

const DAY_MS = 86_400_000;
const ABNORMAL_ENDPOINT = /^\/v3\/refund\/domestic\/refunds\/[^/]+\/apply-abnormal-refund$/;
const ACCOUNT = '6217000010012345678';
const NAME = '王小明';

let stopNotify: () => Promise<void>;
beforeAll(async () => {
  stopNotify = await useLoopbackNotify();
});
afterAll(() => stopNotify());

const sandbox = sandboxJson;

/** An item of the orders table exactly as stored (index attributes included). */
async function rawItem(key: string): Promise<Record<string, unknown>> {
  const { ordersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: ordersTable, Key: { outTradeNo: key }, ConsistentRead: true }),
  );
  return Item ?? {};
}

const endOf = async (userId: string) => Date.parse((await storedUser(userId))?.membershipExpiredAt as string);

/** A signed-in user pays a monthly order (1800 fen, 31 days) through the sandbox; the notify is delivered. */
async function paidOrder(): Promise<{ userId: string; outTradeNo: string }> {
  const { token, user } = await signInUser();
  const created = await invoke(createPaymentHandler, {
    method: 'POST',
    path: '/wechat/pay',
    body: { planId: 'monthly' },
    token,
  });
  expect(created.status).toBe(200);
  const outTradeNo = created.data?.order.outTradeNo as string;
  expect((await sandbox('/sandbox/pay', { outTradeNo })).json.delivered).toBe(true);
  return { userId: user.id, outTradeNo };
}

/** Waits until a refund is in one of `statuses` in our table. */
async function reaches(outRefundNo: string, ...statuses: RefundRecord['status'][]): Promise<RefundRecord> {
  const { ordersTable } = await loadConfig();
  const until = Date.now() + 10_000;
  for (;;) {
    const stored = await getRefund(ordersTable, outRefundNo);
    if (stored && statuses.includes(stored.status)) return stored;
    if (Date.now() > until) throw new Error(`refund ${outRefundNo} still ${stored?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A paid order with a 600-fen refund the sandbox made ABNORMAL (the user's card is closed). */
async function abnormalRefund() {
  const payer = await paidOrder();
  const paidEnd = await endOf(payer.userId);
  await sandbox('/sandbox/refunds/outcome', { mode: 'ABNORMAL' });
  const answered = await invoke(adminRefundHandler, {
    method: 'POST',
    path: '/admin/refunds',
    body: { outTradeNo: payer.outTradeNo, amount: 600 },
  });
  const outRefundNo = answered.data?.refund.outRefundNo as string;
  const abnormal = await reaches(outRefundNo, 'ABNORMAL');
  return { ...payer, paidEnd, outRefundNo, abnormal };
}

function applyAbnormal(outRefundNo: string, body: unknown) {
  return invoke(adminAbnormalHandler, {
    method: 'POST',
    path: `/admin/refunds/${outRefundNo}/apply-abnormal`,
    pathParameters: { outRefundNo },
    body: body as object,
  });
}

const abnormalCalls = async () =>
  (await sandboxCalls()).filter((call) => ABNORMAL_ENDPOINT.test(call.path)).length;

describe('re-applying an ABNORMAL refund on v3', () => {
  let config: Config;

  beforeAll(async () => {
    process.env.WECHAT_PAY_VERSION = 'v3';
    resetConfigCache();
    config = await loadConfig();
  });

  it('MERCHANT_BANK_CARD: PROCESSING again and still reconciled; SUCCESS then revokes exactly once; twice → 409', async () => {
    // Prepare
    const { userId, outTradeNo, paidEnd, outRefundNo, abnormal } = await abnormalRefund();
    const callsBefore = await abnormalCalls();
    // Act: re-apply; apply again; WeChat resolves it SUCCESS (notify), then notifies again while a reconcile runs
    const applied = await applyAbnormal(outRefundNo, { type: 'MERCHANT_BANK_CARD' });
    const reapplied = await rawItem(refundKey(outRefundNo));
    const again = await applyAbnormal(outRefundNo, { type: 'MERCHANT_BANK_CARD' });
    const callsAfter = await abnormalCalls();
    const resolved = await sandbox('/sandbox/refunds/resolve', { outRefundNo, status: 'SUCCESS' });
    await reaches(outRefundNo, 'SUCCESS');
    const [notifiedAgain, pass] = await Promise.all([
      sandbox('/sandbox/refunds/notify-again', { outRefundNo }),
      reconcileRefunds(config, paymentProviders(config), { deadline: Date.now() + 20_000, all: true }),
    ]);
    // Assess
    expect(abnormal.refundId).toMatch(/^5030/);
    expect(applied.status).toBe(200);
    expect(applied.data?.refund).toMatchObject({
      outRefundNo,
      outTradeNo,
      amount: 600,
      status: 'PROCESSING',
      reapplications: [{ type: 'MERCHANT_BANK_CARD', at: expect.any(String) }],
    });
    expect(reapplied).toMatchObject({ status: 'PROCESSING', reconcileShard: 'REFUND' });
    expect(Date.parse(reapplied.reconcileAt as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(again.status).toBe(409);
    expect(again.code).toBe('REFUND_NOT_ABNORMAL');
    expect(callsAfter).toBe(callsBefore + 1);
    expect(resolved.status).toBe(200);
    expect(notifiedAgain.json.accepted).toBe(true);
    expect(pass.failed).toBe(0);
    expect(await getRefund(config.ordersTable, outRefundNo)).toMatchObject({ status: 'SUCCESS' });
    // ⌊31 × 600 ÷ 1800⌋ = 10 days, once
    expect(await rawItem(outTradeNo)).toMatchObject({
      status: 'PAID',
      refundReservedFee: 600,
      refundedFee: 600,
      revokedDays: 10,
    });
    expect(await endOf(userId)).toBe(paidEnd - 10 * DAY_MS);
  });

  it('USER_BANK_CARD: the sandbox decrypts the card and name we sent; neither is stored; CLOSED releases the reservation', async () => {
    // Prepare
    forbidInLogs(ACCOUNT, NAME);
    const { userId, outTradeNo, paidEnd, outRefundNo } = await abnormalRefund();
    // Act
    const applied = await applyAbnormal(outRefundNo, {
      type: 'USER_BANK_CARD',
      bankType: 'CCB_DEBIT',
      bankAccount: ACCOUNT,
      realName: NAME,
    });
    const stored = await rawItem(refundKey(outRefundNo));
    const { json } = await sandbox(`/sandbox/refunds?outTradeNo=${outTradeNo}`, undefined, 'GET');
    await sandbox('/sandbox/refunds/resolve', { outRefundNo, status: 'CLOSED' });
    await reaches(outRefundNo, 'CLOSED');
    // Assess
    expect(applied.status).toBe(200);
    expect(applied.data?.refund).toMatchObject({ status: 'PROCESSING' });
    const atWechat = (json.refunds as { outRefundNo: string; reapplications?: unknown[] }[]).find(
      (refund) => refund.outRefundNo === outRefundNo,
    );
    expect(atWechat?.reapplications).toEqual([
      {
        type: 'USER_BANK_CARD',
        bankType: 'CCB_DEBIT',
        bankAccount: ACCOUNT,
        realName: NAME,
        at: expect.any(Number),
      },
    ]);
    expect(JSON.stringify(stored)).not.toContain(ACCOUNT);
    expect(JSON.stringify(stored)).not.toContain(NAME);
    expect(stored.reapplications).toEqual([{ type: 'USER_BANK_CARD', at: expect.any(String) }]);
    expect(await rawItem(outTradeNo)).toMatchObject({ status: 'PAID', refundReservedFee: 0 });
    expect(await endOf(userId)).toBe(paidEnd);
  });

  it('bad input → 400 VALIDATION_ERROR with no WeChat call and no write; unknown refund → 404', async () => {
    // Prepare
    const { outRefundNo } = await abnormalRefund();
    const before = await rawItem(refundKey(outRefundNo));
    const calls = (await sandboxCalls()).length;
    // Act
    const bad = await applyAbnormal(outRefundNo, {
      type: 'USER_BANK_CARD',
      bankType: 'CCB_DEBIT',
      realName: NAME,
    });
    const unknown = await applyAbnormal('R20261121080000nosuchrefund', { type: 'MERCHANT_BANK_CARD' });
    // Assess
    expect(bad.status).toBe(400);
    expect(bad.code).toBe('VALIDATION_ERROR');
    expect(unknown.status).toBe(404);
    expect(unknown.code).toBe('REFUND_NOT_FOUND');
    expect((await sandboxCalls()).length).toBe(calls);
    expect(await rawItem(refundKey(outRefundNo))).toEqual(before);
  });
});

describe('re-applying an ABNORMAL refund on v2', () => {
  beforeAll(() => {
    process.env.WECHAT_PAY_VERSION = 'v2';
    resetConfigCache();
  });

  it('answers 409 ABNORMAL_REFUND_V3_ONLY (re-apply in the merchant platform): no WeChat call, nothing written', async () => {
    // Prepare
    const { outRefundNo } = await abnormalRefund();
    const before = await rawItem(refundKey(outRefundNo));
    const calls = (await sandboxCalls()).length;
    // Act
    const answered = await applyAbnormal(outRefundNo, { type: 'MERCHANT_BANK_CARD' });
    // Assess
    expect(answered.status).toBe(409);
    expect(answered.code).toBe('ABNORMAL_REFUND_V3_ONLY');
    expect(answered.message).toContain('商户平台');
    expect((await sandboxCalls()).length).toBe(calls);
    expect(await rawItem(refundKey(outRefundNo))).toEqual(before);
  });
});
