import { getUserForAdmin } from '#lib/account';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';

/** `GET /admin/users/{id}`: a user for support (profile, membership, orders). */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  return ok({ ...(await getUserForAdmin(config, event.pathParameters?.id ?? '')) }, '查询用户成功');
});
