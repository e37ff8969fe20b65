/**
 * Deadlines (issue 12), WeChat side: WeChat Pay behind a socket that accepts and never answers, against a
 * Lambda context that counts down. Whatever WeChat does, the route answers its documented envelope before
 * the Lambda's timeout: 503 WECHAT_PAY_UNAVAILABLE for a prepay (the order stored, still PENDING), 200
 * with the order still PENDING for an order view. Bounds are generous: only "before the deadline" matters.
 */
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as getOrderHandler } from '#functions/get-order';
import { resetConfigCache } from '#lib/config';
import { lambdaContext } from '#local/fixtures/events';
import { type StalledServer, startStalled } from '#test/helpers/stalled-server';
import { expireQueryCooldown, invoke, signInUser } from './helpers';

let stalled: StalledServer;
const sandboxPayBase = process.env.WECHAT_PAY_API_BASE;

/** Points WeChat Pay at the stalled socket (the next loadConfig reads it). */
function stallWechatPay(): void {
  process.env.WECHAT_PAY_API_BASE = stalled.url;
  resetConfigCache();
}

beforeAll(async () => {
  stalled = await startStalled();
});

afterEach(() => {
  process.env.WECHAT_PAY_API_BASE = sandboxPayBase;
  resetConfigCache();
});

afterAll(async () => {
  await stalled.close();
});

/** Runs `work`, returning its value and how long it took, milliseconds. */
async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: Math.round(performance.now() - started) };
}

/** POST /wechat/pay {planId: 'monthly'} as `token`, under `lambda` (the fixed context by default). */
function payMonthly(token: string, lambda?: Context) {
  return invoke(
    createPaymentHandler,
    { method: 'POST', path: '/wechat/pay', body: { planId: 'monthly' }, token },
    lambda,
  );
}

/**
 * A fresh user's prepay while WeChat Pay stalls, under a Lambda that has `lambdaMs` left: the answer, how
 * long it took, how many requests reached WeChat, and the user's token.
 */
async function stalledPrepay(lambdaMs: number) {
  const { token } = await signInUser();
  stallWechatPay();
  const before = stalled.requests().length;
  const { value: answer, ms } = await timed(() => payMonthly(token, lambdaContext(lambdaMs)));
  console.info(`prepay, ${lambdaMs} ms Lambda, WeChat stalled: ${answer.status} after ${ms} ms`);
  return { answer, ms, attempts: stalled.requests().length - before, token };
}

describe('a prepay against a WeChat Pay that never answers', () => {
  it('answers 503 WECHAT_PAY_UNAVAILABLE before a 3 s Lambda deadline, without a retry that cannot fit; the order stays PENDING', async () => {
    // Act
    const { answer, ms, attempts, token } = await stalledPrepay(3000);
    // Assess
    expect(answer.status).toBe(503);
    expect(answer.code).toBe('WECHAT_PAY_UNAVAILABLE');
    expect(ms).toBeLessThan(3000);
    expect(attempts).toBe(1);
    // The order was stored without a prepay_id: paying it again continues it once WeChat answers.
    process.env.WECHAT_PAY_API_BASE = sandboxPayBase;
    resetConfigCache();
    const again = await payMonthly(token);
    expect(again.status).toBe(200);
    expect(again.data?.order.status).toBe('PENDING');
  });

  it('retries once when the Lambda has time for two attempts, and still answers 503 before an 8 s deadline', async () => {
    // Act
    const { answer, ms, attempts } = await stalledPrepay(8000);
    // Assess
    expect(answer.status).toBe(503);
    expect(answer.code).toBe('WECHAT_PAY_UNAVAILABLE');
    expect(ms).toBeLessThan(8000);
    expect(attempts).toBe(2);
  });
});

describe('an order view whose order query never answers', () => {
  it('answers 200 with the order still PENDING before a 3 s Lambda deadline', async () => {
    // Prepare: an order with its prepay from the sandbox, then WeChat stalls
    const { token } = await signInUser();
    const created = await payMonthly(token);
    expect(created.status).toBe(200);
    const outTradeNo: string = created.data?.order.outTradeNo;
    await expireQueryCooldown(outTradeNo);
    stallWechatPay();
    const before = stalled.requests().length;
    // Act
    const { value: answer, ms } = await timed(() =>
      invoke(
        getOrderHandler,
        { path: `/wechat/orders/${outTradeNo}`, pathParameters: { outTradeNo }, token },
        lambdaContext(3000),
      ),
    );
    // Assess
    console.info(`order view, 3 s Lambda, order query stalled: 200 after ${ms} ms`);
    expect(answer.status).toBe(200);
    expect(answer.data?.order.status).toBe('PENDING');
    expect(ms).toBeLessThan(3000);
    expect(stalled.requests().length - before).toBe(1);
  });
});
