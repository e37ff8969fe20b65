import { deleteAccountForAdmin } from '#lib/account';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';

/** `DELETE /admin/users/{id}`: an operator cancels an account (support request; idempotent). */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  await deleteAccountForAdmin(config, paymentProviders(config), event.pathParameters?.id ?? '');
  return ok({ deleted: true }, '账号已注销');
});
