import { authenticate } from '#lib/auth';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { bindPhone, PhoneBody } from '#lib/phone';
import { validate } from '#lib/validation';

/** `POST /wechat/phone {code}`: binds the caller's phone number (getPhoneNumber code) → `{user}`. */
export const handler = httpHandler(
  async (event) => {
    const config = await loadConfig();
    const session = await authenticate(event, config);
    const { code } = validate(PhoneBody, event.body);
    return ok({ user: await bindPhone(config, session, code) }, '绑定手机号成功');
  },
  { jsonBody: true, maxBodyBytes: 1024 },
);
