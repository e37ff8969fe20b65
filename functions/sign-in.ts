import { loadConfig } from '../lib/config';
import { httpHandler, ok, parseBody } from '../lib/http';
import { SignInBody, signIn } from '../lib/users';

export const handler = httpHandler(
  async (event) => {
    const { code } = parseBody(SignInBody, event.body);
    const config = await loadConfig();
    return ok(await signIn(config, code), '登录成功');
  },
  { jsonBody: true, maxBodyBytes: 1024 },
);
