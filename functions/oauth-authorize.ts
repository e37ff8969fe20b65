import { loadConfig } from '#lib/config';
import { httpHandler } from '#lib/http';
import { startOAuth } from '#lib/oauth';

/** `GET /wechat/oauth/authorize?redirect=<H5 page>&scope=snsapi_base|snsapi_userinfo` → 302 to WeChat. */
export const handler = httpHandler(async (event) => startOAuth(await loadConfig(), event));
