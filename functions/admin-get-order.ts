import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { getOrderForAdmin } from '#lib/payments/admin';

/** `GET /admin/orders/{outTradeNo}`: the whole stored order. */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  const order = await getOrderForAdmin(config, event.pathParameters?.outTradeNo ?? '');
  return ok({ order }, '查询订单成功');
});
