import type { Session } from '#lib/auth';
import type { PaymentProvider } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import { ConflictError } from '#lib/errors';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import { type Providers, type PublicOrder, providerFor, toPublicOrder } from './rules';
import { type ReportOutcome, settleReport } from './settle';
import { ownOrder } from './views';

/** What closing a PENDING order came to: closed here and at WeChat, or paid after all (and settled). */
export type CloseOutcome = { kind: 'closed'; order: OrderRecord } | { kind: 'paid'; outcome: ReportOutcome };

/**
 * Closes a PENDING order at WeChat first (WeChat Pay 关闭订单; v3 confirmed by a query), then marks it CLOSED
 * here; if WeChat says it was paid, the payment goes through the exactly-once settle instead. A notify that
 * settles the order meanwhile wins (the CLOSED write is conditioned on PENDING). Throws UpstreamError /
 * ServiceUnavailableError when WeChat fails (nothing written).
 */
export async function closePendingOrder(
  config: Config,
  provider: PaymentProvider,
  order: OrderRecord,
  now: Date,
): Promise<CloseOutcome> {
  const result = await provider.closeOrder(order.outTradeNo, order.appId);
  if (result.tradeState === 'SUCCESS')
    return { kind: 'paid', outcome: await settleReport(config, result.report) };
  const stored = await orders.markOrderClosed(config.ordersTable, order.outTradeNo, now.toISOString());
  if (stored?.status === 'PAID') return { kind: 'paid', outcome: 'duplicate' };
  return { kind: 'closed', order: stored ?? order };
}

/**
 * `POST /wechat/orders/{outTradeNo}/close`: the owner closes an unpaid order (WeChat first). Answers the
 * order (CLOSED; an already CLOSED order answers as it is). Throws UnauthorizedError, NotFoundError (not the caller's order),
 * ConflictError ORDER_PAID when the order is or turns out to be paid (then settled), ConflictError
 * ORDER_PAY_VERSION_CHANGED for an order of the other pay version, UpstreamError / ServiceUnavailableError.
 */
export async function closeOrderForUser(
  config: Config,
  providers: Providers,
  session: Session,
  outTradeNo: string,
  now = new Date(),
): Promise<PublicOrder> {
  const order = await ownOrder(config, session, outTradeNo);
  if (order.status === 'PAID') throw new ConflictError('订单已支付', 'ORDER_PAID');
  if (order.status !== 'PENDING') return toPublicOrder(order);
  const provider = providerFor(order, providers);
  if (!provider) throw new ConflictError('支付方式已变更，请稍后再试', 'ORDER_PAY_VERSION_CHANGED');
  const closed = await closePendingOrder(config, provider, order, now);
  if (closed.kind === 'paid') throw new ConflictError('订单已支付', 'ORDER_PAID');
  return toPublicOrder(closed.order);
}
