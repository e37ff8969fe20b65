import { loadConfig } from '#lib/config';
import { httpHandler } from '#lib/http';
import { finishOAuth } from '#lib/oauth';

/** `GET /wechat/oauth/callback?redirect=&code=&state=` (from WeChat) → 302 to `<redirect>#token=<JWT>`. */
export const handler = httpHandler(async (event) => finishOAuth(await loadConfig(), event));
