import { authenticate } from '#lib/auth';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { closeOrderForUser } from '#lib/payments/close';

export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  const session = await authenticate(event, config);
  const outTradeNo = event.pathParameters?.outTradeNo ?? '';
  const order = await closeOrderForUser(config, paymentProviders(config), session, outTradeNo);
  return ok({ order }, '订单已关闭');
});
