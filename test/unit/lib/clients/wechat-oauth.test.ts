import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import { exchangeWebCode, webUserInfo } from '#lib/clients/wechat-oauth';
import { AppError } from '#lib/errors';

const config = {
  mpAppId: 'wx0f0ca1ac0ffee0d2',
  mpSecret: 'unit-test-mp-secret',
  apiBase: 'https://api.weixin.example',
};
const OPENID = 'oMpUnitTestOpenid00001';
const UNIONID = 'oUnionUnitTest000000001';
const ACCESS_TOKEN = 'web-access-token-unit-test';

/** WeChat answers JSON labelled text/plain; each call gets a fresh Response (a body reads once). */
function wechat(body: unknown, status = 200): () => Promise<Response> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return async () => new Response(text, { status, headers: { 'content-type': 'text/plain' } });
}

async function failureOf(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('exchangeWebCode and webUserInfo', () => {
  let fetchMock: Mock<typeof fetch>;

  beforeEach(() => {
    fetchMock = vi.fn<typeof fetch>();
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('exchanges a code with the official account AppID and secret (sns/oauth2/access_token)', async () => {
    // Prepare
    fetchMock.mockImplementation(
      wechat({
        access_token: ACCESS_TOKEN,
        expires_in: 7200,
        refresh_token: 'r',
        openid: OPENID,
        scope: 'snsapi_base',
      }),
    );

    // Act
    const identity = await exchangeWebCode(config, 'code0001');

    // Assess
    expect(identity).toEqual({ openid: OPENID, scope: 'snsapi_base', accessToken: ACCESS_TOKEN });
    const url = new URL(String(fetchMock.mock.calls[0]?.[0]));
    expect(`${url.origin}${url.pathname}`).toBe('https://api.weixin.example/sns/oauth2/access_token');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      appid: config.mpAppId,
      secret: config.mpSecret,
      code: 'code0001',
      grant_type: 'authorization_code',
    });
  });

  it('keeps the unionid of a snsapi_userinfo exchange', async () => {
    // Prepare
    fetchMock.mockImplementation(
      wechat({ access_token: ACCESS_TOKEN, openid: OPENID, scope: 'snsapi_userinfo', unionid: UNIONID }),
    );

    // Act
    const identity = await exchangeWebCode(config, 'code0002');

    // Assess
    expect(identity).toMatchObject({ openid: OPENID, unionid: UNIONID, scope: 'snsapi_userinfo' });
  });

  it.each([
    [40029, 400, 'INVALID_CODE'],
    [40163, 400, 'INVALID_CODE'],
    [45011, 429, 'WECHAT_RATE_LIMITED'],
    [40125, 502, 'WECHAT_ERROR'],
  ])('maps errcode %i to %i %s without a retry', async (errcode, status, code) => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode, errmsg: 'x' }));

    // Act
    const error = await failureOf(exchangeWebCode(config, 'code0003'));

    // Assess
    expect([error.status, error.code]).toEqual([status, code]);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('retries once on errcode -1, then answers 503', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode: -1, errmsg: 'system error' }));

    // Act
    const error = await failureOf(exchangeWebCode(config, 'code0004'));

    // Assess
    expect([error.status, error.code]).toEqual([503, 'WECHAT_UNAVAILABLE']);
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it.each([
    ['no openid', { access_token: ACCESS_TOKEN }],
    ['an openid with a quote', { access_token: ACCESS_TOKEN, openid: 'o"1234567' }],
    ['no access_token', { openid: OPENID }],
    ['non-JSON', '<html>oops</html>'],
  ])('answers 502 WECHAT_ERROR for %s', async (_label, body) => {
    // Prepare
    fetchMock.mockImplementation(wechat(body));

    // Act
    const error = await failureOf(exchangeWebCode(config, 'code0005'));

    // Assess
    expect([error.status, error.code]).toEqual([502, 'WECHAT_ERROR']);
  });

  it('reads nickname, avatar and unionid from sns/userinfo, refusing another openid', async () => {
    // Prepare
    const identity = { openid: OPENID, scope: 'snsapi_userinfo' as const, accessToken: ACCESS_TOKEN };
    fetchMock.mockImplementationOnce(
      wechat({
        openid: OPENID,
        nickname: '小明',
        headimgurl: 'https://thirdwx.qlogo.cn/a/132',
        unionid: UNIONID,
      }),
    );
    fetchMock.mockImplementationOnce(wechat({ openid: 'oSomebodyElse0001', nickname: 'x' }));

    // Act
    const info = await webUserInfo(config, identity);
    const other = await failureOf(webUserInfo(config, identity));

    // Assess
    expect(info).toEqual({
      openid: OPENID,
      unionid: UNIONID,
      nickname: '小明',
      headimgurl: 'https://thirdwx.qlogo.cn/a/132',
    });
    const url = new URL(String(fetchMock.mock.calls[0]?.[0]));
    expect(Object.fromEntries(url.searchParams)).toEqual({
      access_token: ACCESS_TOKEN,
      openid: OPENID,
      lang: 'zh_CN',
    });
    expect([other.status, other.code]).toEqual([502, 'WECHAT_ERROR']);
  });
});
