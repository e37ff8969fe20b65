import * as v from 'valibot';
import type { PaymentProvider, PayParams } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  ServiceUnavailableError,
  UnauthorizedError,
} from '#lib/errors';
import { logger } from '#lib/logger';
import { findPlan } from '#lib/plans';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import * as users from '#lib/repositories/user-repository';
import { OUT_TRADE_NO } from './out-trade-no';
import { continuesOrder, newOrder, type PublicOrder, toPublicOrder } from './rules';

export const CreatePaymentBody = v.union(
  [
    // Other fields (a client-sent amount, currency, openid…) are ignored: prices come from the catalog.
    v.object({ planId: v.pipe(v.string(), v.minLength(1), v.maxLength(32)) }),
    v.object({ outTradeNo: v.pipe(v.string(), v.regex(OUT_TRADE_NO)) }),
  ],
  '请提供 planId（新订单）或 outTradeNo（继续支付）其中之一',
);

/** What `POST /wechat/pay` answers: the order and exactly what `wx.requestPayment` takes. */
export type PaymentStart = { order: PublicOrder; payParams: PayParams };

/**
 * Requests (or reuses) the prepay_id of a PENDING order and signs the `wx.requestPayment` parameters.
 * Throws ConflictError when the order is PAID, CLOSED, expired or of another pay version.
 */
async function payPendingOrder(
  config: Config,
  provider: PaymentProvider,
  order: OrderRecord,
  now: Date,
): Promise<PaymentStart> {
  if (order.status === 'PAID') throw new ConflictError('订单已支付', 'ORDER_PAID');
  if (order.status !== 'PENDING') throw new ConflictError('订单已关闭，请重新下单', 'ORDER_CLOSED');
  if (new Date(order.timeExpire) <= now) throw new ConflictError('订单已过期，请重新下单', 'ORDER_EXPIRED');
  if (order.payVersion !== provider.version) {
    throw new ConflictError('支付方式已变更，请重新下单', 'ORDER_PAY_VERSION_CHANGED');
  }
  let prepayId = order.prepayId;
  if (!prepayId) {
    // Re-requests carry exactly the stored parameters, so WeChat treats them as the same order.
    prepayId = await provider.prepay({
      outTradeNo: order.outTradeNo,
      description: order.description,
      totalFee: order.totalFee,
      openid: order.openid,
      clientIp: order.clientIp,
      timeExpire: new Date(order.timeExpire),
    });
    const saved = await orders.savePrepayId(
      config.ordersTable,
      order.outTradeNo,
      prepayId,
      now.toISOString(),
    );
    if (!saved) {
      const current = await orders.getOrder(config.ordersTable, order.outTradeNo);
      if (current?.status === 'PAID') throw new ConflictError('订单已支付', 'ORDER_PAID');
      throw new ConflictError('订单状态已变化，请刷新', 'ORDER_CHANGED');
    }
    order = { ...order, prepayId, prepayAt: now.toISOString() };
  }
  return { order: toPublicOrder(order), payParams: provider.payParams(prepayId) };
}

/**
 * `POST /wechat/pay`: `{planId}` continues the caller's open PENDING order for that plan, or creates one
 * at the catalog price (integer fen), and requests a prepay_id; `{outTradeNo}` pays the caller's PENDING
 * order again (reusing its live prepay_id). Throws BadRequestError (unknown plan), NotFoundError (not the
 * caller's order), ConflictError (PAID / CLOSED / expired), UpstreamError / ServiceUnavailableError (WeChat).
 */
export async function createPayment(
  config: Config,
  provider: PaymentProvider,
  userId: string,
  body: v.InferOutput<typeof CreatePaymentBody>,
  clientIp: string,
  now = new Date(),
): Promise<PaymentStart> {
  if ('outTradeNo' in body) {
    const order = await orders.getOrder(config.ordersTable, body.outTradeNo);
    if (!order || order.userId !== userId) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
    return payPendingOrder(config, provider, order, now);
  }
  const plan = findPlan(body.planId);
  if (!plan) throw new BadRequestError('会员套餐不存在', 'UNKNOWN_PLAN');
  const user = await users.getUser(config.usersTable, userId);
  if (!user) throw new UnauthorizedError('用户不存在，请重新登录', 'USER_NOT_FOUND');

  const { orders: recent } = await orders.listOrdersByUser(config.ordersTable, userId, 10);
  const open = recent.find((order) => continuesOrder(order, plan.id, provider.version, now));
  if (open) return payPendingOrder(config, provider, open, now);

  for (let attempt = 0; attempt < 3; attempt++) {
    const order = newOrder({
      userId,
      openid: user.openid,
      plan,
      payVersion: provider.version,
      clientIp,
      now,
    });
    if (await orders.createOrder(config.ordersTable, order))
      return payPendingOrder(config, provider, order, now);
    logger.warn('out_trade_no collision, generating another', { outTradeNo: order.outTradeNo });
  }
  throw new ServiceUnavailableError('下单失败，请重试', 'ORDER_ID_EXHAUSTED');
}
