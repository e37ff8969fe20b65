/**
 * Fault suite, WeChat side (research/reliability.md §3.2 F1–F5): the sandbox's fault modes (`timeout`, `busy`,
 * `5xx`) on code2Session, unifiedorder and orderquery, plus "WeChat did the work but the response was lost"
 * (a fetch wrapper that lets the sandbox answer, then throws a timeout). After each fault: no user item from a
 * failed sign-in, never a second order for one attempt, never a credit without WeChat saying paid (INV-1, INV-4).
 * The DynamoDB-side faults (F6–F15, F21) are in faults-money.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as getOrderHandler } from '#functions/get-order';
import { handler as listOrdersHandler } from '#functions/list-orders';
import { handler as signInHandler } from '#functions/sign-in';
import { dynamo } from '#lib/clients/dynamodb';
import { loadConfig, resetConfigCache } from '#lib/config';
import { V2_SUCCESS_REPLY } from '#lib/wechat-pay/v2-protocol';
import {
  CODE2SESSION,
  clearFaults,
  countDynamoCalls,
  expireQueryCooldown,
  invoke,
  type SandboxFaultMode,
  sandboxCallCount,
  sandboxLogin,
  sandboxUrl,
  setFault,
  signInUser,
  storedUser,
  storedUserOf,
} from './helpers';

const UNIFIEDORDER = '/pay/unifiedorder';
const ORDERQUERY = '/pay/orderquery';

async function pay(token: string, body: object) {
  return invoke(createPaymentHandler, { method: 'POST', path: '/wechat/pay', body, token });
}

async function getOrder(token: string, outTradeNo: string) {
  return invoke(getOrderHandler, {
    path: `/wechat/orders/${outTradeNo}`,
    pathParameters: { outTradeNo },
    token,
  });
}

/** The caller's orders as GET /wechat/orders lists them. */
async function listOrders(token: string): Promise<{ outTradeNo: string; status: string }[]> {
  const result = await invoke(listOrdersHandler, { path: '/wechat/orders', token });
  expect(result.status).toBe(200);
  return result.data?.orders ?? [];
}

async function storedOrder(outTradeNo: string): Promise<Record<string, unknown> | undefined> {
  const { ordersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item;
}

/** Plays the user paying in WeChat: the sandbox marks the order paid and posts its notify (which we drop). */
async function sandboxPay(outTradeNo: string): Promise<string> {
  const response = await fetch(`${sandboxUrl}/sandbox/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outTradeNo }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { transactionId: string }).transactionId;
}

/**
 * "WeChat did it, the answer got lost": the next `times` calls to `path` reach the sandbox (which acts on
 * them), then the caller sees a timeout. Returns the bodies the caller never saw. Restore in finally.
 */
function loseResponses(path: string, times: number): { lost: string[]; restore: () => void } {
  const realFetch = globalThis.fetch;
  const lost: string[] = [];
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const response = await realFetch(input, init);
    const url = input instanceof Request ? input.url : String(input);
    if (lost.length < times && new URL(url).pathname === path) {
      lost.push(await response.text());
      throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    }
    return response;
  });
  return { lost, restore: () => spy.mockRestore() };
}

/**
 * The sandbox posts a notify when /sandbox/pay runs; this endpoint acknowledges every one without passing it on,
 * so the order stays PENDING on our side and only the order query can learn it was paid.
 */
let ackServer: Server;
let previousNotifyUrl: string | undefined;
let previousPayVersion: string | undefined;

beforeAll(async () => {
  ackServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/xml' }).end(V2_SUCCESS_REPLY));
  });
  await new Promise<void>((resolve) => ackServer.listen(0, '127.0.0.1', resolve));
  previousNotifyUrl = process.env.WECHAT_NOTIFY_URL;
  previousPayVersion = process.env.WECHAT_PAY_VERSION;
  process.env.WECHAT_NOTIFY_URL = `http://127.0.0.1:${(ackServer.address() as AddressInfo).port}/wechat/notify`;
  process.env.WECHAT_PAY_VERSION = 'v2';
  resetConfigCache();
});

afterAll(async () => {
  await clearFaults();
  process.env.WECHAT_NOTIFY_URL = previousNotifyUrl;
  process.env.WECHAT_PAY_VERSION = previousPayVersion;
  resetConfigCache();
  await new Promise((resolve) => ackServer.close(resolve));
});

describe.concurrent('WeChat timeouts (concurrent: each waits on a real client timeout, on its own endpoint)', () => {
  // Everything that touches code2Session or unifiedorder is prepared here, before any fault is switched on.
  let payer: { token: string };
  let querier: { token: string; userId: string; outTradeNo: string };

  beforeAll(async () => {
    payer = await signInUser();
    const session = await signInUser();
    const created = await pay(session.token, { planId: 'monthly' });
    expect(created.status).toBe(200);
    const outTradeNo = created.data?.order.outTradeNo as string;
    await sandboxPay(outTradeNo);
    querier = { token: session.token, userId: session.user.id, outTradeNo };
  });

  it('F1 answers 503 and writes no user when code2Session times out twice', async ({ expect }) => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    const before = await sandboxCallCount(CODE2SESSION);
    await setFault(CODE2SESSION, 'timeout', 2);
    // Act
    const result = await invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } });
    // Assess
    expect(result.status).toBe(503);
    expect(result.code).toBe('WECHAT_UNAVAILABLE');
    expect(result.data).toBeUndefined();
    expect((await sandboxCallCount(CODE2SESSION)) - before).toBe(2);
    expect(await storedUserOf(openid)).toBeUndefined();
  });

  it('F3 keeps one PENDING order when unifiedorder times out twice, and a retry with {outTradeNo} pays it', async ({
    expect,
  }) => {
    // Prepare
    const before = await sandboxCallCount(UNIFIEDORDER);
    await setFault(UNIFIEDORDER, 'timeout', 2);
    // Act
    const failed = await pay(payer.token, { planId: 'quarterly' });
    // Assess: 503 after one retry; the order row exists, PENDING, without a prepay_id
    expect(failed.status).toBe(503);
    expect(failed.code).toBe('WECHAT_PAY_UNAVAILABLE');
    expect((await sandboxCallCount(UNIFIEDORDER)) - before).toBe(2);
    const [pending, ...others] = await listOrders(payer.token);
    expect(others).toEqual([]);
    expect(pending?.status).toBe('PENDING');
    const outTradeNo = pending?.outTradeNo as string;
    expect((await storedOrder(outTradeNo))?.prepayId).toBeUndefined();
    // Act: the client pays that order again
    const retried = await pay(payer.token, { outTradeNo });
    // Assess
    expect(retried.status).toBe(200);
    expect(retried.data?.order).toMatchObject({ outTradeNo, status: 'PENDING' });
    expect(retried.data?.payParams.package).toMatch(/^prepay_id=wx/);
    expect((await listOrders(payer.token)).map((order) => order.outTradeNo)).toEqual([outTradeNo]);
  });

  it('F5 leaves a paid order PENDING (200) while orderquery times out, then credits it once', async ({
    expect,
  }) => {
    // Prepare
    const before = await storedUser(querier.userId);
    await setFault(ORDERQUERY, 'timeout', 2);
    // Act
    const during = await getOrder(querier.token, querier.outTradeNo);
    // Assess
    expect(during.status).toBe(200);
    expect(during.data?.order.status).toBe('PENDING');
    expect(await storedUser(querier.userId)).toEqual(before);
    // Act: WeChat answers again
    const after = await getOrder(querier.token, querier.outTradeNo);
    const again = await getOrder(querier.token, querier.outTradeNo);
    // Assess: credited exactly once
    expect(after.data?.order.status).toBe('PAID');
    expect(again.data?.order.status).toBe('PAID');
    const user = await storedUser(querier.userId);
    expect(user?.version).toBe((before?.version as number) + 1);
    expect(user?.role).toBe(1);
  });
});

describe('signIn when code2Session fails (F1, F2)', () => {
  afterEach(async () => {
    await clearFaults();
  });

  it.each<[SandboxFaultMode, number, number]>([
    ['busy', 1, 200],
    ['5xx', 1, 200],
    ['busy', 2, 503],
    ['5xx', 2, 503],
  ])('with %s on %i call(s) retries once and answers %i', async (mode, count, status) => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    const before = await sandboxCallCount(CODE2SESSION);
    await setFault(CODE2SESSION, mode, count);
    // Act
    const result = await invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } });
    // Assess
    expect(result.status).toBe(status);
    expect((await sandboxCallCount(CODE2SESSION)) - before).toBe(2);
    const user = await storedUserOf(openid);
    if (status === 200) {
      expect(result.data?.token).toEqual(expect.any(String));
      expect(user?.id).toBe(result.data?.user.id);
    } else {
      expect(result.code).toBe('WECHAT_UNAVAILABLE');
      expect(result.data).toBeUndefined();
      expect(user).toBeUndefined();
    }
  });

  it('F1 answers INVALID_CODE and writes no user when WeChat redeemed the code but its answer was lost', async () => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    const lose = loseResponses(CODE2SESSION, 1);
    let result: Awaited<ReturnType<typeof invoke>>;
    try {
      // Act: the retry presents a code WeChat already used (40163)
      result = await invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } });
    } finally {
      lose.restore();
    }
    // Assess: "call wx.login again"; nothing written, no token
    expect(lose.lost).toHaveLength(1);
    expect(result.status).toBeGreaterThanOrEqual(400);
    expect(result.status).toBeLessThan(500);
    expect(result.code).toBe('INVALID_CODE');
    expect(result.data).toBeUndefined();
    expect(await storedUserOf(openid)).toBeUndefined();
    // Act: the mini-program calls wx.login again
    const { code: fresh } = await sandboxLogin(openid);
    const again = await invoke(signInHandler, {
      method: 'POST',
      path: '/wechat/sign_in',
      body: { code: fresh },
    });
    // Assess
    expect(again.status).toBe(200);
    expect(again.data?.user.id).toBe((await storedUserOf(openid))?.id);
  });
});

describe('createPayment when unifiedorder fails (F3, F4)', () => {
  afterEach(async () => {
    await clearFaults();
  });

  it.each<SandboxFaultMode>(['busy', '5xx'])(
    'F4 retries once with the same out_trade_no and answers payParams when WeChat is %s once',
    async (mode) => {
      // Prepare
      const { token } = await signInUser();
      const before = await sandboxCallCount(UNIFIEDORDER);
      await setFault(UNIFIEDORDER, mode, 1);
      // Act
      const result = await pay(token, { planId: 'monthly' });
      // Assess
      expect(result.status).toBe(200);
      expect(result.data?.payParams.package).toMatch(/^prepay_id=wx/);
      expect((await sandboxCallCount(UNIFIEDORDER)) - before).toBe(2);
      expect((await listOrders(token)).map((order) => order.outTradeNo)).toEqual([
        result.data?.order.outTradeNo,
      ]);
    },
  );

  it.each<SandboxFaultMode>(['busy', '5xx'])(
    'F4 answers 503 with one PENDING order when WeChat stays %s, and a retry with {outTradeNo} pays that order',
    async (mode) => {
      // Prepare
      const { token } = await signInUser();
      const before = await sandboxCallCount(UNIFIEDORDER);
      await setFault(UNIFIEDORDER, mode, 2);
      const calls = countDynamoCalls();
      let failed: Awaited<ReturnType<typeof pay>>;
      try {
        // Act
        failed = await pay(token, { planId: 'monthly' });
      } finally {
        calls.stop();
      }
      // Assess: the only writes are the claim on the user's open-order slot and the PENDING order itself
      expect(failed.status).toBe(503);
      expect(failed.code).toBe('WECHAT_PAY_UNAVAILABLE');
      expect((await sandboxCallCount(UNIFIEDORDER)) - before).toBe(2);
      expect(calls.writes()).toEqual(['UpdateItem', 'PutItem']);
      const orders = await listOrders(token);
      expect(orders.map((order) => order.status)).toEqual(['PENDING']);
      const outTradeNo = orders[0]?.outTradeNo as string;
      // Act
      const retried = await pay(token, { outTradeNo });
      // Assess
      expect(retried.status).toBe(200);
      expect(retried.data?.order.outTradeNo).toBe(outTradeNo);
      expect(retried.data?.payParams.package).toMatch(/^prepay_id=wx/);
      expect((await storedOrder(outTradeNo))?.prepayId).toBe(
        retried.data?.payParams.package.slice('prepay_id='.length),
      );
      expect((await listOrders(token)).map((order) => order.outTradeNo)).toEqual([outTradeNo]);
    },
  );

  it('F3 re-requests with identical params and gets WeChat’s first prepay_id when both answers were lost', async () => {
    // Prepare: WeChat creates the order on the first call; both answers are lost on the way back
    const { token } = await signInUser();
    const lose = loseResponses(UNIFIEDORDER, 2);
    let failed: Awaited<ReturnType<typeof pay>>;
    try {
      // Act
      failed = await pay(token, { planId: 'yearly' });
    } finally {
      lose.restore();
    }
    // Assess
    expect(failed.status).toBe(503);
    expect(lose.lost).toHaveLength(2);
    const issued = lose.lost.map((body) => /<prepay_id><!\[CDATA\[([^\]]+)\]\]>/.exec(body)?.[1]);
    expect(issued[0]).toMatch(/^wx/);
    // The second (in-client) retry was already a re-request WeChat accepted as the same order
    expect(issued[1]).toBe(issued[0]);
    const orders = await listOrders(token);
    expect(orders.map((order) => order.status)).toEqual(['PENDING']);
    const outTradeNo = orders[0]?.outTradeNo as string;
    // Act: the client pays that order again
    const retried = await pay(token, { outTradeNo });
    // Assess: WeChat saw identical parameters (it refuses INVALID_REQUEST otherwise) and kept its prepay_id
    expect(retried.status).toBe(200);
    expect(retried.data?.payParams.package).toBe(`prepay_id=${issued[0]}`);
    expect((await listOrders(token)).map((order) => order.outTradeNo)).toEqual([outTradeNo]);
  });
});

describe('getOrder when orderquery fails (F5)', () => {
  afterEach(async () => {
    await clearFaults();
  });

  it.each<SandboxFaultMode>(['5xx', 'busy'])(
    'answers 200 PENDING without a money write while orderquery is %s, then credits once when it recovers',
    async (mode) => {
      // Prepare: the user paid, the notify never reached us
      const { token, user } = await signInUser();
      const created = await pay(token, { planId: 'monthly' });
      const outTradeNo = created.data?.order.outTradeNo as string;
      const transactionId = await sandboxPay(outTradeNo);
      const before = await storedUser(user.id);
      await setFault(ORDERQUERY, mode, 2);
      const calls = countDynamoCalls();
      let during: Awaited<ReturnType<typeof getOrder>>;
      try {
        // Act
        during = await getOrder(token, outTradeNo);
      } finally {
        calls.stop();
      }
      // Assess
      expect(during.status).toBe(200);
      expect(during.data?.order.status).toBe('PENDING');
      expect(calls.writes()).toEqual(['UpdateItem']); // the query cooldown mark; no money write
      expect(await storedUser(user.id)).toEqual(before);
      // Act: the next look after the cooldown finds WeChat answering
      await expireQueryCooldown(outTradeNo);
      const recovered = await getOrder(token, outTradeNo);
      const again = await getOrder(token, outTradeNo);
      // Assess: INV-5 (no orphan) and INV-1 (once)
      expect(recovered.data?.order).toMatchObject({ status: 'PAID', transactionId });
      expect(again.data?.order.status).toBe('PAID');
      expect((await storedUser(user.id))?.version).toBe((before?.version as number) + 1);
    },
  );

  it('queries WeChat once for 40 views of a PENDING order within the cooldown', async () => {
    // Prepare
    const { token } = await signInUser();
    const created = await pay(token, { planId: 'monthly' });
    const outTradeNo = created.data?.order.outTradeNo as string;
    const before = await sandboxCallCount(ORDERQUERY);
    // Act: 40 views at once
    const views = await Promise.all(Array.from({ length: 40 }, () => getOrder(token, outTradeNo)));
    // Assess
    expect(views.every((view) => view.status === 200 && view.data?.order.status === 'PENDING')).toBe(true);
    expect((await sandboxCallCount(ORDERQUERY)) - before).toBe(1);
  });
});
