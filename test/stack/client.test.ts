import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { createWxShim, type WxShim } from '#test/helpers/wx-shim';
import { type ApiError, type Client, createClient } from '../../client/index.js';

/** The mini-program client helper against the real local stack, with a `wx` shim (every answer checked by the spec). */
const { apiUrl, sandboxUrl } = inject('stack');

let wx: WxShim;
let api: Client;
let openid: string;

beforeEach(() => {
  openid = `oClient${randomBytes(9).toString('base64url')}`;
  wx = createWxShim(sandboxUrl, openid);
  api = createClient({ baseUrl: apiUrl, wx, pollIntervalMs: 200, pollTimeoutMs: 10_000 });
});

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    return error as ApiError;
  }
  throw new Error('expected a rejection');
}

describe('client helper', () => {
  it('signs in on first use and keeps the token with wx.setStorageSync', async () => {
    // Act
    const user = await api.me();

    // Assess
    expect(user.role).toBe(0);
    expect(api.token()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(wx.storage.get('wechat-backend-token')).toBe(api.token());
  });

  it('signs in again once on a 401 and retries the call', async () => {
    // Arrange
    const first = await api.signIn();
    wx.setStorageSync('wechat-backend-token', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged');

    // Act
    const user = await api.me();

    // Assess
    expect(user.id).toBe(first.user.id);
    expect(wx.requests.map((r) => r.status)).toEqual([200, 401, 200, 200]);
  });

  it('updates the profile and throws errors carrying code and field errors', async () => {
    // Act
    const user = await api.updateInfo({ nickname: '小明', company: 'Acme' });
    const error = await rejection(api.updateInfo({ nickname: '\u202Eevil' }));

    // Assess
    expect(user).toMatchObject({ nickname: '小明', company: 'Acme' });
    expect(error).toMatchObject({ code: 'VALIDATION_ERROR', status: 400 });
    expect(error.errors).toEqual([{ field: 'nickname', code: 'INVALID_VALUE' }]);
  });

  it('binds a phone number from a getPhoneNumber code, and refuses the code a second time', async () => {
    // Arrange
    await api.signIn();
    const answer = await fetch(`${sandboxUrl}/sandbox/phone-code`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ openid, phoneNumber: '13700001234' }),
    });
    const { code } = (await answer.json()) as { code: string };

    // Act
    const user = await api.bindPhone(code);
    const error = await rejection(api.bindPhone(code));

    // Assess
    expect(user).toMatchObject({ phoneNumber: '13700001234', countryCode: '86' });
    expect(error).toMatchObject({ code: 'INVALID_CODE', status: 400 });
  });

  it('pays: exactly the five wx.requestPayment fields, then the PAID order confirmed by the backend', async () => {
    // Arrange
    const [plan] = await api.plans();

    // Act
    const order = await api.pay(plan?.id ?? '');
    const me = await api.me();

    // Assess
    expect(order).toMatchObject({ planId: plan?.id, status: 'PAID' });
    expect(Object.keys(wx.payments[0] ?? {}).sort()).toEqual([
      'nonceStr',
      'package',
      'paySign',
      'signType',
      'timeStamp',
    ]);
    expect(me.role).toBe(1);
    expect(me.membershipExpiredAt).not.toBeNull();
    expect((await api.orders()).orders[0]?.outTradeNo).toBe(order.outTradeNo);
  });

  it('finds a payment whose notify was lost through the order query', async () => {
    // Arrange
    wx.cashier = 'pay-lose-notify';

    // Act
    const order = await api.pay({ planId: 'monthly' });

    // Assess
    expect(order.status).toBe('PAID');
    expect((await api.me()).role).toBe(1);
  });

  it('throws PAY_CANCELLED with the order CLOSED when the user cancels in the cashier', async () => {
    // Arrange
    wx.cashier = 'cancel';

    // Act
    const error = await rejection(api.pay('monthly'));

    // Assess
    expect(error.code).toBe('PAY_CANCELLED');
    expect(error.order?.status).toBe('CLOSED');
    expect((await api.me()).role).toBe(0);
  });

  it('opens a new order after a cancelled one and pays it', async () => {
    // Arrange
    wx.cashier = 'cancel';
    const cancelled = (await rejection(api.pay('monthly'))).order;
    wx.cashier = 'pay';

    // Act
    const paid = await api.pay('monthly');

    // Assess
    expect(paid.outTradeNo).not.toBe(cancelled?.outTradeNo);
    expect(paid.status).toBe('PAID');
  });

  it('exports the data, signs out on every device, and deletes the account', async () => {
    // Arrange: a second device of the same WeChat user
    const user = await api.updateInfo({ nickname: '离开的人' });
    const tablet = createClient({ baseUrl: apiUrl, wx: createWxShim(sandboxUrl, openid) });
    await tablet.signIn();

    // Act
    const copy = await api.exportData();
    await api.signOut();

    // Assess: the copy holds what was written; the other device's session ended too
    expect(copy.profile).toMatchObject({ id: user.id, nickname: '离开的人' });
    expect(copy.identities.openid).toBe(openid);
    expect(api.token()).toBe('');
    const probe = await fetch(`${apiUrl}/wechat/me`, {
      headers: { authorization: `Bearer ${tablet.token()}` },
    });
    expect(probe.status).toBe(401);

    // Act: signed in again, the user leaves
    await api.signIn();
    await api.deleteAccount();

    // Assess: the token is gone, and the next sign-in is a brand-new account
    expect(api.token()).toBe('');
    expect((await api.signIn()).user.id).not.toBe(user.id);
  });
});
