import { authenticate } from '#lib/auth';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { listOrders } from '#lib/payments/views';

export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  const session = await authenticate(event, config);
  const { cursor, limit } = event.queryStringParameters ?? {};
  return ok(await listOrders(config, session, cursor, limit ? Number(limit) : undefined), '查询订单成功');
});
