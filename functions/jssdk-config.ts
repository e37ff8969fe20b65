import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { jssdkConfig } from '#lib/jssdk';

/** `GET /wechat/jssdk/config?url=<page URL>`: wx.config's appId, timestamp, nonceStr and signature (public). */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  return ok(await jssdkConfig(config, event.queryStringParameters?.url), '获取 JS-SDK 配置成功');
});
