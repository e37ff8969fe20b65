import * as v from 'valibot';
import { liveUser, type Session } from '#lib/auth';
import type { OrderQueryResult } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import { BadRequestError, NotFoundError } from '#lib/errors';
import { logger } from '#lib/logger';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import * as users from '#lib/repositories/user-repository';
import { OUT_TRADE_NO } from '#lib/wechat-pay/fields';
import { type Providers, type PublicOrder, providerFor, toPublicOrder } from './rules';
import { settleReport } from './settle';

/** A PENDING order is queried at WeChat at most once per this many seconds, whoever views it. */
export const QUERY_COOLDOWN_SECONDS = 5;

/**
 * `GET /wechat/orders/{outTradeNo}`: the caller's order; a PENDING one is first checked with WeChat's order
 * query (at most once per QUERY_COOLDOWN_SECONDS per order): a SUCCESS there goes through the same
 * exactly-once settle as a notify, a CLOSED one closes it here. Throws UnauthorizedError (session not
 * live), NotFoundError for someone else's order. A failing order query or settle leaves the order PENDING
 * (logged, not thrown).
 */
export async function getOrderForUser(
  config: Config,
  providers: Providers,
  session: Session,
  outTradeNo: string,
): Promise<PublicOrder> {
  const order = await ownOrder(config, session, outTradeNo);
  const provider = providerFor(order, providers);
  if (order.status !== 'PENDING' || !provider) return toPublicOrder(order);
  // One WeChat query per order per cooldown, whoever is looking: the merchant's rate limit is shared.
  const now = new Date();
  if (!(await orders.claimOrderQuery(config.ordersTable, outTradeNo, now, QUERY_COOLDOWN_SECONDS))) {
    return toPublicOrder(order);
  }

  let query: OrderQueryResult;
  try {
    query = await provider.queryOrder(outTradeNo, order.appId);
  } catch (error) {
    logger.warn('order query failed; order stays PENDING', { outTradeNo, error: (error as Error).message });
    return toPublicOrder(order);
  }
  if (query.tradeState === 'CLOSED') {
    return toPublicOrder(
      (await orders.markOrderClosed(config.ordersTable, outTradeNo, now.toISOString())) ?? order,
    );
  }
  if (query.tradeState !== 'SUCCESS' || !('report' in query)) return toPublicOrder(order);
  try {
    await settleReport(config, query.report);
  } catch (error) {
    // Money-safe (nothing was credited); the notify, the reconciler or the next look settles it.
    logger.error('settling from the order query failed', { outTradeNo, reason: (error as Error).message });
  }
  const current = await orders.getOrder(config.ordersTable, outTradeNo);
  return toPublicOrder(current ?? order);
}

/**
 * The caller's order and the liveness of the caller's session in one request (order and user read
 * together). Throws UnauthorizedError (user gone or signed out), NotFoundError (absent or someone else's).
 */
export async function ownOrder(config: Config, session: Session, outTradeNo: string): Promise<OrderRecord> {
  // A number WeChat would refuse names no order of anyone's: 404 without reading anything.
  if (!OUT_TRADE_NO.test(outTradeNo)) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  const { order, user } = await orders.getOrderAndUser(config, outTradeNo, session.userId);
  liveUser(user, session);
  if (!order || order.userId !== session.userId) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  return order;
}

const CURSOR = v.strictObject({
  outTradeNo: v.pipe(v.string(), v.regex(OUT_TRADE_NO)),
  userId: v.string(),
  createdAt: v.pipe(v.string(), v.isoTimestamp()),
});

/** Decodes an opaque page cursor; it must belong to the caller. Throws BadRequestError otherwise. */
export function decodeCursor(cursor: string | undefined, userId: string): Record<string, string> | undefined {
  if (!cursor) return undefined;
  try {
    const key = v.parse(CURSOR, JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (key.userId !== userId) throw new Error('foreign cursor');
    return key;
  } catch {
    throw new BadRequestError('分页参数无效', 'INVALID_CURSOR');
  }
}

/**
 * `GET /wechat/orders`: the caller's orders, newest first, `limit` per page (1–50), with an opaque cursor;
 * the session is checked by reading the user beside the query. Throws BadRequestError for a bad limit or
 * cursor, UnauthorizedError for a session that is not live.
 */
export async function listOrders(
  config: Config,
  session: Session,
  cursor: string | undefined,
  limit = 20,
): Promise<{ orders: PublicOrder[]; nextCursor: string | null }> {
  if (!Number.isInteger(limit) || limit < 1 || limit > 50) {
    throw new BadRequestError('limit 应为 1–50 的整数', 'INVALID_LIMIT');
  }
  const { userId } = session;
  const startKey = decodeCursor(cursor, userId);
  const [user, page] = await Promise.all([
    users.getUser(config.usersTable, userId),
    orders.listOrdersByUser(config.ordersTable, userId, limit, startKey),
  ]);
  liveUser(user, session);
  return {
    orders: page.orders.map(toPublicOrder),
    nextCursor: page.lastKey ? Buffer.from(JSON.stringify(page.lastKey)).toString('base64url') : null,
  };
}
