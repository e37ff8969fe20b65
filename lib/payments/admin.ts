import * as v from 'valibot';
import type { Config } from '#lib/config';
import { BadRequestError, NotFoundError } from '#lib/errors';
import type { PaymentException } from '#lib/repositories/exception-repository';
import * as exceptions from '#lib/repositories/exception-repository';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import { OUT_TRADE_NO } from '#lib/wechat-pay/fields';

/** Operators' views of orders and payment exceptions (the /admin routes, IAM-authorized on AWS). */

/** `POST /admin/reconcile` body: `all` checks every PENDING order now, whatever its back-off step. */
export const ReconcileBody = v.object({ all: v.optional(v.boolean('all 必须是布尔值')) });

/** `GET /admin/orders/{outTradeNo}`: the whole stored order (owner, payVersion, prepay, timestamps). */
export async function getOrderForAdmin(config: Config, outTradeNo: string): Promise<OrderRecord> {
  if (!OUT_TRADE_NO.test(outTradeNo)) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  const order = await orders.getOrder(config.ordersTable, outTradeNo);
  if (!order) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  return order;
}

const EXCEPTION_CURSOR = v.strictObject({
  outTradeNo: v.pipe(v.string(), v.startsWith('EXCEPTION#')),
  exceptionShard: v.literal('EXCEPTION'),
  at: v.pipe(v.string(), v.isoTimestamp()),
});

/**
 * `GET /admin/exceptions?cursor=&limit=`: payment exceptions, newest first, `limit` per page (1–100), with
 * an opaque cursor. Throws BadRequestError for a bad limit or cursor.
 */
export async function listPaymentExceptions(
  config: Config,
  cursor: string | undefined,
  limit = 50,
): Promise<{ exceptions: PaymentException[]; nextCursor: string | null }> {
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new BadRequestError('limit 应为 1–100 的整数', 'INVALID_LIMIT');
  }
  let startKey: Record<string, unknown> | undefined;
  if (cursor) {
    try {
      startKey = v.parse(EXCEPTION_CURSOR, JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    } catch {
      throw new BadRequestError('分页参数无效', 'INVALID_CURSOR');
    }
  }
  const page = await exceptions.listExceptions(config.ordersTable, limit, startKey);
  return {
    exceptions: page.exceptions,
    nextCursor: page.lastKey ? Buffer.from(JSON.stringify(page.lastKey)).toString('base64url') : null,
  };
}
