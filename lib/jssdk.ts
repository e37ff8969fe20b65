import { randomBytes } from 'node:crypto';
import type { Config } from './config';
import { BadRequestError, FeatureDisabledError, ValidationError } from './errors';
import { jsapiTicket, tokenBroker } from './tokens';
import { isPageUrlAllowed, jssdkSignature } from './wechat/jssdk';

/** What `wx.config` takes besides jsApiList (timestamp in Unix seconds). */
export type JssdkConfig = {
  appId: string;
  timestamp: number;
  nonceStr: string;
  signature: string;
};

/**
 * `GET /wechat/jssdk/config?url=`: the official account's wx.config signature for an H5 page (JS-SDK 附录1), with
 * the shared jsapi_ticket (through the token broker). Public: the page may configure the JS-SDK before anyone
 * signs in, and the answer reveals nothing but a signature for one of our own pages. Throws FeatureDisabledError
 * (404: no WECHAT_MP_APPID, WECHAT_MP_SECRET or H5_ORIGINS), ValidationError (no url), BadRequestError
 * URL_NOT_ALLOWED (not a page under H5_ORIGINS), and the broker's WeChat errors.
 */
export async function jssdkConfig(
  config: Config,
  url: string | undefined,
  now = new Date(),
): Promise<JssdkConfig> {
  if (!config.mpAppId || !config.mpSecret || config.h5Origins.length === 0) {
    throw new FeatureDisabledError(
      '公众号 JS-SDK 未开启',
      'WECHAT_MP_APPID, WECHAT_MP_SECRET or H5_ORIGINS is not set',
    );
  }
  if (url === undefined || url === '') {
    throw new ValidationError('缺少参数 url', [{ field: 'url', code: 'REQUIRED' }]);
  }
  if (!isPageUrlAllowed(url, config.h5Origins)) {
    throw new BadRequestError('页面地址不在允许的 H5 域名内', 'URL_NOT_ALLOWED');
  }
  const ticket = await jsapiTicket(tokenBroker(config.usersTable), {
    appId: config.mpAppId,
    secret: config.mpSecret,
    apiBase: config.apiBase,
  });
  const nonceStr = randomBytes(12).toString('base64url');
  const timestamp = Math.floor(now.getTime() / 1000);
  const { signature } = jssdkSignature({ jsapiTicket: ticket, nonceStr, timestamp, url });
  return { appId: config.mpAppId, timestamp, nonceStr, signature };
}
