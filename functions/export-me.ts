import { exportData } from '#lib/account';
import { authenticate } from '#lib/auth';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';

/** `GET /wechat/me/export`: a copy of everything held about the caller. */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  const session = await authenticate(event, config);
  return ok({ export: await exportData(config, session) }, '导出个人信息成功');
});
