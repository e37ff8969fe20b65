import {
  BadRequestError,
  ForbiddenError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UpstreamError,
} from '#lib/errors';
import { withOneRetry } from './retry';
import { wechatJson } from './wechat-json';

export interface WechatAuthConfig {
  appId: string;
  wechatSecret: string;
  apiBase: string;
}

/** What sign-in may keep from code2Session. session_key is deliberately absent: it never leaves this module. */
export interface WechatIdentity {
  openid: string;
  unionid?: string;
}

const ID_PATTERN = /^[A-Za-z0-9_-]{6,64}$/;

async function callOnce(config: WechatAuthConfig, code: string): Promise<WechatIdentity> {
  const url = new URL(`${config.apiBase}/sns/jscode2session`);
  url.search = new URLSearchParams({
    appid: config.appId,
    secret: config.wechatSecret,
    js_code: code,
    grant_type: 'authorization_code',
  }).toString();

  const body = await wechatJson('jscode2session', url);
  const errcode = body.errcode ?? 0;
  switch (errcode) {
    case 0:
      break;
    case 40029:
    case 40163:
      throw new BadRequestError(
        '登录凭证无效或已使用，请重新调用 wx.login',
        'INVALID_CODE',
        `errcode ${errcode}`,
      );
    case 45011:
      throw new TooManyRequestsError('登录过于频繁，请稍后再试', 60, 'WECHAT_RATE_LIMITED', 'errcode 45011');
    case 40226:
      throw new ForbiddenError('该微信账号存在风险，登录被拦截', 'WECHAT_LOGIN_BLOCKED', 'errcode 40226');
    default:
      throw new UpstreamError(undefined, 'WECHAT_ERROR', `errcode ${String(errcode)}`);
  }

  const { openid, unionid } = body;
  if (typeof openid !== 'string' || !ID_PATTERN.test(openid)) {
    throw new UpstreamError(undefined, 'WECHAT_ERROR', 'jscode2session answered without a valid openid');
  }
  if (unionid !== undefined && (typeof unionid !== 'string' || !ID_PATTERN.test(unionid))) {
    throw new UpstreamError(undefined, 'WECHAT_ERROR', 'jscode2session answered an invalid unionid');
  }
  return unionid === undefined ? { openid } : { openid, unionid };
}

/**
 * Exchanges a wx.login code for the user's openid (and unionid when bound); WeChat auth.code2Session.
 * 3 s timeout per attempt (less near the invocation's deadline), one retry on errcode -1, 5xx or timeout
 * when time allows. Throws BadRequestError INVALID_CODE (40029/40163),
 * TooManyRequestsError (45011), ForbiddenError (40226), ServiceUnavailableError (busy/timeout after the retry),
 * UpstreamError (anything else).
 */
export async function code2Session(config: WechatAuthConfig, code: string): Promise<WechatIdentity> {
  return withOneRetry(
    'jscode2session',
    () => callOnce(config, code),
    (reason) => new ServiceUnavailableError(undefined, 'WECHAT_UNAVAILABLE', reason),
  );
}
