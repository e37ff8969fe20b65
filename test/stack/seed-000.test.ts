import { randomBytes } from 'node:crypto';
import { expect, inject, it } from 'vitest';
import { createWxShim } from '#test/helpers/wx-shim';

/**
 * Seed 000's mini-program, unchanged: its own wx.request calls and field reads (`res.data.data.token`,
 * `Authorization: Bearer`, `res.data.data.result` spread into wx.requestPayment).
 */
const { apiUrl, sandboxUrl } = inject('stack');

// biome-ignore lint/suspicious/noExplicitAny: the seed reads untyped responses.
type Res = { statusCode: number; data: any };

it('replays the seed client: sign in → data.token, me, info, pay → data.result into wx.requestPayment', async () => {
  // Arrange
  const wx = createWxShim(sandboxUrl, `oSeed${randomBytes(9).toString('base64url')}`);
  const request = (options: {
    url: string;
    method: string;
    data?: unknown;
    header?: Record<string, string>;
  }) =>
    new Promise<Res>((resolve, reject) =>
      wx.request({ header: {}, ...options, url: `${apiUrl}${options.url}`, success: resolve, fail: reject }),
    );
  const login = () =>
    new Promise<{ code: string }>((resolve, reject) => wx.login({ success: resolve, fail: reject }));

  // Act: the seed's calls, as its mini-program makes them.
  const { code } = await login();
  const signIn = await request({ url: '/wechat/sign_in', method: 'POST', data: { code } });
  const token = signIn.data.data.token;
  wx.setStorageSync('token', token);
  const header = { Authorization: `Bearer ${wx.getStorageSync('token')}` };
  const me = await request({ url: '/wechat/me', method: 'GET', header });
  const info = await request({
    url: '/wechat/info',
    method: 'PUT',
    header,
    data: {
      nickname: 'Nov.望',
      avatar: 'https://thirdwx.qlogo.cn/mmopen/vi_32/x/132',
      sex: 1,
      company: '',
      introduce: '你好',
    },
  });
  const opened = await request({ url: '/wechat/pay', method: 'POST', header, data: { planId: 'monthly' } });
  const again = await request({
    url: '/wechat/pay',
    method: 'POST',
    header,
    data: { outTradeNo: opened.data.data.order.outTradeNo },
  });
  const paid = await new Promise<{ errMsg: string }>((resolve, reject) =>
    wx.requestPayment({ ...again.data.data.result, success: resolve, fail: reject }),
  );
  // The membership arrives with WeChat's notify (retried if the first one hit a cold start): refresh until then.
  let after = await request({ url: '/wechat/me', method: 'GET', header });
  for (let i = 0; i < 40 && after.data.data.user.role !== 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    after = await request({ url: '/wechat/me', method: 'GET', header });
  }

  // Assess
  expect(signIn.data).toMatchObject({ success: true, message: '登录成功' });
  expect(me.data.data.user.id).toBe(signIn.data.data.user.id);
  expect(info.data.data.user).toMatchObject({ nickname: 'Nov.望', sex: 1, introduce: '你好' });
  expect(Object.keys(opened.data.data.result).sort()).toEqual(
    ['appId', 'nonceStr', 'package', 'paySign', 'signType', 'timeStamp'].sort(),
  );
  expect(paid.errMsg).toBe('requestPayment:ok');
  expect(after.data.data.user.role).toBe(1);
});
