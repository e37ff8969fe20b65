import { previousSessionUser } from '#lib/auth';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { SignInBody, signIn } from '#lib/users';
import { validate } from '#lib/validation';

export const handler = httpHandler(
  async (event) => {
    const { code } = validate(SignInBody, event.body);
    const config = await loadConfig();
    // The previous session token, when the client sends it (expired is fine): a hint to read its user at once.
    return ok(await signIn(config, code, previousSessionUser(event.headers)), '登录成功');
  },
  { jsonBody: true, maxBodyBytes: 1024 },
);
