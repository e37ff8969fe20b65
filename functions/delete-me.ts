import { deleteOwnAccount } from '#lib/account';
import { authenticate } from '#lib/auth';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';

/** `DELETE /wechat/me`: the caller cancels the account (idempotent). */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  const session = await authenticate(event, config);
  await deleteOwnAccount(config, paymentProviders(config), session);
  return ok({ deleted: true }, '账号已注销');
});
