import * as v from 'valibot';
import type { Session } from './auth';
import { fetchPhoneNumber } from './clients/wechat-api';
import type { Config } from './config';
import { UnauthorizedError } from './errors';
import * as users from './repositories/user-repository';
import { tokenBroker, withAccessToken } from './tokens';
import { getCurrentUser, type PublicUser, toPublicUser } from './users';

/** `POST /wechat/phone` body: the code of `<button open-type="getPhoneNumber">` (single use, 5 minutes). */
export const PhoneBody = v.object({
  code: v.pipe(
    v.string('请提供手机号授权 code'),
    v.minLength(1, '请提供手机号授权 code'),
    v.maxLength(128, '手机号授权 code 格式不正确'),
    v.regex(/^[A-Za-z0-9_-]+$/, '手机号授权 code 格式不正确'),
  ),
});

/**
 * `POST /wechat/phone`: exchanges a getPhoneNumber code for the caller's phone number (getuserphonenumber with
 * the mini-program's shared access_token and the caller's openid) and binds it to the user in one conditional
 * UpdateItem on the session generation; returns the user's own view, now with phoneNumber and countryCode.
 * The number is personal data: never logged, never in a token, shown only to its owner. Throws
 * UnauthorizedError (session not live), BadRequestError INVALID_CODE (40029), TooManyRequestsError (45011),
 * ServiceUnavailableError (-1, timeout), UpstreamError (anything else; a token refused twice).
 */
export async function bindPhone(config: Config, session: Session, code: string): Promise<PublicUser> {
  const user = await getCurrentUser(config, session);
  const app = { appId: config.appId, secret: config.wechatSecret, apiBase: config.apiBase };
  const phone = await withAccessToken(tokenBroker(config.usersTable), app, (accessToken) =>
    fetchPhoneNumber(config.apiBase, accessToken, code, user.openid),
  );
  const updated = await users.setPhone(
    config.usersTable,
    session.userId,
    { phoneNumber: phone.purePhoneNumber, countryCode: phone.countryCode },
    new Date().toISOString(),
    session.sessionVersion,
  );
  if (!updated) throw new UnauthorizedError('登录已失效，请重新登录', 'USER_NOT_FOUND');
  return toPublicUser(updated);
}
