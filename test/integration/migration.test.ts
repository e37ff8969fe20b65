/**
 * Issue 10 §6: a stage switched from v2 to v3 loses no in-flight payment. During the migration window
 * (WECHAT_PAY_MIGRATION_FROM=v2) payNotify takes both formats, each order is queried and closed with the
 * version it was created with, and new orders use WECHAT_PAY_VERSION.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { dynamo } from '#lib/clients/dynamodb';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig, resetConfigCache } from '#lib/config';
import { reconcile } from '#lib/payments/reconcile';
import { invoke, sandboxUrl, signInUser, storedUser, deliverV2Notify as v2Notify } from './helpers';

const SUCCESS = '<return_code><![CDATA[SUCCESS]]></return_code>';
const saved = { version: process.env.WECHAT_PAY_VERSION, from: process.env.WECHAT_PAY_MIGRATION_FROM };

function stage(version: 'v2' | 'v3', migrationFrom?: 'v2'): void {
  process.env.WECHAT_PAY_VERSION = version;
  if (migrationFrom) process.env.WECHAT_PAY_MIGRATION_FROM = migrationFrom;
  else delete process.env.WECHAT_PAY_MIGRATION_FROM;
  resetConfigCache();
}

afterEach(() => {
  process.env.WECHAT_PAY_VERSION = saved.version;
  if (saved.from === undefined) delete process.env.WECHAT_PAY_MIGRATION_FROM;
  else process.env.WECHAT_PAY_MIGRATION_FROM = saved.from;
  resetConfigCache();
});

/** A v2 order opened before the switch, then paid in WeChat with its notify held back. */
async function v2OrderPaidAfterSwitch() {
  stage('v2');
  const { token, user } = await signInUser();
  const created = await invoke(createPaymentHandler, {
    method: 'POST',
    path: '/wechat/pay',
    body: { planId: 'monthly' },
    token,
  });
  expect(created.data?.payParams.signType).toBe('MD5');
  const outTradeNo = created.data?.order.outTradeNo as string;
  stage('v3', 'v2');
  const response = await fetch(`${sandboxUrl}/sandbox/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outTradeNo, deliver: false }),
  });
  const { transactionId } = (await response.json()) as { transactionId: string };
  return { token, userId: user.id, outTradeNo, transactionId };
}

async function storedOrder(outTradeNo: string) {
  const { ordersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item;
}

describe('a v2 → v3 switch with a migration window', () => {
  it('credits once a v2 order paid after the switch, by its v2 notify', async () => {
    // Prepare
    const { userId, outTradeNo, transactionId } = await v2OrderPaidAfterSwitch();
    // Act: WeChat delivers it twice
    const replies = [await v2Notify(outTradeNo, transactionId), await v2Notify(outTradeNo, transactionId)];
    // Assess
    expect(replies.every((reply) => reply.body?.includes(SUCCESS))).toBe(true);
    expect(await storedOrder(outTradeNo)).toMatchObject({
      status: 'PAID',
      transactionId,
      paidVia: 'notify-v2',
    });
    expect((await storedUser(userId))?.version).toBe(1);
  });

  it('credits once a v2 order paid after the switch whose notify was lost, by the reconciler with v2', async () => {
    // Prepare
    const { userId, outTradeNo, transactionId } = await v2OrderPaidAfterSwitch();
    const config = await loadConfig();
    // Act
    const summary = await reconcile(config, paymentProviders(config), {
      deadline: Date.now() + 60_000,
      all: true,
    });
    // Assess
    expect(summary.failed).toBe(0);
    expect(await storedOrder(outTradeNo)).toMatchObject({
      status: 'PAID',
      transactionId,
      paidVia: 'orderquery-v2',
    });
    expect((await storedUser(userId))?.version).toBe(1);
  });

  it('opens new orders with v3', async () => {
    // Prepare
    stage('v3', 'v2');
    const { token } = await signInUser();
    // Act
    const created = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      body: { planId: 'monthly' },
      token,
    });
    // Assess
    expect(created.data?.payParams.signType).toBe('RSA');
    expect(await storedOrder(created.data?.order.outTradeNo)).toMatchObject({ payVersion: 'v3' });
  });

  it('refuses the v2 notify (WeChat retries) when the switch has no window', async () => {
    // Prepare
    const { outTradeNo, transactionId } = await v2OrderPaidAfterSwitch();
    stage('v3');
    // Act
    const reply = await v2Notify(outTradeNo, transactionId);
    // Assess
    expect(reply.statusCode).toBe(400);
    expect(await storedOrder(outTradeNo)).toMatchObject({ status: 'PENDING' });
  });
});
