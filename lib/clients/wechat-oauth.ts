import { BadRequestError, ServiceUnavailableError, TooManyRequestsError, UpstreamError } from '#lib/errors';
import { withOneRetry } from './retry';
import { wechatJson } from './wechat-json';

/**
 * WeChat web OAuth for official-account H5 pages (wechat-protocol.md §8): the code exchange and the user
 * info. The code, the web access_token and the refresh_token never leave this module or reach a log.
 */

export interface WechatOAuthConfig {
  /** The official account's AppID (WECHAT_MP_APPID) and AppSecret (WECHAT_MP_SECRET). */
  mpAppId: string;
  mpSecret: string;
  apiBase: string;
}

/** Who consented: the official-account openid, the unionid when the account is bound to an Open Platform. */
export interface WebIdentity {
  openid: string;
  unionid?: string;
  scope: 'snsapi_base' | 'snsapi_userinfo';
  /** The web access_token, only to call `/sns/userinfo` right after; never stored, never logged. */
  accessToken: string;
}

/** What `/sns/userinfo` adds: profile defaults (sex is WeChat's: 1 male, 2 female, 0 unknown). */
export interface WebUserInfo {
  openid: string;
  unionid?: string;
  nickname?: string;
  headimgurl?: string;
}

const ID_PATTERN = /^[A-Za-z0-9_-]{6,64}$/;

/** One GET of a WeChat JSON endpoint: the body as an object, errcode 0 or absent (mapped otherwise). */
async function getJson(url: URL, label: string): Promise<Record<string, unknown>> {
  const record = await wechatJson(label, url);
  const errcode = record.errcode ?? 0;
  switch (errcode) {
    case 0:
      return record;
    case 40029:
    case 40163:
      throw new BadRequestError(
        '授权 code 无效或已使用，请重新进入页面',
        'INVALID_CODE',
        `${label}: errcode ${errcode}`,
      );
    case 45011:
      throw new TooManyRequestsError(
        '登录过于频繁，请稍后再试',
        60,
        'WECHAT_RATE_LIMITED',
        `${label}: errcode 45011`,
      );
    default:
      throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label}: errcode ${String(errcode)}`);
  }
}

function identityField(
  body: Record<string, unknown>,
  name: 'openid' | 'unionid',
  label: string,
): string | undefined {
  const value = body[name];
  if (value === undefined && name === 'unionid') return undefined;
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label} answered an invalid ${name}`);
  }
  return value;
}

const unavailable = (reason: string) => new ServiceUnavailableError(undefined, 'WECHAT_UNAVAILABLE', reason);

/**
 * Exchanges a web OAuth code for the official-account openid (and unionid when WeChat gives one):
 * `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code` (网页授权 第二步). 3 s per
 * attempt (less near the deadline), one retry on -1 / 5xx / timeout. Throws BadRequestError INVALID_CODE
 * (40029 / 40163: invalid, expired or used), TooManyRequestsError (45011), ServiceUnavailableError, UpstreamError.
 */
export function exchangeWebCode(config: WechatOAuthConfig, code: string): Promise<WebIdentity> {
  const url = new URL(`${config.apiBase}/sns/oauth2/access_token`);
  url.search = new URLSearchParams({
    appid: config.mpAppId,
    secret: config.mpSecret,
    code,
    grant_type: 'authorization_code',
  }).toString();
  return withOneRetry(
    'sns/oauth2/access_token',
    async () => {
      const body = await getJson(url, 'sns/oauth2/access_token');
      const openid = identityField(body, 'openid', 'sns/oauth2/access_token') as string;
      const unionid = identityField(body, 'unionid', 'sns/oauth2/access_token');
      const accessToken = body.access_token;
      if (typeof accessToken !== 'string' || accessToken === '') {
        throw new UpstreamError(
          undefined,
          'WECHAT_ERROR',
          'sns/oauth2/access_token answered no access_token',
        );
      }
      const scope =
        typeof body.scope === 'string' && body.scope.includes('snsapi_userinfo')
          ? 'snsapi_userinfo'
          : 'snsapi_base';
      return { openid, ...(unionid ? { unionid } : {}), scope, accessToken };
    },
    unavailable,
  );
}

/**
 * The consenting user's nickname, avatar and unionid: `GET /sns/userinfo?access_token&openid&lang=zh_CN`
 * (snsapi_userinfo only; 48001 otherwise). Same timeouts and retry as the exchange; throws
 * ServiceUnavailableError, TooManyRequestsError or UpstreamError.
 */
export function webUserInfo(config: WechatOAuthConfig, identity: WebIdentity): Promise<WebUserInfo> {
  const url = new URL(`${config.apiBase}/sns/userinfo`);
  url.search = new URLSearchParams({
    access_token: identity.accessToken,
    openid: identity.openid,
    lang: 'zh_CN',
  }).toString();
  return withOneRetry(
    'sns/userinfo',
    async () => {
      const body = await getJson(url, 'sns/userinfo');
      const openid = identityField(body, 'openid', 'sns/userinfo') as string;
      if (openid !== identity.openid)
        throw new UpstreamError(undefined, 'WECHAT_ERROR', 'sns/userinfo answered another openid');
      const unionid = identityField(body, 'unionid', 'sns/userinfo');
      const text = (name: string) => (typeof body[name] === 'string' ? (body[name] as string) : undefined);
      return {
        openid,
        ...(unionid ? { unionid } : {}),
        ...(text('nickname') ? { nickname: text('nickname') } : {}),
        ...(text('headimgurl') ? { headimgurl: text('headimgurl') } : {}),
      };
    },
    unavailable,
  );
}
