import { BadRequestError, ServiceUnavailableError, TooManyRequestsError, UpstreamError } from '#lib/errors';
import { RetryableError, withOneRetry } from './retry';
import { wechatJson } from './wechat-json';

/**
 * The api.weixin.qq.com calls that take an access_token or make one: stable_token, getticket and
 * getuserphonenumber. Tokens, tickets, secrets and phone numbers never reach an error message or a log line
 * from here (errors carry only the errcode).
 */

/** WeChat refused the access_token (40001 invalid / not latest, 42001 expired): the broker re-reads or refreshes. */
export class InvalidAccessTokenError extends Error {
  override readonly name = 'InvalidAccessTokenError';
  constructor(readonly errcode: number) {
    super(`errcode ${errcode}`);
  }
}

const postJson = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** A credential and how long WeChat says it lives, seconds. */
export interface FetchedCredential {
  value: string;
  expiresInSeconds: number;
}

/** `expires_in` as WeChat sends it: a positive integer of seconds (≤ 7200 today). */
function expiresIn(label: string, value: unknown): number {
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds <= 0 || seconds > 86_400) {
    throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label} answered an invalid expires_in`);
  }
  return seconds;
}

const unavailable = (label: string) => (reason: string) =>
  new ServiceUnavailableError(undefined, 'WECHAT_UNAVAILABLE', `${label}: ${reason}`);

/** A non-zero errcode of a credential call: 45009 (daily quota) / 45011 → TooManyRequestsError, else UpstreamError. */
function refuseErrcode(label: string, errcode: unknown): void {
  if (errcode === 0) return;
  if (errcode === 45009 || errcode === 45011) {
    throw new TooManyRequestsError(
      '微信接口调用过于频繁，请稍后再试',
      60,
      'WECHAT_RATE_LIMITED',
      `${label}: errcode ${errcode}`,
    );
  }
  throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label}: errcode ${String(errcode)}`);
}

/**
 * getStableAccessToken in normal mode (`POST {apiBase}/cgi-bin/stable_token`, `force_refresh: false`, never
 * true): the AppID's access_token and its remaining lifetime. One retry on -1, 5xx or timeout. Throws
 * TooManyRequestsError (45009 daily quota, 45011), ServiceUnavailableError (busy after the retry),
 * UpstreamError (40013, 40125, 40164 IP not whitelisted, anything else: a configuration problem).
 */
export function fetchStableToken(apiBase: string, appId: string, secret: string): Promise<FetchedCredential> {
  const label = 'stable_token';
  return withOneRetry(
    label,
    async () => {
      const body = await wechatJson(
        label,
        new URL(`${apiBase}/cgi-bin/stable_token`),
        postJson({ grant_type: 'client_credential', appid: appId, secret, force_refresh: false }),
      );
      const errcode = body.errcode ?? 0;
      refuseErrcode(label, errcode);
      if (
        typeof body.access_token !== 'string' ||
        body.access_token.length === 0 ||
        body.access_token.length > 2048
      ) {
        throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label} answered without an access_token`);
      }
      return { value: body.access_token, expiresInSeconds: expiresIn(label, body.expires_in) };
    },
    unavailable(label),
  );
}

/**
 * The official account's jsapi_ticket (`GET {apiBase}/cgi-bin/ticket/getticket?access_token=…&type=jsapi`),
 * JS-SDK 附录1. One retry on -1, 5xx or timeout. Throws InvalidAccessTokenError (40001/42001),
 * TooManyRequestsError (45009/45011), ServiceUnavailableError, UpstreamError.
 */
export function fetchJsapiTicket(apiBase: string, accessToken: string): Promise<FetchedCredential> {
  const label = 'getticket';
  const url = new URL(`${apiBase}/cgi-bin/ticket/getticket`);
  url.search = new URLSearchParams({ access_token: accessToken, type: 'jsapi' }).toString();
  return withOneRetry(
    label,
    async () => {
      const body = await wechatJson(label, url);
      const errcode = body.errcode ?? 0;
      if (errcode === 40001 || errcode === 42001) throw new InvalidAccessTokenError(errcode as number);
      refuseErrcode(label, errcode);
      if (typeof body.ticket !== 'string' || body.ticket.length === 0 || body.ticket.length > 1024) {
        throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label} answered without a ticket`);
      }
      return { value: body.ticket, expiresInSeconds: expiresIn(label, body.expires_in) };
    },
    unavailable(label),
  );
}

/** A phone number as getuserphonenumber gives it. */
export interface PhoneInfo {
  /** The number without country code (`purePhoneNumber`), digits. */
  purePhoneNumber: string;
  /** The country code, digits (WeChat sends a string or a number). */
  countryCode: string;
}

/**
 * Exchanges a getPhoneNumber code for the user's phone number (`POST
 * {apiBase}/wxa/business/getuserphonenumber?access_token=…`, `{code, openid?}`; WeChat checks that the code
 * belongs to that openid). Not retried: the code is single-use, and a retry after a lost answer could only
 * report it used. Throws BadRequestError INVALID_CODE (40029: expired, reused, or another user's or app's
 * code), InvalidAccessTokenError (40001/42001), TooManyRequestsError WECHAT_RATE_LIMITED (45011),
 * ServiceUnavailableError (-1, 5xx, timeout), UpstreamError (anything else).
 */
export async function fetchPhoneNumber(
  apiBase: string,
  accessToken: string,
  code: string,
  openid: string | undefined,
): Promise<PhoneInfo> {
  const label = 'getuserphonenumber';
  const url = new URL(`${apiBase}/wxa/business/getuserphonenumber`);
  url.search = new URLSearchParams({ access_token: accessToken }).toString();
  let body: Record<string, unknown>;
  try {
    // openid is optional at WeChat: a user known only from H5 (no mini-program openid) sends the code alone.
    body = await wechatJson(label, url, postJson(openid ? { code, openid } : { code }));
  } catch (error) {
    if (error instanceof RetryableError) throw unavailable(label)(error.message);
    throw error;
  }
  const errcode = body.errcode ?? 0;
  switch (errcode) {
    case 0:
      break;
    case 40029:
      throw new BadRequestError(
        '手机号授权凭证无效或已使用，请重新授权',
        'INVALID_CODE',
        `${label}: errcode 40029`,
      );
    case 40001:
    case 42001:
      throw new InvalidAccessTokenError(errcode as number);
    case 45011:
      throw new TooManyRequestsError(
        '获取手机号过于频繁，请稍后再试',
        60,
        'WECHAT_RATE_LIMITED',
        `${label}: errcode 45011`,
      );
    default:
      throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label}: errcode ${String(errcode)}`);
  }
  const info = body.phone_info as Record<string, unknown> | undefined;
  const purePhoneNumber = info?.purePhoneNumber;
  const countryCode = typeof info?.countryCode === 'number' ? String(info.countryCode) : info?.countryCode;
  if (
    typeof purePhoneNumber !== 'string' ||
    !/^\d{4,20}$/.test(purePhoneNumber) ||
    typeof countryCode !== 'string' ||
    !/^\d{1,4}$/.test(countryCode)
  ) {
    throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label} answered without a valid phone_info`);
  }
  return { purePhoneNumber, countryCode };
}
