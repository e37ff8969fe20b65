import { createPublicKey, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handler as closeOrderHandler } from '#functions/close-order';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as deleteMeHandler } from '#functions/delete-me';
import { handler as exportMeHandler } from '#functions/export-me';
import { handler as meHandler } from '#functions/me';
import { handler as authorizeHandler } from '#functions/oauth-authorize';
import { handler as callbackHandler } from '#functions/oauth-callback';
import { handler as notifyHandler } from '#functions/pay-notify';
import { handler as signInHandler } from '#functions/sign-in';
import { handler as updateInfoHandler } from '#functions/update-info';
import { verifySessionToken } from '#lib/auth';
import { dynamo } from '#lib/clients/dynamodb';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { loadConfig, resetConfigCache } from '#lib/config';
import { signState, stateKey } from '#lib/oauth-state';
import { reconcile } from '#lib/payments/reconcile';
import { getOrder } from '#lib/repositories/order-repository';
import { verifyV2Sign } from '#lib/wechat-pay/v2-protocol';
import { verifyRsaSha256 } from '#lib/wechat-pay/v3-protocol';
import { context, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { forbidInLogs } from '#test/helpers/log-sink';
import {
  countDynamoCalls,
  type DynamoCallCounter,
  exceptionsFor,
  invoke,
  randomOpenid,
  sandboxCallCount,
  sandboxLogin,
  sandboxUrl,
  scanTable,
  storedUser,
} from './helpers';

/** The API's public host as the browser reaches it (a custom domain on AWS). */
const API_HOST = 'api.example.com';
const PAGE = 'https://h5.example.com/shop/index.html?from=menu';
const EXCHANGE = '/sns/oauth2/access_token';

type Identity = { openid?: string; unionid?: string; nickname?: string; headimgurl?: string; deny?: boolean };

async function sandbox<T = Record<string, unknown>>(path: string, body: unknown): Promise<T> {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await response.json()) as T;
}

/** The browser's cookie for the API host: the binding cookie the last authorize answer set ('' = none). */
let browserCookie = '';

/**
 * `GET /wechat/oauth/authorize` through the real handler, as the browser on the H5 page calls it; the browser
 * keeps the binding cookie it sets.
 */
async function authorize(query: Record<string, string>) {
  const answer = await invoke(authorizeHandler, {
    path: '/wechat/oauth/authorize',
    headers: { host: API_HOST, 'x-forwarded-proto': 'https' },
    queryStringParameters: query,
  });
  const set = answer.cookies?.[0];
  if (set) browserCookie = set.split(';')[0] as string;
  return answer;
}

/** The browser follows a 302 (fetch with redirect: 'manual'): the next Location. */
async function follow(location: string): Promise<string> {
  const response = await fetch(location, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return response.headers.get('location') as string;
}

/** WeChat's redirect back lands on our callback: the real handler with the query WeChat built. */
function callback(url: string) {
  const parsed = new URL(url);
  expect(`${parsed.origin}${parsed.pathname}`).toBe(`https://${API_HOST}/wechat/oauth/callback`);
  return invoke(callbackHandler, {
    path: parsed.pathname,
    headers: { host: API_HOST, ...(browserCookie ? { cookie: browserCookie } : {}) },
    queryStringParameters: Object.fromEntries(parsed.searchParams),
  });
}

/**
 * The browser's way up to the callback: our authorize 302 → WeChat's authorize page (the sandbox; `identity`
 * consents or refuses) → WeChat's 302 back to our callback URL with code and state. The code is forbidden
 * in logs from here on.
 */
async function toCallback(identity: Identity, scope = 'snsapi_base', redirect = PAGE): Promise<string> {
  await sandbox('/sandbox/oauth/identity', identity);
  const started = await authorize({ redirect, scope });
  expect(started.status).toBe(302);
  const back = await follow(started.headers.location as string);
  const code = new URL(back).searchParams.get('code');
  if (code) forbidInLogs(code);
  return back;
}

/** The whole H5 sign-in: → the page's Location with `#token=`, the token and its session. */
async function h5SignIn(identity: Identity, scope = 'snsapi_base', redirect = PAGE) {
  const landed = await callback(await toCallback(identity, scope, redirect));
  expect(landed.status).toBe(302);
  const location = landed.headers.location as string;
  const token = new URL(location).hash.replace(/^#token=/, '');
  const session = await verifySessionToken(token, await loadConfig());
  return { location, token, session };
}

async function miniSignIn(openid: string, unionid?: string) {
  const { code } = await sandboxLogin(openid, unionid);
  const result = await invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } });
  expect(result.status).toBe(200);
  return { token: result.data?.token as string, userId: result.data?.user.id as string };
}

/** Every item of the users table holding this unionid as an attribute (user items, not link items). */
async function usersWithUnionid(unionid: string) {
  const { usersTable } = await loadConfig();
  return (await scanTable(usersTable)).filter((item) => item.unionid === unionid);
}

const randomUnionid = () => randomOpenid('oUnion');

let counter: DynamoCallCounter | undefined;
afterEach(() => {
  counter?.stop();
  counter = undefined;
});

describe('H5 web OAuth round trip', () => {
  it('snsapi_base: 302 to WeChat with our callback and a signed state, back with a token in the fragment', async () => {
    // Prepare
    const openid = randomOpenid('oMp');
    const config = await loadConfig();
    await sandbox('/sandbox/oauth/identity', { openid });

    // Act: the H5 page sends the browser to our authorize route
    const started = await authorize({ redirect: `${PAGE}#/cart`, scope: 'snsapi_base' });

    // Assess: WeChat's authorize URL, parameters in WeChat's order, our callback carrying the page
    expect(started.status).toBe(302);
    const location = started.headers.location as string;
    const expectedCallback = `https://${API_HOST}/wechat/oauth/callback?redirect=${encodeURIComponent(PAGE)}`;
    expect(location.startsWith(`${config.openBase}/connect/oauth2/authorize?appid=`)).toBe(true);
    expect(location.endsWith('#wechat_redirect')).toBe(true);
    const authorizeUrl = new URL(location);
    expect([...authorizeUrl.searchParams.keys()]).toEqual([
      'appid',
      'redirect_uri',
      'response_type',
      'scope',
      'state',
    ]);
    expect(authorizeUrl.searchParams.get('appid')).toBe(config.mpAppId);
    expect(authorizeUrl.searchParams.get('redirect_uri')).toBe(expectedCallback);
    expect(authorizeUrl.searchParams.get('response_type')).toBe('code');
    expect(authorizeUrl.searchParams.get('state')).toMatch(/^b\d{10}[0-9a-f]{48}$/);

    // Act: WeChat (the sandbox) sends the browser back to our callback, which signs the user in
    const back = await follow(location);
    forbidInLogs(new URL(back).searchParams.get('code') as string);
    const landed = await callback(back);

    // Assess: the page (its own fragment replaced) with an H5 session in the fragment
    expect(landed.status).toBe(302);
    expect(landed.headers['cache-control']).toBe('no-store');
    const target = new URL(landed.headers.location as string);
    expect(`${target.origin}${target.pathname}${target.search}`).toBe(PAGE);
    const token = target.hash.replace(/^#token=/, '');
    const session = await verifySessionToken(token, config);
    expect(session.channel).toBe('h5');
    const stored = await storedUser(session.userId);
    expect(stored).toMatchObject({ mpOpenid: openid, nickname: expect.stringMatching(/^微信用户/) });
    expect(stored).not.toHaveProperty('openid');
    expect(await storedUser(`mpopenid#${openid}`)).toEqual({
      id: `mpopenid#${openid}`,
      userId: session.userId,
    });
    const me = await invoke(meHandler, { path: '/wechat/me', token });
    expect(me.data?.user.id).toBe(session.userId);
  });

  it('snsapi_userinfo: nickname and avatar become defaults only where the user has none', async () => {
    // Prepare
    const openid = randomOpenid('oMp');
    const identity = {
      openid,
      nickname: '小程序买家',
      headimgurl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/sandbox/132',
    };

    // Act: first sign-in
    const first = await h5SignIn(identity, 'snsapi_userinfo');

    // Assess
    expect(await storedUser(first.session.userId)).toMatchObject({
      nickname: '小程序买家',
      avatar: identity.headimgurl,
    });

    // Act: the user renames themself, then signs in again with other WeChat info
    const renamed = await invoke(updateInfoHandler, {
      method: 'PUT',
      path: '/wechat/info',
      token: first.token,
      body: { nickname: '自己起的名' },
    });
    expect(renamed.status).toBe(200);
    const again = await h5SignIn(
      { ...identity, nickname: '微信里的新名字', headimgurl: 'https://thirdwx.qlogo.cn/other/0' },
      'snsapi_userinfo',
    );

    // Assess: the same user, whose own nickname and avatar stay
    expect(again.session.userId).toBe(first.session.userId);
    expect(await storedUser(first.session.userId)).toMatchObject({
      nickname: '自己起的名',
      avatar: identity.headimgurl,
    });
  });

  it('302s to <redirect>#error=access_denied when the user refuses (no code, no exchange)', async () => {
    // Prepare
    const back = await toCallback({ deny: true }, 'snsapi_userinfo');
    expect(new URL(back).searchParams.has('code')).toBe(false);
    const exchanges = await sandboxCallCount(EXCHANGE);

    // Act
    const landed = await callback(back);

    // Assess
    expect(landed.status).toBe(302);
    expect(landed.headers.location).toBe(`${PAGE}#error=access_denied`);
    expect(await sandboxCallCount(EXCHANGE)).toBe(exchanges);
  });

  it('answers a reused code 400 INVALID_CODE (WeChat 40163) and signs nobody in', async () => {
    // Prepare
    const back = await toCallback({ openid: randomOpenid('oMp') });
    const first = await callback(back);
    expect(first.status).toBe(302);

    // Act
    const replay = await callback(back);

    // Assess
    expect(replay.status).toBe(400);
    expect(replay.code).toBe('INVALID_CODE');
  });

  it('answers 404 FEATURE_DISABLED when the stage has no official account', async () => {
    // Prepare
    const previous = process.env.WECHAT_MP_APPID;
    process.env.WECHAT_MP_APPID = '';
    resetConfigCache();
    try {
      // Act
      const result = await authorize({ redirect: PAGE });

      // Assess
      expect(result.status).toBe(404);
      expect(result.code).toBe('FEATURE_DISABLED');
    } finally {
      process.env.WECHAT_MP_APPID = previous;
      resetConfigCache();
    }
  });
});

describe('H5 OAuth refuses open redirects and bad states', () => {
  it.each([
    ['another origin', 'https://evil.example/phish'],
    ['a protocol-relative URL', '//evil.example/phish'],
    ['a relative path', '/shop'],
    ['user info', 'https://h5.example.com@evil.example/'],
    ['user info with a password', 'https://h5.example.com:pw@evil.example/'],
    ['an allowed origin as a subdomain prefix', 'https://h5.example.com.evil.example/'],
    ['a backslash', 'https:\\\\evil.example/'],
    ['a backslash after the host', 'https://evil.example\\@h5.example.com/'],
    ['an encoded scheme', 'https%3A%2F%2Fevil.example%2F'],
    ['an encoded slash pair', 'https:%2F%2Fevil.example/'],
    ['javascript:', 'javascript:alert(document.cookie)'],
    ['data:', 'data:text/html,<script>alert(1)</script>'],
    ['another scheme on the allowed host', 'ftp://h5.example.com/'],
    ['http on an https origin', 'http://h5.example.com/'],
    ['another port', 'https://h5.example.com:8443/'],
    ['a leading space', ' https://h5.example.com/'],
    ['a tab inside the scheme', 'ht\ttps://h5.example.com/'],
    ['an empty redirect', ''],
  ])('400 REDIRECT_NOT_ALLOWED for %s, before any WeChat call', async (_label, redirect) => {
    // Prepare
    const calls = await sandboxCallCount('/connect/oauth2/authorize');

    // Act
    const result = await authorize({ redirect, scope: 'snsapi_base' });

    // Assess
    expect(result.status).toBe(400);
    expect(result.code).toBe('REDIRECT_NOT_ALLOWED');
    expect(result.headers.location).toBeUndefined();
    expect(await sandboxCallCount('/connect/oauth2/authorize')).toBe(calls);
  });

  it('refuses an unknown scope with 400 VALIDATION_ERROR', async () => {
    // Act
    const result = await authorize({ redirect: PAGE, scope: 'snsapi_login' });

    // Assess
    expect(result.status).toBe(400);
    expect(result.code).toBe('VALIDATION_ERROR');
  });

  it('refuses a tampered state, a state moved to another page, and a foreign redirect, without exchanging the code', async () => {
    // Prepare
    const back = new URL(await toCallback({ openid: randomOpenid('oMp') }));
    const state = back.searchParams.get('state') as string;
    const tampered = new URL(back);
    tampered.searchParams.set('state', `${state.slice(0, -1)}${state.endsWith('0') ? '1' : '0'}`);
    const upgraded = new URL(back);
    upgraded.searchParams.set('state', `u${state.slice(1)}`);
    const moved = new URL(back);
    moved.searchParams.set('redirect', 'https://h5.example.com/other');
    const foreign = new URL(back);
    foreign.searchParams.set('redirect', 'https://evil.example/');
    const exchanges = await sandboxCallCount(EXCHANGE);

    // Act
    const results = [];
    for (const url of [tampered, upgraded, moved, foreign]) results.push(await callback(url.href));

    // Assess
    expect(results.map((result) => [result.status, result.code])).toEqual([
      [400, 'INVALID_STATE'],
      [400, 'INVALID_STATE'],
      [400, 'INVALID_STATE'],
      [400, 'REDIRECT_NOT_ALLOWED'],
    ]);
    expect(await sandboxCallCount(EXCHANGE)).toBe(exchanges);
    // The untouched callback still works: nothing was spent.
    expect((await callback(back.href)).status).toBe(302);
  });

  it('binds the state to the browser that started it: a callback in another browser (login CSRF) is refused', async () => {
    // Prepare: the attacker starts a sign-in with their own WeChat account and keeps the callback URL
    const attackers = new URL(await toCallback({ openid: randomOpenid('oMp') }));
    const started = await authorize({ redirect: PAGE, scope: 'snsapi_base' });
    const exchanges = await sandboxCallCount(EXCHANGE);

    // Act: the victim's browser opens it, without the cookie, then with its own sign-in's cookie
    browserCookie = '';
    const withoutCookie = await callback(attackers.href);
    browserCookie = (started.cookies[0] as string).split(';')[0] as string;
    const withOtherCookie = await callback(attackers.href);

    // Assess
    expect(started.cookies[0]).toMatch(
      /^wx_oauth_nonce=[0-9a-f]{16}; Path=\/wechat\/oauth; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/,
    );
    expect([withoutCookie.status, withoutCookie.code]).toEqual([400, 'INVALID_STATE']);
    expect([withOtherCookie.status, withOtherCookie.code]).toEqual([400, 'INVALID_STATE']);
    expect(await sandboxCallCount(EXCHANGE)).toBe(exchanges);
  });

  it('refuses a state older than 10 minutes with 400 STATE_EXPIRED', async () => {
    // Prepare: a state signed with our key 11 minutes ago, for the page it names
    const config = await loadConfig();
    const back = new URL(await toCallback({ openid: randomOpenid('oMp') }));
    const page = back.searchParams.get('redirect') as string;
    const old = signState(
      stateKey(config.jwtSecret),
      'snsapi_base',
      page,
      Math.floor(Date.now() / 1000) - 660,
    );
    back.searchParams.set('state', old);

    // Act
    const result = await callback(back.href);

    // Assess
    expect(result.status).toBe(400);
    expect(result.code).toBe('STATE_EXPIRED');
  });
});

describe('H5 OAuth behind a proxy that sends API Gateway its own Host (PUBLIC_API_URL)', () => {
  /** API Gateway's own domain: the Host CloudFront must send to an execute-api origin. */
  const EXECUTE_API_HOST = 'a1b2c3d4e5.execute-api.ap-southeast-1.amazonaws.com';
  /** Where browsers reach the API: the proxy serves it under /api on the site's domain (the 网页授权域名). */
  const PUBLIC_API_URL = 'https://www.example.com/api';
  const PUBLIC_CALLBACK = `${PUBLIC_API_URL}/wechat/oauth/callback`;
  let previous: string | undefined;

  beforeAll(() => {
    previous = process.env.PUBLIC_API_URL;
    process.env.PUBLIC_API_URL = PUBLIC_API_URL;
    resetConfigCache();
  });

  afterAll(() => {
    if (previous === undefined) delete process.env.PUBLIC_API_URL;
    else process.env.PUBLIC_API_URL = previous;
    resetConfigCache();
  });

  /**
   * A browser request to a URL under PUBLIC_API_URL as the proxy forwards it: API Gateway's own Host, the
   * path without the proxy's /api prefix, the browser's cookie (if any).
   */
  function throughProxy(url: URL, cookie?: string) {
    expect(url.href.startsWith(`${PUBLIC_API_URL}/`)).toBe(true);
    return {
      path: url.pathname.slice(new URL(PUBLIC_API_URL).pathname.length),
      headers: { host: EXECUTE_API_HOST, 'x-forwarded-proto': 'https', ...(cookie ? { cookie } : {}) },
      queryStringParameters: Object.fromEntries(url.searchParams),
    };
  }

  it('sends WeChat the public redirect_uri; the callback on the public path takes the binding cookie and signs the user in', async () => {
    // Prepare
    const openid = randomOpenid('oMp');
    await sandbox('/sandbox/oauth/identity', { openid });
    const start = new URL(`${PUBLIC_API_URL}/wechat/oauth/authorize`);
    start.searchParams.set('redirect', PAGE);

    // Act: the H5 page sends the browser to the public authorize URL; the proxy forwards it
    const started = await invoke(authorizeHandler, throughProxy(start));

    // Assess: WeChat is asked to come back to the public callback, and the cookie covers its folder
    expect(started.status).toBe(302);
    const location = started.headers.location as string;
    const redirectUri = new URL(location).searchParams.get('redirect_uri');
    expect(redirectUri).toBe(`${PUBLIC_CALLBACK}?redirect=${encodeURIComponent(PAGE)}`);
    const setCookie = started.cookies[0] as string;
    expect(setCookie).toMatch(
      /^wx_oauth_nonce=[0-9a-f]{16}; Path=\/api\/wechat\/oauth; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/,
    );

    // Act: WeChat (the sandbox) sends the browser back to the redirect_uri it received
    const back = new URL(await follow(location));
    forbidInLogs(back.searchParams.get('code') as string);

    // Assess: back on the public callback, where the browser sends the cookie (https, path under its Path)
    expect(`${back.origin}${back.pathname}`).toBe(PUBLIC_CALLBACK);
    expect(back.protocol).toBe('https:');
    const cookiePath = /; Path=([^;]+)/.exec(setCookie)?.[1];
    expect(back.pathname.startsWith(`${cookiePath}/`)).toBe(true);

    // Act: the proxy forwards the callback with the cookie
    const landed = await invoke(callbackHandler, throughProxy(back, setCookie.split(';')[0]));

    // Assess: signed in, back on the page
    expect(landed.status).toBe(302);
    const target = new URL(landed.headers.location as string);
    expect(`${target.origin}${target.pathname}${target.search}`).toBe(PAGE);
    const session = await verifySessionToken(target.hash.replace(/^#token=/, ''), await loadConfig());
    expect(session.channel).toBe('h5');
    expect(await storedUser(session.userId)).toMatchObject({ mpOpenid: openid });
  });

  it('without PUBLIC_API_URL the same request names the execute-api host (what WeChat refuses, 10003)', async () => {
    // Prepare
    process.env.PUBLIC_API_URL = '';
    resetConfigCache();
    const start = new URL(`${PUBLIC_API_URL}/wechat/oauth/authorize`);
    start.searchParams.set('redirect', PAGE);
    try {
      // Act
      const started = await invoke(authorizeHandler, throughProxy(start));

      // Assess
      const redirectUri = new URL(started.headers.location as string).searchParams.get('redirect_uri');
      expect(new URL(redirectUri as string).host).toBe(EXECUTE_API_HOST);
    } finally {
      process.env.PUBLIC_API_URL = PUBLIC_API_URL;
      resetConfigCache();
    }
  });
});

describe('one user everywhere: identities linked by unionid', () => {
  it('mini-program first, then H5: the H5 sign-in lands on the same user', async () => {
    // Prepare
    const unionid = randomUnionid();
    const mini = await miniSignIn(randomOpenid(), unionid);
    const mpOpenid = randomOpenid('oMp');

    // Act
    const h5 = await h5SignIn({ openid: mpOpenid, unionid }, 'snsapi_userinfo');

    // Assess
    expect(h5.session.userId).toBe(mini.userId);
    expect(await storedUser(mini.userId)).toMatchObject({ mpOpenid, unionid, unionidLinked: true });
    expect(await usersWithUnionid(unionid)).toHaveLength(1);
  });

  it('auto: a first H5 sign-in goes silent, is asked for snsapi_userinfo (openid linked to nobody), and lands on the mini-program user', async () => {
    // Prepare
    const unionid = randomUnionid();
    const mini = await miniSignIn(randomOpenid(), unionid);
    const mpOpenid = randomOpenid('oMp');
    await sandbox('/sandbox/oauth/identity', { openid: mpOpenid, unionid });

    // Act: silent first
    const started = await authorize({ redirect: PAGE, scope: 'auto' });
    const silentBack = await follow(started.headers.location as string);
    const again = await callback(silentBack);
    // WeChat's page again, as the same person, now for snsapi_userinfo (the answer also renews the binding cookie)
    const renewed = again.cookies?.[0];
    if (renewed) browserCookie = renewed.split(';')[0] as string;
    await sandbox('/sandbox/oauth/identity', { openid: mpOpenid, unionid });
    const consentBack = await follow(again.headers.location as string);
    const landed = await callback(consentBack);

    // Assess
    expect(new URL(started.headers.location as string).searchParams.get('scope')).toBe('snsapi_base');
    expect(again.status).toBe(302);
    const asked = new URL(again.headers.location as string);
    expect(asked.pathname).toBe('/connect/oauth2/authorize');
    expect(asked.searchParams.get('scope')).toBe('snsapi_userinfo');
    expect(asked.searchParams.get('redirect_uri')).toBe(
      new URL(started.headers.location as string).searchParams.get('redirect_uri'),
    );
    expect(renewed).toMatch(/^wx_oauth_nonce=[0-9a-f]{16}; Path=\/wechat\/oauth;/);
    expect(landed.status).toBe(302);
    const location = landed.headers.location as string;
    expect(location.startsWith(`${PAGE}#token=`)).toBe(true);
    const session = await verifySessionToken(
      new URL(location).hash.replace(/^#token=/, ''),
      await loadConfig(),
    );
    expect(session.userId).toBe(mini.userId);
    expect(await storedUser(mini.userId)).toMatchObject({ mpOpenid, unionid });
    expect(await usersWithUnionid(unionid)).toHaveLength(1);
  });

  it('auto: an official-account openid already linked signs in silently, with no second authorize', async () => {
    // Prepare: the person signed in on H5 once with snsapi_userinfo
    const unionid = randomUnionid();
    const mpOpenid = randomOpenid('oMp');
    const first = await h5SignIn({ openid: mpOpenid, unionid }, 'snsapi_userinfo');

    // Act
    const landed = await callback(await toCallback({ openid: mpOpenid }, 'auto'));

    // Assess
    expect(landed.status).toBe(302);
    const location = landed.headers.location as string;
    expect(location.startsWith(`${PAGE}#token=`)).toBe(true);
    const session = await verifySessionToken(
      new URL(location).hash.replace(/^#token=/, ''),
      await loadConfig(),
    );
    expect(session.userId).toBe(first.session.userId);
  });

  it('H5 first, then the mini-program: the mini-program sign-in lands on the same user', async () => {
    // Prepare
    const unionid = randomUnionid();
    const h5 = await h5SignIn({ openid: randomOpenid('oMp'), unionid }, 'snsapi_userinfo');
    const openid = randomOpenid();

    // Act
    const mini = await miniSignIn(openid, unionid);

    // Assess
    expect(mini.userId).toBe(h5.session.userId);
    expect(await storedUser(mini.userId)).toMatchObject({ openid, unionid });
    expect(await usersWithUnionid(unionid)).toHaveLength(1);
  });

  it('a user stored before unionid links keeps its id: its next sign-in links the unionid, then H5 finds it', async () => {
    // Prepare: the user as the previous release stored it (openid link, unionid on the item, no unionid link)
    const { usersTable } = await loadConfig();
    const unionid = randomUnionid();
    const openid = randomOpenid();
    const id = `uLegacyUnion${randomOpenid('')}`;
    const at = '2026-01-01T00:00:00.000Z';
    await dynamo().send(
      new PutCommand({ TableName: usersTable, Item: { id: `openid#${openid}`, userId: id } }),
    );
    await dynamo().send(
      new PutCommand({
        TableName: usersTable,
        Item: {
          id,
          openid,
          unionid,
          nickname: '老用户',
          avatar: '',
          sex: 2,
          role: 0,
          company: '',
          introduce: '',
          version: 0,
          createdAt: at,
          updatedAt: at,
        },
      }),
    );

    // Act
    const mini = await miniSignIn(openid, unionid);
    const h5 = await h5SignIn({ openid: randomOpenid('oMp'), unionid }, 'snsapi_userinfo');

    // Assess
    expect(mini.userId).toBe(id);
    expect(h5.session.userId).toBe(id);
    expect(await storedUser(`unionid#${unionid}`)).toEqual({ id: `unionid#${unionid}`, userId: id });
    expect(await storedUser(id)).toMatchObject({ nickname: '老用户', unionidLinked: true });
  });

  it('concurrent first sign-ins from both sides make one user, round after round', async () => {
    for (let round = 0; round < 6; round++) {
      // Prepare: both codes in hand before either side signs in
      const unionid = randomUnionid();
      const { code } = await sandboxLogin(randomOpenid(), unionid);
      const back = await toCallback({ openid: randomOpenid('oMp'), unionid }, 'snsapi_userinfo');

      // Act
      const [mini, h5] = await Promise.all([
        invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } }),
        callback(back),
      ]);

      // Assess
      expect(mini.status).toBe(200);
      expect(h5.status).toBe(302);
      const token = new URL(h5.headers.location as string).hash.replace(/^#token=/, '');
      const session = await verifySessionToken(token, await loadConfig());
      expect(session.userId).toBe(mini.data?.user.id);
      expect(await usersWithUnionid(unionid)).toHaveLength(1);
    }
  });

  it('a returning sign-in costs two GetItems on either side and no write; linking costs one transaction', async () => {
    // Prepare
    const unionid = randomUnionid();
    const openid = randomOpenid();
    const mpOpenid = randomOpenid('oMp');
    const firstMini = await sandboxLogin(openid, unionid);
    const firstH5 = await toCallback({ openid: mpOpenid, unionid }, 'snsapi_userinfo');
    counter = countDynamoCalls();

    // Act: first the mini-program (a new user), then H5 (linked to it)
    await invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code: firstMini.code } });
    const newUser = counter.calls();
    counter.reset();
    await callback(firstH5);
    const linked = counter.calls();
    counter.reset();
    // Act: both return
    const { code } = await sandboxLogin(openid, unionid);
    const back = await toCallback({ openid: mpOpenid, unionid }, 'snsapi_base');
    counter.reset();
    await invoke(signInHandler, { method: 'POST', path: '/wechat/sign_in', body: { code } });
    const mini = counter.calls();
    counter.reset();
    await callback(back);
    const h5 = counter.calls();

    // Assess: openid link, legacy id, unionid link misses, then one transaction (links + user)
    expect(newUser).toEqual(['GetItem', 'GetItem', 'GetItem', 'TransactWriteItems']);
    // mpopenid link miss, unionid link + its user, one transaction (link + user), the profile defaults
    expect(linked).toEqual(['GetItem', 'GetItem', 'GetItem', 'TransactWriteItems', 'UpdateItem']);
    expect(mini).toEqual(['GetItem', 'GetItem']);
    expect(h5).toEqual(['GetItem', 'GetItem']);
  });

  it('export shows both openids; deletion removes the user and every link', async () => {
    // Prepare
    const unionid = randomUnionid();
    const openid = randomOpenid();
    const mpOpenid = randomOpenid('oMp');
    const mini = await miniSignIn(openid, unionid);
    await h5SignIn({ openid: mpOpenid, unionid }, 'snsapi_userinfo');

    // Act
    const exported = await invoke(exportMeHandler, { path: '/wechat/me/export', token: mini.token });
    const deleted = await invoke(deleteMeHandler, {
      method: 'DELETE',
      path: '/wechat/me',
      token: mini.token,
    });

    // Assess
    expect(exported.data?.export.identities).toEqual({ openid, officialAccountOpenid: mpOpenid, unionid });
    expect(deleted.status).toBe(200);
    for (const id of [mini.userId, `openid#${openid}`, `mpopenid#${mpOpenid}`, `unionid#${unionid}`]) {
      expect(await storedUser(id)).toBeUndefined();
    }
    // The same person comes back as a new user.
    const back = await h5SignIn({ openid: mpOpenid, unionid }, 'snsapi_userinfo');
    expect(back.session.userId).not.toBe(mini.userId);
  });
});

describe('H5 pay (JSAPI under the official account)', () => {
  let notifyServer: Server;
  let previousNotifyUrl: string | undefined;
  let previousVersion: string | undefined;

  beforeAll(async () => {
    notifyServer = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const result = await notifyHandler(
        httpEvent({
          method: 'POST',
          path: '/wechat/notify',
          headers: Object.fromEntries(
            Object.entries(req.headers).map(([name, value]) => [name, String(value)]),
          ),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
        context,
      );
      res.writeHead(result.statusCode ?? 200, result.headers as Record<string, string>).end(result.body);
    });
    await new Promise<void>((resolve) => notifyServer.listen(0, '127.0.0.1', resolve));
    previousNotifyUrl = process.env.WECHAT_NOTIFY_URL;
    previousVersion = process.env.WECHAT_PAY_VERSION;
    process.env.WECHAT_NOTIFY_URL = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/wechat/notify`;
  });

  afterAll(async () => {
    process.env.WECHAT_NOTIFY_URL = previousNotifyUrl;
    process.env.WECHAT_PAY_VERSION = previousVersion;
    resetConfigCache();
    await new Promise((resolve) => notifyServer.close(resolve));
  });

  it.each(['v2', 'v3'] as const)(
    '%s: prepays with the official account, payParams carry its appId, the notify credits once',
    async (version) => {
      // Prepare
      process.env.WECHAT_PAY_VERSION = version;
      resetConfigCache();
      const config = await loadConfig();
      const mpOpenid = randomOpenid('oMp');
      const { token, session } = await h5SignIn({ openid: mpOpenid }, 'snsapi_base');

      // Act: order from the H5 session
      const created = await invoke(createPaymentHandler, {
        method: 'POST',
        path: '/wechat/pay',
        token,
        body: { planId: 'monthly' },
      });

      // Assess: the order is the official account's, and payParams are signed over its appId
      expect(created.status).toBe(200);
      const { order, payParams, result } = created.data ?? {};
      expect(payParams.appId).toBe(config.mpAppId);
      expect(result.appId).toBe(config.mpAppId);
      const stored = await getOrder(config.ordersTable, order.outTradeNo);
      expect(stored).toMatchObject({ appId: config.mpAppId, openid: mpOpenid, payVersion: version });
      if (config.payVersion === 'v2') {
        const { paySign, ...signed } = payParams;
        expect(verifyV2Sign({ ...signed, sign: paySign }, config.mchKey, [config.v2SignType])).toBe(true);
      } else {
        const message = `${payParams.appId}\n${payParams.timeStamp}\n${payParams.nonceStr}\n${payParams.package}\n`;
        const publicKey = createPublicKey(config.mchPrivateKey as KeyObject);
        expect(verifyRsaSha256(publicKey, message, payParams.paySign)).toBe(true);
      }

      // Act: WeixinJSBridge getBrandWCPayRequest in the cashier (the sandbox checks the paySign with the appId)
      const paid = await sandbox<{ delivered: boolean }>('/sandbox/cashier', { ...payParams, action: 'pay' });
      const again = await sandbox<{ delivered: boolean }>('/sandbox/pay/notify-again', {
        outTradeNo: order.outTradeNo,
      });

      // Assess: credited exactly once (a second notify is a duplicate)
      expect(paid.delivered).toBe(true);
      expect(again.delivered).toBe(true);
      const user = await storedUser(session.userId);
      expect(user?.role).toBe(1);
      expect(user?.version).toBe(1);
      expect(await getOrder(config.ordersTable, order.outTradeNo)).toMatchObject({ status: 'PAID' });
    },
  );

  it('records an H5 order reported under the mini-program AppID as a payment exception, never credited', async () => {
    // Prepare
    process.env.WECHAT_PAY_VERSION = 'v2';
    resetConfigCache();
    const config = await loadConfig();
    const { token, session } = await h5SignIn({ openid: randomOpenid('oMp') }, 'snsapi_base');
    const created = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      token,
      body: { planId: 'monthly' },
    });
    const { outTradeNo } = created.data?.order ?? {};

    // Act: a validly signed notify for this order, naming the mini-program's AppID
    const reply = await notifyHandler(
      httpEvent({
        method: 'POST',
        path: '/wechat/notify',
        headers: { 'content-type': 'text/xml' },
        body: v2NotifyXml({ outTradeNo, totalFee: 1800, appid: config.appId }),
      }),
      context,
    );

    // Assess: acknowledged once recorded (WeChat stops retrying), nothing credited
    expect(reply.body).toContain('SUCCESS');
    expect((await exceptionsFor(outTradeNo)).map((exception) => exception.reason)).toEqual([
      'merchant_mismatch',
    ]);
    expect(await getOrder(config.ordersTable, outTradeNo)).toMatchObject({ status: 'PENDING' });
    expect((await storedUser(session.userId))?.role).toBe(0);
  });

  it('v2: the reconciler credits an H5 order whose notify was lost, and the owner closes another (queries under its AppID)', async () => {
    // Prepare: two H5 orders; one paid with the notify lost
    process.env.WECHAT_PAY_VERSION = 'v2';
    resetConfigCache();
    const config = await loadConfig();
    const { token, session } = await h5SignIn({ openid: randomOpenid('oMp') }, 'snsapi_base');
    const open = async (planId: string) =>
      (await invoke(createPaymentHandler, { method: 'POST', path: '/wechat/pay', token, body: { planId } }))
        .data?.order.outTradeNo as string;
    const lost = await open('monthly');
    const unpaid = await open('quarterly');
    const paid = await sandbox<{ transactionId: string }>('/sandbox/pay', {
      outTradeNo: lost,
      deliver: false,
    });

    // Act
    const summary = await reconcile(config, paymentProvider(config), {
      all: true,
      deadline: Date.now() + 30_000,
    });
    const closed = await invoke(closeOrderHandler, {
      method: 'POST',
      path: `/wechat/orders/${unpaid}/close`,
      pathParameters: { outTradeNo: unpaid },
      token,
    });

    // Assess
    expect(summary.credited).toBeGreaterThanOrEqual(1);
    expect(await getOrder(config.ordersTable, lost)).toMatchObject({
      status: 'PAID',
      transactionId: paid.transactionId,
      paidVia: 'orderquery-v2',
    });
    expect((await storedUser(session.userId))?.role).toBe(1);
    expect(closed.status).toBe(200);
    expect(closed.data?.order.status).toBe('CLOSED');
    expect(await exceptionsFor(lost)).toEqual([]);
  });

  it('refuses to continue an H5 order from the mini-program (409 ORDER_CHANNEL_MISMATCH)', async () => {
    // Prepare: one person on both sides, an open H5 order
    process.env.WECHAT_PAY_VERSION = 'v2';
    resetConfigCache();
    const unionid = randomUnionid();
    const h5 = await h5SignIn({ openid: randomOpenid('oMp'), unionid }, 'snsapi_userinfo');
    const mini = await miniSignIn(randomOpenid(), unionid);
    const created = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      token: h5.token,
      body: { planId: 'quarterly' },
    });

    // Act
    const fromMini = await invoke(createPaymentHandler, {
      method: 'POST',
      path: '/wechat/pay',
      token: mini.token,
      body: { outTradeNo: created.data?.order.outTradeNo },
    });

    // Assess
    expect(fromMini.status).toBe(409);
    expect(fromMini.code).toBe('ORDER_CHANNEL_MISMATCH');
  });
});
