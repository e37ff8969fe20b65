import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handler as adminDeleteUserHandler } from '#functions/admin-delete-user';
import { handler as adminGetUserHandler } from '#functions/admin-get-user';
import { handler as bindPhoneHandler } from '#functions/bind-phone';
import { handler as closeOrderHandler } from '#functions/close-order';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as deleteMeHandler } from '#functions/delete-me';
import { handler as exportMeHandler } from '#functions/export-me';
import { handler as getOrderHandler } from '#functions/get-order';
import { handler as listOrdersHandler } from '#functions/list-orders';
import { handler as meHandler } from '#functions/me';
import { handler as notifyHandler } from '#functions/pay-notify';
import { handler as signOutHandler } from '#functions/sign-out';
import { handler as updateInfoHandler } from '#functions/update-info';
import { dynamo } from '#lib/clients/dynamodb';
import { type Config, loadConfig } from '#lib/config';
import { legacyUserId } from '#lib/users';
import { context, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { aUser } from '#test/helpers/builders';
import { forbidInLogs } from '#test/helpers/log-sink';
import {
  countDynamoCalls,
  type DynamoCallCounter,
  exceptionsFor,
  invoke,
  randomOpenid,
  sandboxCalls,
  sandboxUrl,
  scanTable,
  signInUser,
  storedUser,
  storedUserOf,
} from './helpers';

let config: Config;
let counter: DynamoCallCounter | undefined;

beforeAll(async () => {
  config = await loadConfig();
});
afterEach(() => {
  counter?.stop();
  counter = undefined;
});

const deleteMe = (token: string) => invoke(deleteMeHandler, { method: 'DELETE', path: '/wechat/me', token });
const signOut = (token: string) =>
  invoke(signOutHandler, { method: 'POST', path: '/wechat/sign_out', token });
const me = (token: string) => invoke(meHandler, { path: '/wechat/me', token });
const updateInfo = (token: string, body: object) =>
  invoke(updateInfoHandler, { method: 'PUT', path: '/wechat/info', token, body });

/** Opens a PENDING order for a plan; returns its out_trade_no and total_fee (fen). */
async function openOrder(token: string, planId: string): Promise<{ outTradeNo: string; totalFee: number }> {
  const result = await invoke(createPaymentHandler, {
    method: 'POST',
    path: '/wechat/pay',
    token,
    body: { planId },
  });
  expect(result.status).toBe(200);
  return { outTradeNo: result.data?.order.outTradeNo, totalFee: result.data?.order.totalFee };
}

/** The user pays in WeChat (the sandbox), and the notify is not delivered. */
async function payAtWeChat(outTradeNo: string): Promise<string> {
  const response = await fetch(`${sandboxUrl}/sandbox/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outTradeNo, deliver: false }),
  });
  return ((await response.json()) as { transactionId: string }).transactionId;
}

/** Delivers a signed v2 notify for the order to the notify handler; true when acknowledged (SUCCESS). */
async function notify(outTradeNo: string, totalFee: number, transactionId?: string): Promise<boolean> {
  const body = v2NotifyXml({ outTradeNo, totalFee, transactionId });
  const result = await notifyHandler(
    httpEvent({ method: 'POST', path: '/wechat/notify', body, headers: { 'content-type': 'text/xml' } }),
    context,
  );
  return (result.body ?? '').includes('<return_code><![CDATA[SUCCESS]]></return_code>');
}

async function storedOrders(userId: string): Promise<Record<string, unknown>[]> {
  return (await scanTable(config.ordersTable)).filter((item) => item.userId === userId);
}

/** Every users-table item that still names this user or this openid (profile, link, anything). */
async function userItems(userId: string, openid: string): Promise<Record<string, unknown>[]> {
  return (await scanTable(config.usersTable)).filter((item) =>
    JSON.stringify(item).match(`${userId}|${openid}`),
  );
}

/** Every authenticated route, each with a request a live session would get an answer to. */
const AUTHENTICATED_ROUTES: [string, (token: string, outTradeNo: string) => ReturnType<typeof invoke>][] = [
  ['GET /wechat/me', (token) => me(token)],
  ['PUT /wechat/info', (token) => updateInfo(token, { nickname: '复活' })],
  ['GET /wechat/me/export', (token) => invoke(exportMeHandler, { path: '/wechat/me/export', token })],
  ['POST /wechat/sign_out', (token) => signOut(token)],
  [
    'POST /wechat/phone',
    (token) =>
      invoke(bindPhoneHandler, { method: 'POST', path: '/wechat/phone', token, body: { code: 'c0de' } }),
  ],
  [
    'POST /wechat/pay {planId}',
    (token) => invoke(createPaymentHandler, payBody(token, { planId: 'monthly' })),
  ],
  [
    'POST /wechat/pay {outTradeNo}',
    (token, no) => invoke(createPaymentHandler, payBody(token, { outTradeNo: no })),
  ],
  ['GET /wechat/orders', (token) => invoke(listOrdersHandler, { path: '/wechat/orders', token })],
  ['GET /wechat/orders/{outTradeNo}', (token, no) => invoke(getOrderHandler, orderEvent(token, no))],
  [
    'POST /wechat/orders/{outTradeNo}/close',
    (token, no) =>
      invoke(closeOrderHandler, {
        ...orderEvent(token, no),
        method: 'POST',
        path: `/wechat/orders/${no}/close`,
      }),
  ],
];

function orderEvent(token: string, outTradeNo: string) {
  return { path: `/wechat/orders/${outTradeNo}`, pathParameters: { outTradeNo }, token };
}

function userEvent(id: string, method = 'GET') {
  return { method, path: `/admin/users/${id}`, pathParameters: { id } };
}

function payBody(token: string, body: object) {
  return { method: 'POST', path: '/wechat/pay', token, body };
}

describe('DELETE /wechat/me', () => {
  it('erases the profile and the identity link, keeps the orders pseudonymised, and closes PENDING ones at WeChat', async () => {
    // Prepare: a member with a profile, a paid order and an open one
    const openid = randomOpenid();
    const { token, user } = await signInUser(openid);
    forbidInLogs(openid, '注销测试昵称', '注销测试公司');
    expect((await updateInfo(token, { nickname: '注销测试昵称', company: '注销测试公司' })).status).toBe(200);
    const paid = await openOrder(token, 'monthly');
    expect(await notify(paid.outTradeNo, paid.totalFee)).toBe(true);
    const open = await openOrder(token, 'quarterly');
    const closesBefore = (await sandboxCalls()).filter((call) => call.path === '/pay/closeorder').length;

    // Act
    const deleted = await deleteMe(token);

    // Assess: success; nothing in the users table names the user or the openid
    expect(deleted.status).toBe(200);
    expect(deleted.data).toEqual({ deleted: true });
    expect(await userItems(user.id, openid)).toEqual([]);
    const orders = await storedOrders(user.id);
    expect(orders.map((order) => order.outTradeNo).sort()).toEqual([paid.outTradeNo, open.outTradeNo].sort());
    for (const order of orders) {
      expect(order).not.toHaveProperty('openid');
      expect(order).not.toHaveProperty('clientIp');
      expect(JSON.stringify(order)).not.toContain(openid);
    }
    expect(orders.find((order) => order.outTradeNo === paid.outTradeNo)).toMatchObject({
      status: 'PAID',
      totalFee: paid.totalFee,
    });
    expect(orders.find((order) => order.outTradeNo === open.outTradeNo)).toMatchObject({ status: 'CLOSED' });
    const closes = (await sandboxCalls()).filter((call) => call.path === '/pay/closeorder').length;
    expect(closes - closesBefore).toBe(1);
  });

  it('gives the same WeChat user a brand-new account on the next sign-in', async () => {
    // Prepare
    const openid = randomOpenid();
    const first = await signInUser(openid);
    await updateInfo(first.token, { nickname: '旧账号' });
    expect((await deleteMe(first.token)).status).toBe(200);

    // Act
    const again = await signInUser(openid);

    // Assess
    expect(again.user.id).not.toBe(first.user.id);
    expect(again.user).toMatchObject({ role: 0, membershipExpiredAt: null, company: '', introduce: '' });
    expect(again.user.nickname).toMatch(/^微信用户[0-9a-f]{6}$/);
    expect((await me(again.token)).status).toBe(200);
  });

  it.each(AUTHENTICATED_ROUTES)(
    'refuses a token issued before the deletion on %s with 401',
    async (_route, call) => {
      // Prepare
      const { token } = await signInUser();
      const { outTradeNo } = await openOrder(token, 'monthly');
      expect((await deleteMe(token)).status).toBe(200);

      // Act
      const result = await call(token, outTradeNo);

      // Assess
      expect(result.status).toBe(401);
    },
  );

  it('answers a retried delete with the same success', async () => {
    // Prepare
    const { token } = await signInUser();
    const first = await deleteMe(token);

    // Act
    const retried = await deleteMe(token);

    // Assess
    expect(retried).toEqual(first);
  });

  it('answers 409 ORDER_JUST_PAID and credits once when WeChat reports an order paid while closing it', async () => {
    // Prepare: paid at WeChat, the notify not here yet
    const { token, user } = await signInUser();
    const order = await openOrder(token, 'monthly');
    const transactionId = await payAtWeChat(order.outTradeNo);

    // Act
    const refused = await deleteMe(token);
    const lateNotify = await notify(order.outTradeNo, order.totalFee, transactionId);

    // Assess: the account stays, credited once, the order PAID with its openid
    expect(refused.status).toBe(409);
    expect(refused.code).toBe('ORDER_JUST_PAID');
    expect(lateNotify).toBe(true);
    expect(await storedUser(user.id)).toMatchObject({ role: 1, version: 1 });
    expect((await me(token)).data?.user.role).toBe(1);
    const [stored] = await storedOrders(user.id);
    expect(stored).toMatchObject({ status: 'PAID', transactionId, openid: expect.any(String) });
    // Act: the user decides again
    const deleted = await deleteMe(token);
    // Assess
    expect(deleted.status).toBe(200);
    expect(await storedUser(user.id)).toBeUndefined();
  });
});

describe('POST /wechat/sign_out', () => {
  it('ends every session of the user: both devices refused, a fresh sign-in works', async () => {
    // Prepare: two devices
    const openid = randomOpenid();
    const phone = await signInUser(openid);
    const tablet = await signInUser(openid);

    // Act
    const result = await signOut(phone.token);

    // Assess
    expect(result.status).toBe(204);
    expect((await me(phone.token)).code).toBe('SESSION_REVOKED');
    expect((await me(tablet.token)).status).toBe(401);
    expect((await signOut(tablet.token)).status).toBe(401);
    const fresh = await signInUser(openid);
    expect(fresh.user.id).toBe(phone.user.id);
    expect((await me(fresh.token)).status).toBe(200);
  });

  it.each(AUTHENTICATED_ROUTES)('refuses a signed-out token on %s with 401', async (_route, call) => {
    // Prepare
    const { token } = await signInUser();
    const { outTradeNo } = await openOrder(token, 'monthly');
    expect((await signOut(token)).status).toBe(204);

    // Act
    const result = await call(token, outTradeNo);

    // Assess
    expect(result.status).toBe(401);
  });
});

describe('races', () => {
  it('never credits a deleted user when a deletion races a notify: credited once or one exception, nothing half-deleted', async () => {
    for (let round = 0; round < 6; round++) {
      // Prepare
      const openid = randomOpenid();
      const { token, user } = await signInUser(openid);
      const order = await openOrder(token, 'monthly');

      // Act
      const [deleted, acknowledged] = await Promise.all([
        deleteMe(token),
        notify(order.outTradeNo, order.totalFee),
      ]);

      // Assess
      expect(acknowledged).toBe(true);
      const stored = await storedUser(user.id);
      const linked = await storedUserOf(openid);
      const [storedOrder] = await storedOrders(user.id);
      const exceptions = await exceptionsFor(order.outTradeNo);
      if (deleted.status === 200) {
        // Deleted: either the payment was credited before the deletion began (the books keep it), or it
        // came after and is one payment exception, never a credit.
        expect(stored).toBeUndefined();
        expect(linked).toBeUndefined();
        expect(exceptions).toHaveLength(storedOrder?.status === 'PAID' ? 0 : 1);
      } else {
        expect(deleted.code).toBe('ORDER_JUST_PAID');
        expect(stored).toMatchObject({ role: 1, version: 1 });
        expect(linked?.id).toBe(user.id);
        expect(storedOrder?.status).toBe('PAID');
        expect(exceptions).toHaveLength(0);
      }
    }
  });

  it('never resurrects a deleted user when a profile update races the deletion', async () => {
    for (let round = 0; round < 6; round++) {
      // Prepare
      const openid = randomOpenid();
      const { token, user } = await signInUser(openid);

      // Act
      const [deleted, updated] = await Promise.all([
        deleteMe(token),
        updateInfo(token, { nickname: '竞态' }),
      ]);

      // Assess
      expect(deleted.status).toBe(200);
      expect([200, 401]).toContain(updated.status);
      expect(await userItems(user.id, openid)).toEqual([]);
    }
  });
});

describe('GET /wechat/me/export', () => {
  it('holds every field the user wrote, the identities, the orders and the membership history', async () => {
    // Prepare
    const openid = randomOpenid();
    const { token, user } = await signInUser(openid);
    const profile = { nickname: '导出测试', company: '导出公司', introduce: '导出简介', sex: 1 };
    forbidInLogs(openid, '导出测试', '导出公司', '导出简介');
    await updateInfo(token, profile);
    const paid = await openOrder(token, 'monthly');
    await notify(paid.outTradeNo, paid.totalFee);
    const open = await openOrder(token, 'quarterly');

    // Act
    const result = await invoke(exportMeHandler, { path: '/wechat/me/export', token });

    // Assess
    expect(result.status).toBe(200);
    const data = result.data?.export;
    expect(data.profile).toMatchObject({ id: user.id, ...profile, role: 1 });
    expect(data.identities).toEqual({ openid, officialAccountOpenid: null, unionid: null });
    expect(data.membership.expiredAt).toEqual(expect.any(String));
    expect(data.membership.history).toEqual([
      { outTradeNo: paid.outTradeNo, planId: 'monthly', paidAt: expect.any(String) },
    ]);
    expect(data.orders.map((order: { outTradeNo: string }) => order.outTradeNo).sort()).toEqual(
      [paid.outTradeNo, open.outTradeNo].sort(),
    );
    expect(data.orders[0]).toMatchObject({ openid, userId: user.id, totalFee: expect.any(Number) });
  });
});

describe('admin routes', () => {
  it('shows a user to support, and deletes it on a support request', async () => {
    // Prepare
    const openid = randomOpenid();
    const { token, user } = await signInUser(openid);
    const order = await openOrder(token, 'monthly');

    // Act
    const shown = await invoke(adminGetUserHandler, userEvent(user.id));
    const deleted = await invoke(adminDeleteUserHandler, userEvent(user.id, 'DELETE'));

    // Assess
    expect(shown.status).toBe(200);
    expect(shown.data?.user).toEqual(user);
    expect(shown.data?.orders.map((shownOrder: { outTradeNo: string }) => shownOrder.outTradeNo)).toEqual([
      order.outTradeNo,
    ]);
    expect(JSON.stringify(shown.data)).not.toContain(openid);
    expect(deleted.status).toBe(200);
    expect(await userItems(user.id, openid)).toEqual([]);
    expect((await me(token)).status).toBe(401);
    expect((await invoke(adminGetUserHandler, userEvent(user.id))).status).toBe(404);
  });
});

describe('DynamoDB budget with the session check', () => {
  it('checks the session for free where the route reads the user, and in the same request as the order', async () => {
    // Prepare
    const openid = randomOpenid();
    const { token } = await signInUser(openid);
    const { outTradeNo, totalFee } = await openOrder(token, 'monthly');
    await notify(outTradeNo, totalFee);
    counter = countDynamoCalls();
    const cost = async (act: () => Promise<unknown>) => {
      counter?.reset();
      await act();
      return counter?.calls().sort();
    };

    // Act + Assess
    expect(await cost(() => signInUser(openid))).toEqual(['GetItem', 'GetItem']);
    expect(await cost(() => me(token))).toEqual(['GetItem']);
    expect(await cost(() => updateInfo(token, { nickname: '预算' }))).toEqual(['UpdateItem']);
    expect(await cost(() => invoke(getOrderHandler, orderEvent(token, outTradeNo)))).toEqual([
      'BatchGetItem',
    ]);
    expect(await cost(() => invoke(listOrdersHandler, { path: '/wechat/orders', token }))).toEqual([
      'GetItem',
      'Query',
    ]);
    expect(await cost(() => signOut(token))).toEqual(['UpdateItem']);
  });
});

describe('users created before identity links', () => {
  it('keep their id, profile and membership: the first sign-in after the upgrade links their openid', async () => {
    // Prepare: a user stored the old way (id derived from the openid, no link item)
    const openid = randomOpenid('oLegacy');
    const { usersTable } = await loadConfig();
    const legacy = aUser({
      id: legacyUserId(openid),
      openid,
      role: 1,
      membershipExpiredAt: '2099-01-01T00:00:00.000Z',
    });
    await dynamo().send(new PutCommand({ TableName: usersTable, Item: legacy }));
    // Act
    const first = await signInUser(openid);
    const second = await signInUser(openid);
    // Assess
    expect(first.user.id).toBe(legacy.id);
    expect(first.user).toMatchObject({ role: 1, membershipExpiredAt: '2099-01-01T00:00:00.000Z' });
    expect(second.user.id).toBe(legacy.id);
    const { Item } = await dynamo().send(
      new GetCommand({ TableName: usersTable, Key: { id: `openid#${openid}` }, ConsistentRead: true }),
    );
    expect(Item?.userId).toBe(legacy.id);
  });
});
