import { timingSafeEqual } from 'node:crypto';
import { issueSessionToken } from './auth';
import { exchangeWebCode, webUserInfo } from './clients/wechat-oauth';
import type { Config } from './config';
import { BadRequestError, FeatureDisabledError } from './errors';
import type { HttpEvent, HttpResult } from './http';
import { logger } from './logger';
import {
  allowedRedirect,
  SIGN_IN_SCOPES,
  type SignInScope,
  STATE_TTL_SECONDS,
  signState,
  stateKey,
  stateNonce,
  verifyState,
  wechatScope,
} from './oauth-state';
import type { UserRecord } from './repositories/user-repository';
import { applyProfileDefaults, userForIdentity, userForMpOpenid } from './users';

/**
 * H5 web OAuth through the official account (wechat-protocol.md §8): `GET /wechat/oauth/authorize` sends the
 * browser to WeChat's authorize page, `GET /wechat/oauth/callback` signs the user in and sends the browser
 * back to the H5 page with the session token in the URL fragment (which browsers never send to a server).
 */

/**
 * The H5 settings, or FeatureDisabledError (404) when this stage has no official account (WECHAT_MP_APPID),
 * no H5_ORIGINS, or (for the code exchange, `secret`) no WECHAT_MP_SECRET.
 */
function h5Config(config: Config, secret: boolean): Config {
  if (!config.mpAppId || config.h5Origins.length === 0 || (secret && !config.mpSecret)) {
    throw new FeatureDisabledError('H5 登录未开启', 'WECHAT_MP_APPID, WECHAT_MP_SECRET or H5_ORIGINS unset');
  }
  return config;
}

const keys = new WeakMap<Config, Buffer>();
function keyOf(config: Config): Buffer {
  let key = keys.get(config);
  if (!key) {
    key = stateKey(config.jwtSecret);
    keys.set(config, key);
  }
  return key;
}

/** A 302 that no cache keeps and that sends no Referer onwards (the callback URL held a code). */
function found(location: string, cookies?: string[]): HttpResult {
  return {
    statusCode: 302,
    headers: { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
    ...(cookies ? { cookies } : {}),
  };
}

/**
 * The browser-binding cookie (login CSRF): authorize sets the state's nonce in it, and the callback accepts a
 * state only from the browser that holds it, so nobody can sign a victim in with the attacker's own
 * WeChat grant. HttpOnly, SameSite=Lax (sent on WeChat's top-level redirect back), 10 minutes, scoped to
 * the OAuth routes' folder; Secure except on loopback (local http).
 */
export const BINDING_COOKIE = 'wx_oauth_nonce';

/**
 * The binding cookie's Set-Cookie value, scoped to the folder the browser reaches the OAuth routes in: with
 * `publicApiUrl` (PUBLIC_API_URL) its path + `/wechat/oauth`, Secure unless its host is loopback; without, the
 * request's rawPath less `/authorize` (or `/callback`), Secure unless the Host header is loopback.
 */
/** localhost or 127.0.0.1, with or without a port: served over plain http locally. */
const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1)(:\d+)?$/;

export function bindingCookie(event: HttpEvent, nonce: string, publicApiUrl = ''): string {
  const base = publicApiUrl ? new URL(publicApiUrl) : undefined;
  const folder = base
    ? `${base.pathname.replace(/\/$/, '')}/wechat/oauth`
    : (event.rawPath ?? '/wechat/oauth/authorize').replace(/\/(authorize|callback)$/, '');
  const host = base ? base.host : (event.headers?.host ?? '');
  const secure = LOOPBACK_HOST.test(host) ? '' : '; Secure';
  return `${BINDING_COOKIE}=${nonce}; Path=${folder}; Max-Age=${STATE_TTL_SECONDS}; HttpOnly; SameSite=Lax${secure}`;
}

/** The binding cookie's value from payload 2.0's `cookies` (API Gateway) or a Cookie header (elsewhere). */
function boundNonce(event: HttpEvent): string {
  const pairs = [...(event.cookies ?? []), ...(event.headers?.cookie ?? '').split(';')];
  for (const pair of pairs) {
    const [name, ...value] = pair.trim().split('=');
    if (name === BINDING_COOKIE) return value.join('=');
  }
  return '';
}

function query(event: HttpEvent, name: string): string | undefined {
  return event.queryStringParameters?.[name];
}

/**
 * Our callback URL (WeChat's `redirect_uri`), as the browser reaches this API; its host must be the official
 * account's 网页授权域名 (else WeChat refuses it, 10003). With `publicApiUrl` (PUBLIC_API_URL, set when a proxy
 * such as CloudFront sends API Gateway its own execute-api Host): `<publicApiUrl>/wechat/oauth/callback`.
 * Without: the request's host (`Host`, else API Gateway's domainName) and scheme (`X-Forwarded-Proto`, else
 * https; http for a loopback host), and the request's own path with `/authorize` replaced by `/callback`, so
 * a custom domain and its base-path mapping (both in the Host header and rawPath on API Gateway HTTP APIs)
 * carry over. The page to return to rides in its query, bound by the state's MAC.
 */
export function callbackUrl(event: HttpEvent, redirect: string, publicApiUrl = ''): string {
  if (publicApiUrl) {
    const url = new URL(publicCallbackUrl(publicApiUrl));
    url.searchParams.set('redirect', redirect);
    return url.href;
  }
  const host = event.headers?.host ?? event.requestContext?.domainName ?? 'localhost';
  const forwarded = event.headers?.['x-forwarded-proto'];
  const loopback = LOOPBACK_HOST.test(host);
  const scheme = forwarded === 'http' || forwarded === 'https' ? forwarded : loopback ? 'http' : 'https';
  const path = (event.rawPath ?? '/wechat/oauth/authorize').replace(/\/(authorize|callback)$/, '/callback');
  const url = new URL(`${scheme}://${host}${path}`);
  url.searchParams.set('redirect', redirect);
  return url.href;
}

/** The callback under PUBLIC_API_URL (no query): what WeChat's redirect_uri names when that setting is given. */
export function publicCallbackUrl(publicApiUrl: string): string {
  return `${publicApiUrl}/wechat/oauth/callback`;
}

/**
 * `GET /wechat/oauth/authorize?redirect=&scope=` (snsapi_base by default, snsapi_userinfo, or `auto`: silent,
 * then snsapi_userinfo only for an official-account openid linked to nobody) → the 302 to WeChat's authorize page:
 * `{WECHAT_OPEN_BASE}/connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state#wechat_redirect`
 * (parameters in WeChat's order). Throws FeatureDisabledError (404), BadRequestError REDIRECT_NOT_ALLOWED or
 * VALIDATION_ERROR (bad scope) (400).
 */
export function startOAuth(config: Config, event: HttpEvent, now = new Date()): HttpResult {
  const h5 = h5Config(config, false);
  const redirect = allowedRedirect(query(event, 'redirect') ?? '', h5.h5Origins);
  const scope = (query(event, 'scope') ?? 'snsapi_base') as SignInScope;
  if (!SIGN_IN_SCOPES.includes(scope)) {
    throw new BadRequestError(
      'scope 只能是 snsapi_base、snsapi_userinfo 或 auto',
      'VALIDATION_ERROR',
      'scope',
    );
  }
  return toAuthorizePage(h5, event, redirect, scope, now);
}

/**
 * The 302 to WeChat's authorize page for `scope` (`auto` asks WeChat for snsapi_base) with a fresh signed state
 * and its binding cookie; the callback URL keeps the folder of `event`'s path (authorize, or the callback itself
 * when `auto` asks again for snsapi_userinfo).
 */
function toAuthorizePage(
  h5: Config,
  event: HttpEvent,
  redirect: string,
  scope: SignInScope,
  now: Date,
): HttpResult {
  const state = signState(keyOf(h5), scope, redirect, Math.floor(now.getTime() / 1000));
  const params = [
    ['appid', h5.mpAppId],
    ['redirect_uri', callbackUrl(event, redirect, h5.publicApiUrl)],
    ['response_type', 'code'],
    ['scope', wechatScope(scope)],
    ['state', state],
  ];
  const search = params.map(([name, value]) => `${name}=${encodeURIComponent(value as string)}`).join('&');
  return found(`${h5.openBase}/connect/oauth2/authorize?${search}#wechat_redirect`, [
    bindingCookie(event, stateNonce(state), h5.publicApiUrl),
  ]);
}

/** WeChat's codes: letters, digits (32 in practice); anything else never reaches WeChat. */
const CODE = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * `GET /wechat/oauth/callback?redirect=&code=&state=` (WeChat appends code and state to our redirect_uri):
 * checks the state against the redirect (signature, expiry) and the redirect against H5_ORIGINS, then
 * exchanges the code for the official-account openid (and unionid); for `auto` (silent first), an openid linked
 * to nobody yet answers a second 302 to WeChat's authorize page for snsapi_userinfo (fresh state and cookie)
 * instead of making a user without a unionid, and a linked one signs in; for snsapi_userinfo reads the user info
 * (nickname and avatar become defaults where the user has none), finds or creates the one user of that
 * person (userForIdentity) and 302s to `<redirect>#token=<JWT>` with an H5 session (`ch: 'h5'`). The state
 * must come back to the browser that started it (the binding cookie set by authorize). No code
 * (the user refused) → 302 `<redirect>#error=access_denied`. Throws FeatureDisabledError (404),
 * BadRequestError INVALID_STATE / STATE_EXPIRED / REDIRECT_NOT_ALLOWED / INVALID_CODE (400), and what the
 * WeChat client throws (429/502/503).
 */
export async function finishOAuth(config: Config, event: HttpEvent, now = new Date()): Promise<HttpResult> {
  const h5 = h5Config(config, true);
  const redirect = allowedRedirect(query(event, 'redirect') ?? '', h5.h5Origins);
  const scope = verifyState(
    keyOf(h5),
    query(event, 'state') ?? '',
    redirect,
    Math.floor(now.getTime() / 1000),
  );
  const nonce = Buffer.from(stateNonce(query(event, 'state') ?? ''));
  const bound = Buffer.from(boundNonce(event));
  if (bound.length !== nonce.length || !timingSafeEqual(bound, nonce)) {
    throw new BadRequestError(
      '登录请求无效，请在同一浏览器中重新进入页面',
      'INVALID_STATE',
      'state not bound to this browser (no or another binding cookie)',
    );
  }
  const code = query(event, 'code');
  if (!code) return found(`${redirect}#error=access_denied`);
  if (!CODE.test(code))
    throw new BadRequestError('授权 code 无效或已使用，请重新进入页面', 'INVALID_CODE', 'malformed code');
  const identity = await exchangeWebCode(h5, code);
  let known: UserRecord | undefined;
  if (scope === 'auto' && !identity.unionid) {
    // Silent first: a known official-account openid signs in; an unknown one is asked for snsapi_userinfo,
    // whose unionid finds the person's mini-program account instead of making a second one.
    known = await userForMpOpenid(h5, identity.openid);
    if (!known) return toAuthorizePage(h5, event, redirect, 'snsapi_userinfo', now);
  }
  const info = scope === 'snsapi_userinfo' ? await webUserInfo(h5, identity) : undefined;
  const unionid = identity.unionid ?? info?.unionid;
  let user =
    known ??
    (await userForIdentity(
      h5,
      { channel: 'h5', openid: identity.openid, ...(unionid ? { unionid } : {}) },
      now,
    ));
  if (info) user = await applyProfileDefaults(h5, user, info, now);
  const token = await issueSessionToken(user.id, h5, now, user.sessionVersion ?? 0, 'h5');
  logger.info('h5 sign-in', { userId: user.id, scope });
  return found(`${redirect}#token=${token}`);
}
