import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { BadRequestError } from './errors';

/**
 * The pure parts of H5 web OAuth (wechat-protocol.md §8): which page a sign-in may return to, and the signed
 * `state` that carries the scope and the page's binding through WeChat's authorize page. No I/O, no config.
 */

/** The two web OAuth scopes: silent (openid only) or with the user's consent (nickname, avatar, unionid). */
export type OAuthScope = 'snsapi_base' | 'snsapi_userinfo';
/**
 * What a page may ask for: a WeChat scope, or `auto`: silent first (snsapi_base), and snsapi_userinfo only
 * when that openid belongs to nobody yet, so a first H5 sign-in gets the unionid that finds the person's
 * mini-program account (snsapi_base never returns one).
 */
export type SignInScope = OAuthScope | 'auto';
export const SIGN_IN_SCOPES: readonly SignInScope[] = ['snsapi_base', 'snsapi_userinfo', 'auto'];

/** The scope WeChat's authorize page is asked for: `auto` starts silent. */
export function wechatScope(scope: SignInScope): OAuthScope {
  return scope === 'auto' ? 'snsapi_base' : scope;
}

/** How long a state (and so a started sign-in) is accepted, seconds. */
export const STATE_TTL_SECONDS = 10 * 60;
/** A redirect longer than this is refused, characters. */
const MAX_REDIRECT_CHARS = 1024;

const redirectRefused = (detail: string) =>
  new BadRequestError('跳转地址不在允许的范围内', 'REDIRECT_NOT_ALLOWED', detail);

/**
 * The H5 page a sign-in may return to: an absolute http(s) URL whose exact origin (scheme, host, port) is one
 * of `origins` (H5_ORIGINS, already normalised), with no user info, no backslash, no control or space
 * characters; returned as the parsed URL's href without its fragment (the token goes there). Relative and
 * protocol-relative URLs (`//evil`), `javascript:`, encoded schemes and `https://good@evil` never parse
 * to an allowed origin. Throws BadRequestError REDIRECT_NOT_ALLOWED (400).
 */
export function allowedRedirect(redirect: string, origins: readonly string[]): string {
  if (redirect.length === 0 || redirect.length > MAX_REDIRECT_CHARS) throw redirectRefused('length');
  // WHATWG URL parsing turns `\` into `/` and drops tabs and newlines: refuse them before parsing.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
  if (/[\\\s\u0000-\u001f\u007f]/.test(redirect)) throw redirectRefused('backslash, space or control');
  if (!/^https?:\/\/[^/]/i.test(redirect)) throw redirectRefused('not an absolute http(s) URL');
  let url: URL;
  try {
    url = new URL(redirect);
  } catch {
    throw redirectRefused('unparsable');
  }
  if (url.username || url.password) throw redirectRefused('user info');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw redirectRefused('scheme');
  if (!origins.includes(url.origin)) throw redirectRefused('origin not in H5_ORIGINS');
  url.hash = '';
  return url.href;
}

/** The state key: HKDF-SHA256 of the session secret (JWT_SECRET) for this one purpose. */
export function stateKey(jwtSecret: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', jwtSecret, new Uint8Array(), 'wechat-oauth-state v1', 32));
}

const SCOPE_CHAR: Record<SignInScope, string> = { snsapi_base: 'b', snsapi_userinfo: 'u', auto: 'a' };
const CHAR_SCOPE: Record<string, SignInScope> = { b: 'snsapi_base', u: 'snsapi_userinfo', a: 'auto' };
/** `b|u|a` scope, 10-digit expiry (Unix seconds), 16 hex nonce, 32 hex MAC: 59 characters of [0-9a-z]. */
const STATE = /^([bua])(\d{10})([0-9a-f]{16})([0-9a-f]{32})$/;

function mac(key: Buffer, body: string, redirect: string): string {
  return createHmac('sha256', key).update(`${body}\n${redirect}`).digest('hex').slice(0, 32);
}

/**
 * A signed OAuth `state` (WeChat allows `[a-zA-Z0-9]`, at most 128 bytes; this is 59): scope, expiry (now +
 * 10 minutes) and a nonce, with an HMAC-SHA256 (128 bits kept) over them and the redirect. The redirect itself
 * does not fit, so it travels in our callback URL's query and the MAC binds it. `nowSeconds`: Unix seconds.
 */
export function signState(
  key: Buffer,
  scope: SignInScope,
  redirect: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): string {
  const body = `${SCOPE_CHAR[scope]}${String(nowSeconds + STATE_TTL_SECONDS).padStart(10, '0')}${randomBytes(8).toString('hex')}`;
  return `${body}${mac(key, body, redirect)}`;
}

/** The state's nonce (16 hex), which the authorize answer also sets as the browser-binding cookie; '' if malformed. */
export function stateNonce(state: string): string {
  return STATE.exec(state)?.[3] ?? '';
}

/**
 * Checks a state against the redirect it came back with: its shape, its MAC (constant time) and its expiry.
 * Returns its scope. Throws BadRequestError INVALID_STATE (400) for anything tampered, foreign or expired.
 */
export function verifyState(
  key: Buffer,
  state: string,
  redirect: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): SignInScope {
  const match = STATE.exec(state);
  if (!match) throw new BadRequestError('登录请求无效，请重新进入页面', 'INVALID_STATE', 'malformed state');
  const [, scope, expiry, nonce, signature] = match as unknown as [string, string, string, string, string];
  const expected = Buffer.from(mac(key, `${scope}${expiry}${nonce}`, redirect));
  if (!timingSafeEqual(expected, Buffer.from(signature))) {
    throw new BadRequestError('登录请求无效，请重新进入页面', 'INVALID_STATE', 'state signature mismatch');
  }
  if (Number(expiry) < nowSeconds) {
    throw new BadRequestError('登录请求已过期，请重新进入页面', 'STATE_EXPIRED', 'state expired');
  }
  return CHAR_SCOPE[scope] as SignInScope;
}
