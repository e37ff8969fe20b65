import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { SignInBody, signIn } from '#lib/users';
import { validate } from '#lib/validation';

export const handler = httpHandler(
  async (event) => {
    const { code } = validate(SignInBody, event.body);
    const config = await loadConfig();
    return ok(await signIn(config, code), '登录成功');
  },
  { jsonBody: true, maxBodyBytes: 1024 },
);
