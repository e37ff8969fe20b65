import { authenticate } from '#lib/auth';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { getCurrentUser, toPublicUser } from '#lib/users';

export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  const session = await authenticate(event, config);
  const user = await getCurrentUser(config, session);
  return ok({ user: toPublicUser(user) }, '查询当前用户信息成功');
});
