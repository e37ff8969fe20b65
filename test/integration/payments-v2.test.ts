import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as getOrderHandler } from '#functions/get-order';
import { handler as listOrdersHandler } from '#functions/list-orders';
import { handler as listPlansHandler } from '#functions/list-plans';
import { handler as meHandler } from '#functions/me';
import { handler as notifyHandler } from '#functions/pay-notify';
import { handler as signInHandler } from '#functions/sign-in';
import { dynamo } from '#lib/clients/dynamodb';
import { loadConfig, resetConfigCache, type V2Config } from '#lib/config';
import { ORDERS_PER_USER_HOUR } from '#lib/payments/orders';
import { toUserRecord } from '#lib/repositories/user-repository';
import { verifyV2Sign } from '#lib/wechat-pay/v2-protocol';
import { context, envelope, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { TEST_SANDBOX_PORT } from '#test/test-env';
import { countDynamoCalls, exceptionsFor } from './helpers';

const SANDBOX = `http://127.0.0.1:${TEST_SANDBOX_PORT}`;
const SUCCESS = '<return_code><![CDATA[SUCCESS]]></return_code>';
const FAIL = '<return_code><![CDATA[FAIL]]></return_code>';

async function sandbox(path: string, body?: unknown): Promise<Record<string, any>> {
  const response = await fetch(`${SANDBOX}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await response.json()) as Record<string, any>;
}

async function call(
  fn: (event: any, ctx: any) => Promise<APIGatewayProxyStructuredResultV2>,
  input: Parameters<typeof httpEvent>[0],
) {
  const result = await fn(httpEvent(input), context);
  return { status: result.statusCode, ...envelope(result) };
}

async function signIn(): Promise<{ token: string; userId: string }> {
  const { code } = await sandbox('/sandbox/login', {});
  const result = await call(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } });
  return { token: result.data?.token, userId: result.data?.user.id };
}

async function pay(token: string, body: object) {
  return call(createPaymentHandler, { method: 'POST', path: '/wechat/pay', body, token });
}

async function notify(body: string) {
  const result = await notifyHandler(
    httpEvent({ method: 'POST', path: '/wechat/notify', body, headers: { 'content-type': 'text/xml' } }),
    context,
  );
  return result.body ?? '';
}

async function storedUser(id: string) {
  const config = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: config.usersTable, Key: { id }, ConsistentRead: true }),
  );
  return toUserRecord(Item) as Record<string, any>;
}

async function storedOrder(outTradeNo: string) {
  const config = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: config.ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item as Record<string, any>;
}

/** What the notify endpoint does with the sandbox's deliveries: forward to the handler, or refuse them. */
let forwarding: 'handler' | 'refuse' = 'handler';
let notifyServer: Server;

beforeAll(async () => {
  notifyServer = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body =
      forwarding === 'handler'
        ? await notify(Buffer.concat(chunks).toString('utf8'))
        : '<xml><return_code><![CDATA[FAIL]]></return_code></xml>';
    res.writeHead(200, { 'content-type': 'text/xml' }).end(body);
  });
  await new Promise<void>((resolve) => notifyServer.listen(0, '127.0.0.1', resolve));
  process.env.WECHAT_NOTIFY_URL = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/wechat/notify`;
  process.env.WECHAT_PAY_VERSION = 'v2';
  resetConfigCache();
});

afterAll(async () => {
  await new Promise((resolve) => notifyServer.close(resolve));
});

beforeEach(() => {
  forwarding = 'handler';
});

describe('plans', () => {
  it('lists the catalog with integer fen prices', async () => {
    // Act
    const result = await call(listPlansHandler, { path: '/wechat/plans' });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.plans.map((plan: { id: string }) => plan.id)).toEqual([
      'monthly',
      'quarterly',
      'yearly',
    ]);
  });
});

describe('createPayment and the v2 notify, end to end', () => {
  it('turns a paid plan into a membership exactly once', async () => {
    // Prepare
    const { token, userId } = await signIn();
    const config = await loadConfig();
    // Act: order
    const created = await pay(token, { planId: 'monthly', totalFee: 1, amount: 1 });
    // Assess: the catalog price, and payParams signed for wx.requestPayment
    expect(created.status).toBe(200);
    const { order, payParams } = created.data ?? {};
    expect(order).toMatchObject({ planId: 'monthly', totalFee: 1800, status: 'PENDING' });
    expect(payParams.package).toMatch(/^prepay_id=/);
    const { paySign, ...signed } = payParams;
    expect(
      verifyV2Sign({ appId: config.appId, ...signed, sign: paySign }, (config as V2Config).mchKey, ['MD5']),
    ).toBe(true);

    // Act: paying again reuses the live prepay_id
    const again = await pay(token, { outTradeNo: order.outTradeNo });
    expect(again.data?.payParams.package).toBe(payParams.package);

    // Act: the user pays; the sandbox posts the signed notify to our notify_url
    const paid = await sandbox('/sandbox/pay', { outTradeNo: order.outTradeNo });
    expect(paid.delivered).toBe(true);

    // Assess
    const stored = await storedOrder(order.outTradeNo);
    expect(stored).toMatchObject({ status: 'PAID', transactionId: paid.transactionId, paidVia: 'notify-v2' });
    const me = await call(meHandler, { path: '/wechat/me', token });
    expect(me.data?.user.role).toBe(1);
    expect(new Date(me.data?.user.membershipExpiredAt).getTime()).toBeGreaterThan(
      Date.now() + 27 * 86400_000,
    );

    // A PAID order cannot be paid again
    const repay = await pay(token, { outTradeNo: order.outTradeNo });
    expect(repay.status).toBe(409);
    expect(repay.code).toBe('ORDER_PAID');

    // The order list shows it
    const list = await call(listOrdersHandler, { path: '/wechat/orders', token });
    expect(list.data?.orders[0]).toMatchObject({ outTradeNo: order.outTradeNo, status: 'PAID' });
    expect(userId).toBe(stored.userId);
  });

  it('credits through the order query when the notify never got through, then ignores the late notify', async () => {
    // Prepare
    const { token, userId } = await signIn();
    const { data } = await pay(token, { planId: 'quarterly' });
    forwarding = 'refuse';
    const paid = await sandbox('/sandbox/pay', { outTradeNo: data?.order.outTradeNo });
    expect(paid.delivered).toBe(false);
    // Act
    const viewed = await call(getOrderHandler, {
      path: `/wechat/orders/${data?.order.outTradeNo}`,
      pathParameters: { outTradeNo: data?.order.outTradeNo },
      token,
    });
    // Assess
    expect(viewed.data?.order).toMatchObject({ status: 'PAID', transactionId: paid.transactionId });
    const afterQuery = await storedUser(userId);
    expect(afterQuery.version).toBe(1);
    // Act: WeChat's late notify arrives
    const late = await notify(
      v2NotifyXml({ outTradeNo: data?.order.outTradeNo, totalFee: 4800, transactionId: paid.transactionId }),
    );
    // Assess: acknowledged, not credited twice
    expect(late).toContain(SUCCESS);
    expect((await storedUser(userId)).version).toBe(1);
    expect((await storedUser(userId)).membershipExpiredAt).toBe(afterQuery.membershipExpiredAt);
  });

  it('continues the open order on a double tap for the same plan, and opens another for another plan', async () => {
    // Prepare
    const { token } = await signIn();
    // Act
    const [first, second] = [
      await pay(token, { planId: 'monthly' }),
      await pay(token, { planId: 'monthly' }),
    ];
    const other = await pay(token, { planId: 'yearly' });
    // Assess
    expect(second.data?.order.outTradeNo).toBe(first.data?.order.outTradeNo);
    expect(second.data?.payParams.package).toBe(first.data?.payParams.package);
    expect(other.data?.order.outTradeNo).not.toBe(first.data?.order.outTradeNo);
    expect(other.data?.order.totalFee).toBe(16800);
  });

  it('opens one order and makes one prepay call for 50 concurrent taps on one plan', async () => {
    // Prepare
    const { token } = await signIn();
    const prepaysBefore = (await sandbox('/sandbox/calls')).calls.filter(
      (c: { path: string }) => c.path === '/pay/unifiedorder',
    ).length;
    // Act: true concurrency, in process, against DynamoDB Local
    const taps = await Promise.all(Array.from({ length: 50 }, () => pay(token, { planId: 'monthly' })));
    // Assess: every tap got that one order and its prepay_id, or a 409 ORDER_IN_PROGRESS to retry
    const served = taps.filter((tap) => tap.status === 200);
    const waiting = taps.filter((tap) => tap.status !== 200);
    expect(served.length).toBeGreaterThanOrEqual(1);
    expect(new Set(served.map((tap) => tap.data?.order.outTradeNo)).size).toBe(1);
    expect(new Set(served.map((tap) => tap.data?.payParams.package)).size).toBe(1);
    expect(waiting.every((tap) => tap.status === 409 && tap.code === 'ORDER_IN_PROGRESS')).toBe(true);
    const prepays = (await sandbox('/sandbox/calls')).calls.filter(
      (c: { path: string }) => c.path === '/pay/unifiedorder',
    ).length;
    expect(prepays - prepaysBefore).toBe(1);
    const list = await call(listOrdersHandler, { path: '/wechat/orders', token });
    expect(list.data?.orders).toHaveLength(1);
    // Act: a retry after the first prepay finished continues the same order
    const retry = await pay(token, { planId: 'monthly' });
    // Assess
    expect(retry.data?.order.outTradeNo).toBe(served[0]?.data?.order.outTradeNo);
  });

  it('counts DynamoDB requests per POST /wechat/pay (issue 12): new order 2, continued 2, another plan 2, re-bought later 2', async () => {
    // Prepare
    const { token, userId } = await signIn();
    const config = await loadConfig();
    const calls = countDynamoCalls();
    const requests: Record<string, string[]> = {};
    const measure = async (name: string, body: object) => {
      calls.reset();
      const answer = await pay(token, body);
      requests[name] = calls.calls();
      return answer;
    };
    try {
      // Act: a first order, a double tap, then the same plan again once the first order's claim has ended
      const first = await measure('new', { planId: 'monthly' });
      await measure('continued', { planId: 'monthly' });
      await dynamo().send(
        new UpdateCommand({
          TableName: config.usersTable,
          Key: { id: userId },
          UpdateExpression: 'SET openOrder_monthly.claimedAt = :then',
          ExpressionAttributeValues: { ':then': '2026-01-01T00:00:00.000Z' },
        }),
      );
      await measure('second plan this hour', { planId: 'yearly' });
      const again = await measure('rebought', { planId: 'monthly' });
      // Assess
      expect(again.data?.order.outTradeNo).not.toBe(first.data?.order.outTradeNo);
    } finally {
      calls.stop();
    }
    expect(requests).toEqual({
      new: ['UpdateItem', 'PutItem'],
      continued: ['UpdateItem', 'GetItem'],
      'second plan this hour': ['UpdateItem', 'PutItem'],
      rebought: ['UpdateItem', 'PutItem'],
    });
  });

  it('answers 429 with retry-after once a user opened the hourly cap of orders', async () => {
    // Prepare: open the cap's worth of orders; each is marked CLOSED so that the next tap opens a new one
    const { token, userId } = await signIn();
    const config = await loadConfig();
    for (let i = 0; i < ORDERS_PER_USER_HOUR; i++) {
      const opened = await pay(token, { planId: 'monthly' });
      expect(opened.status).toBe(200);
      await dynamo().send(
        new UpdateCommand({
          TableName: config.ordersTable,
          Key: { outTradeNo: opened.data?.order.outTradeNo },
          UpdateExpression: 'SET #s = :closed',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':closed': 'CLOSED' },
        }),
      );
    }
    // Act
    const capped = await call(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      body: { planId: 'monthly' },
      token,
    });
    const raw = await createPaymentHandler(
      httpEvent({ method: 'POST', path: '/wechat/pay', body: { planId: 'yearly' }, token }),
      context,
    );
    // Assess
    expect(capped.status).toBe(429);
    expect(capped.code).toBe('ORDER_RATE_LIMITED');
    const retryAfter = Number(raw.headers?.['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // One counter slot, holding the hour's count (the others are removed by every claim)
    const slots = Object.entries(await storedUser(userId)).filter(([name]) => /^orders\d+$/.test(name));
    expect(slots.map(([, count]) => count)).toEqual([ORDERS_PER_USER_HOUR]);
  });

  it('hides other users orders (404) on read and on pay', async () => {
    // Prepare
    const alice = await signIn();
    const bob = await signIn();
    const { data } = await pay(alice.token, { planId: 'monthly' });
    const outTradeNo = data?.order.outTradeNo;
    // Act
    const read = await call(getOrderHandler, {
      path: `/wechat/orders/${outTradeNo}`,
      pathParameters: { outTradeNo },
      token: bob.token,
    });
    const repay = await pay(bob.token, { outTradeNo });
    const list = await call(listOrdersHandler, { path: '/wechat/orders', token: bob.token });
    // Assess
    expect(read.status).toBe(404);
    expect(repay.status).toBe(404);
    expect(list.data?.orders).toEqual([]);
  });

  it('refuses unknown plans and malformed bodies without writing or calling WeChat', async () => {
    // Prepare
    const { token } = await signIn();
    const calls = countDynamoCalls();
    const before = (await sandbox('/sandbox/calls')).calls.length;
    try {
      for (const body of [
        { planId: 'lifetime' },
        { planId: ['monthly'] },
        { planId: 1 },
        {},
        { planId: 'x'.repeat(100) },
      ]) {
        // Act
        const result = await pay(token, body);
        // Assess
        expect(result.status).toBe(400);
        expect(result.success).toBe(false);
      }
      expect(calls.writes()).toEqual([]);
      expect((await sandbox('/sandbox/calls')).calls.length).toBe(before);
    } finally {
      calls.stop();
    }
  });
});

describe('v2 notify duplicates and concurrency', () => {
  async function pendingOrder() {
    const { token, userId } = await signIn();
    const { data } = await pay(token, { planId: 'monthly' });
    return { userId, outTradeNo: data?.order.outTradeNo as string };
  }

  it('credits once when 10 identical notifies arrive at once', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    const body = v2NotifyXml({ outTradeNo, totalFee: 1800, transactionId: '4200000000202611210000000001' });
    // Act
    const replies = await Promise.all(Array.from({ length: 10 }, () => notify(body)));
    // Assess
    expect(replies.every((reply) => reply.includes(SUCCESS))).toBe(true);
    expect((await storedUser(userId)).version).toBe(1);
  });

  it('credits once when 30 differently signed first deliveries race', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    const transactionId = '4200000000202611210000000002';
    // Act
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        notify(
          v2NotifyXml({ outTradeNo, totalFee: 1800, transactionId, signType: i % 2 ? 'HMAC-SHA256' : 'MD5' }),
        ),
      ),
    );
    // Assess
    expect(replies.filter((reply) => reply.includes(SUCCESS))).toHaveLength(30);
    const user = await storedUser(userId);
    expect(user.version).toBe(1);
    expect(user.role).toBe(1);
  });

  it('reads time_end as China Standard Time', async () => {
    // Prepare
    const { outTradeNo } = await pendingOrder();
    // Act
    await notify(v2NotifyXml({ outTradeNo, totalFee: 1800, timeEnd: new Date('2026-11-21T01:02:03Z') }));
    // Assess
    expect((await storedOrder(outTradeNo)).paidAt).toBe('2026-11-21T01:02:03.000Z');
  });

  it('never credits a second transaction_id for a paid order', async () => {
    // Prepare
    const { userId, outTradeNo } = await pendingOrder();
    await notify(v2NotifyXml({ outTradeNo, totalFee: 1800, transactionId: '4200000000202611210000000003' }));
    // Act
    const other = await notify(
      v2NotifyXml({ outTradeNo, totalFee: 1800, transactionId: '4200000000202611210000000004' }),
    );
    // Assess: acknowledged once recorded as a payment exception, never credited
    expect(other).toContain(SUCCESS);
    expect((await storedUser(userId)).version).toBe(1);
    expect((await storedOrder(outTradeNo)).transactionId).toBe('4200000000202611210000000003');
    expect((await exceptionsFor(outTradeNo)).map((e) => [e.reason, e.transactionId])).toEqual([
      ['paid_by_other', '4200000000202611210000000004'],
    ]);
  });
});

describe('v2 notify bad inputs (reliability §2.5): refused with nothing written, or recorded as exceptions', () => {
  let outTradeNo: string;
  let userId: string;

  beforeAll(async () => {
    const session = await signIn();
    userId = session.userId;
    outTradeNo = (await pay(session.token, { planId: 'monthly' })).data?.order.outTradeNo;
  });

  const valid = () => v2NotifyXml({ outTradeNo, totalFee: 1800 });
  const entity = '<!ENTITY a "SUCCESS">';
  const cases: [string, () => string, 'none'][] = [
    ['X1 wrong sign', () => v2NotifyXml({ outTradeNo, totalFee: 1800, sign: 'A'.repeat(32) }), 'none'],
    [
      'X1 signed with another key',
      () => v2NotifyXml({ outTradeNo, totalFee: 1800, key: 'k'.repeat(32) }),
      'none',
    ],
    ['X2 sign missing', () => valid().replace(/<sign>.*?<\/sign>/, ''), 'none'],
    ['X2 sign empty', () => valid().replace(/<sign>.*?<\/sign>/, '<sign></sign>'), 'none'],
    ['X9 external entity', () => `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${valid()}`, 'none'],
    ['X10 internal entity', () => `<!DOCTYPE xml [${entity}]>${valid().replace('SUCCESS', '&a;')}`, 'none'],
    [
      'X11 billion laughs',
      () =>
        `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('')}]><xml><a>&lol9;</a></xml>`,
      'none',
    ],
    ['X12 200 000 numeric references', () => `<xml><a>${'&#65;'.repeat(200_000)}</a></xml>`, 'none'],
    ['X13 total_fee 1e2', () => v2NotifyXml({ outTradeNo, totalFee: '18e2' }), 'none'],
    ['X13 total_fee 0x708', () => v2NotifyXml({ outTradeNo, totalFee: '0x708' }), 'none'],
    ['X13 total_fee 01800', () => v2NotifyXml({ outTradeNo, totalFee: '01800' }), 'none'],
    ['X14 duplicate tags', () => valid().replace('</xml>', '<total_fee>1</total_fee></xml>'), 'none'],
    ['X14 nested element', () => valid().replace('</xml>', '<detail><a>1</a></detail></xml>'), 'none'],
    ['X14 two roots', () => `${valid()}<xml><a>1</a></xml>`, 'none'],
    ['X15 __proto__ tag', () => valid().replace('</xml>', '<__proto__>x</__proto__></xml>'), 'none'],
    ['X16 JSON body', () => JSON.stringify({ out_trade_no: outTradeNo, total_fee: 1800 }), 'none'],
    ['X16 empty body', () => '', 'none'],
    ['X16 truncated XML', () => '<xml><a>1</xml>', 'none'],
    ['X16 BOM prefix', () => `\ufeff${valid()}`, 'none'],
    [
      'X17 body over 64 KB',
      () => valid().replace('</xml>', `<pad>${'a'.repeat(70_000)}</pad></xml>`),
      'none',
    ],
  ];

  it.each(cases)('%s', async (_name, body, allowed) => {
    // Prepare
    const calls = countDynamoCalls();
    try {
      // Act
      const reply = await notify(body());
      // Assess
      expect(reply).toContain(FAIL);
      expect(calls.writes()).toEqual([]);
      expect(allowed).toBe('none');
      expect(calls.calls()).toEqual([]);
    } finally {
      calls.stop();
    }
    expect((await storedOrder(outTradeNo)).status).toBe('PENDING');
    expect((await storedUser(userId)).version).toBe(0);
  });

  const uncreditable: [string, () => string, string][] = [
    ['X5 total_fee differs', () => v2NotifyXml({ outTradeNo, totalFee: 1 }), 'amount_mismatch'],
    [
      'X5 fee_type not CNY',
      () => v2NotifyXml({ outTradeNo, totalFee: 1800, extra: { fee_type: 'USD' } }),
      'currency_mismatch',
    ],
    [
      'X6 appid not ours',
      () => v2NotifyXml({ outTradeNo, totalFee: 1800, appid: 'wx0000000000000000' }),
      'merchant_mismatch',
    ],
    [
      'X6 mch_id not ours',
      () => v2NotifyXml({ outTradeNo, totalFee: 1800, mchId: '1234567890' }),
      'merchant_mismatch',
    ],
  ];

  it.each(uncreditable)(
    '%s: acknowledged once recorded as a payment exception, never credited',
    async (_name, body, reason) => {
      // Prepare
      const xml = body();
      const transactionId = /<transaction_id><!\[CDATA\[(\d+)\]\]>/.exec(xml)?.[1];
      const before = (await exceptionsFor(outTradeNo)).length;
      const calls = countDynamoCalls();
      try {
        // Act: WeChat delivers it twice
        const replies = [await notify(xml), await notify(xml)];
        // Assess
        expect(replies.every((reply) => reply.includes(SUCCESS))).toBe(true);
        expect(calls.writes().filter((write) => write !== 'PutItem')).toEqual([]);
      } finally {
        calls.stop();
      }
      const recorded = (await exceptionsFor(outTradeNo)).filter((e) => e.transactionId === transactionId);
      expect(recorded).toEqual([
        expect.objectContaining({ reason, source: 'notify-v2', transactionId, outTradeNo }),
      ]);
      expect((await exceptionsFor(outTradeNo)).length).toBe(before + 1);
      expect((await storedOrder(outTradeNo)).status).toBe('PENDING');
      expect((await storedUser(userId)).version).toBe(0);
    },
  );

  it('X7 unknown out_trade_no: acknowledged once recorded, nothing credited', async () => {
    // Prepare
    const unknown = `M20990101000000unknown${String(Date.now()).slice(-6)}`;
    // Act
    const reply = await notify(v2NotifyXml({ outTradeNo: unknown, totalFee: 1800 }));
    // Assess
    expect(reply).toContain(SUCCESS);
    expect((await exceptionsFor(unknown)).map((e) => [e.reason, e.reportedFee, e.orderFee])).toEqual([
      ['unknown_order', 1800, undefined],
    ]);
  });

  it('X8 acknowledges result_code FAIL without crediting', async () => {
    // Prepare
    const calls = countDynamoCalls();
    try {
      // Act
      const reply = await notify(v2NotifyXml({ outTradeNo, totalFee: 1800, extra: { result_code: 'FAIL' } }));
      // Assess
      expect(reply).toContain(SUCCESS);
      expect(calls.calls()).toEqual([]);
    } finally {
      calls.stop();
    }
    expect((await storedOrder(outTradeNo)).status).toBe('PENDING');
  });

  it('X4 processes a notify with extension fields included in the sign', async () => {
    // Act
    const reply = await notify(
      v2NotifyXml({ outTradeNo, totalFee: 1800, extra: { coupon_fee_0: '10', brand_new_field: 'x' } }),
    );
    // Assess
    expect(reply).toContain(SUCCESS);
    expect((await storedOrder(outTradeNo)).status).toBe('PAID');
    // X18: the same notify replayed later is acknowledged without a second credit
    expect(
      await notify(
        v2NotifyXml({
          outTradeNo,
          totalFee: 1800,
          transactionId: (await storedOrder(outTradeNo)).transactionId,
        }),
      ),
    ).toContain(SUCCESS);
    expect((await storedUser(userId)).version).toBe(1);
  });
});
