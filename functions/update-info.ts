import { authenticate } from '#lib/auth';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { parseProfileUpdate, updateUserProfile } from '#lib/users';

export const handler = httpHandler(
  async (event) => {
    const config = await loadConfig();
    const session = await authenticate(event, config);
    const changes = parseProfileUpdate(event.body);
    return ok({ user: await updateUserProfile(config, session, changes) }, '更新用户信息成功');
  },
  { jsonBody: true, maxBodyBytes: 16 * 1024 },
);
