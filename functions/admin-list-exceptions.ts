import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { listPaymentExceptions } from '#lib/payments/admin';

/** `GET /admin/exceptions?cursor=&limit=`: payment exceptions, newest first. */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  const { cursor, limit } = event.queryStringParameters ?? {};
  return ok(
    await listPaymentExceptions(config, cursor, limit ? Number(limit) : undefined),
    '查询支付异常成功',
  );
});
