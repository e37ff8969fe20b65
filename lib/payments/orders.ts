import * as v from 'valibot';
import type { Session } from '#lib/auth';
import type { PaymentProvider, PayParams } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import {
  BadRequestError,
  ConflictError,
  FeatureDisabledError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
} from '#lib/errors';
import { logger } from '#lib/logger';
import { findPlan } from '#lib/plans';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import type { OrderClaim } from '#lib/repositories/user-repository';
import * as users from '#lib/repositories/user-repository';
import { OUT_TRADE_NO } from '#lib/wechat-pay/fields';
import {
  claimsEndedBefore,
  continuesOrder,
  newOrder,
  newOutTradeNo,
  type PublicOrder,
  prepayRequestOf,
  toPublicOrder,
} from './rules';
import { ownOrder } from './views';

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
 * Throws ConflictError when the order is PAID, CLOSED, expired, of another pay version or of the other
 * channel (an H5 order from the mini-program, or the reverse).
 */
async function payPendingOrder(
  config: Config,
  provider: PaymentProvider,
  session: Session,
  order: OrderRecord,
  now: Date,
): Promise<PaymentStart> {
  if (order.status === 'PAID') throw new ConflictError('订单已支付', 'ORDER_PAID');
  if (order.status !== 'PENDING') throw new ConflictError('订单已关闭，请重新下单', 'ORDER_CLOSED');
  if (new Date(order.timeExpire) <= now) throw new ConflictError('订单已过期，请重新下单', 'ORDER_EXPIRED');
  if (order.payVersion !== provider.version) {
    throw new ConflictError('支付方式已变更，请重新下单', 'ORDER_PAY_VERSION_CHANGED');
  }
  if (order.appId !== payerAppId(config, session)) {
    throw new ConflictError('请在下单的小程序或页面中继续支付', 'ORDER_CHANNEL_MISMATCH');
  }
  let prepayId = order.prepayId;
  if (!prepayId) {
    // Re-requests carry exactly the stored parameters, so WeChat treats them as the same order.
    prepayId = await provider.prepay(prepayRequestOf(order));
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
  return { order: toPublicOrder(order), payParams: provider.payParams(prepayId, order.appId) };
}

/**
 * The AppID a session pays under, when it is not the mini-program's: the official account's for an H5
 * session (WECHAT_MP_APPID; FeatureDisabledError when this stage has none), else undefined.
 */
export function payerAppId(config: Config, session: Session): string | undefined {
  if (session.channel !== 'h5') return undefined;
  if (!config.mpAppId) throw new FeatureDisabledError('H5 支付未开启', 'WECHAT_MP_APPID unset');
  return config.mpAppId;
}

/** Orders one user may open per hour (UTC hour window) before `POST /wechat/pay` answers 429. */
export const ORDERS_PER_USER_HOUR = 20;
/** A claim whose order is not stored after this long (ms) belongs to a caller that died: it is taken over. */
const CLAIM_STALE_MS = 30_000;

/**
 * Opens the order a fresh claim names: prepay first, then one PutItem with the prepay_id. When WeChat fails,
 * the order is stored without a prepay_id (so a retry continues it and the reconciler can see it) and the
 * error is rethrown.
 */
async function openClaimedOrder(
  config: Config,
  provider: PaymentProvider,
  order: OrderRecord,
  now: Date,
): Promise<PaymentStart> {
  let prepayId: string;
  try {
    prepayId = await provider.prepay(prepayRequestOf(order));
  } catch (error) {
    // Best effort: a stored order lets a retry continue it and the reconciler see it; without it the claim
    // goes stale and is taken over. WeChat's error is what the caller gets either way.
    await orders.createOrder(config.ordersTable, order).catch((stored: unknown) => {
      logger.warn('order not stored after a failed prepay', {
        outTradeNo: order.outTradeNo,
        error: (stored as Error).name,
      });
    });
    throw error;
  }
  const opened: OrderRecord = { ...order, prepayId, prepayAt: now.toISOString() };
  if (!(await orders.createOrder(config.ordersTable, opened))) {
    logger.error('a claimed out_trade_no was already stored', { outTradeNo: order.outTradeNo });
    throw new ServiceUnavailableError('下单失败，请重试', 'ORDER_ID_EXHAUSTED');
  }
  return { order: toPublicOrder(opened), payParams: provider.payParams(prepayId, opened.appId) };
}

/**
 * `POST /wechat/pay`: `{planId}` continues the caller's open PENDING order for that plan, or opens one at
 * the catalog price (integer fen) and requests its prepay_id; `{outTradeNo}` pays the caller's PENDING
 * order again (reusing its live prepay_id). An H5 session (`ch: 'h5'`) pays under the official account's
 * AppID with the user's official-account openid (the order keeps `appId`), and its payParams carry `appId`.
 * At most one open order per user and plan, under any concurrency: a conditional claim on the user item picks the one caller that opens it; the others get
 * that order and its prepay_id, or 409 ORDER_IN_PROGRESS while its first prepay is in flight.
 * Throws BadRequestError (unknown plan), NotFoundError (not the caller's order), ConflictError (PAID /
 * CLOSED / expired / in progress), TooManyRequestsError (more than ORDERS_PER_USER_HOUR orders this hour),
 * UpstreamError / ServiceUnavailableError (WeChat).
 */
export async function createPayment(
  config: Config,
  provider: PaymentProvider,
  session: Session,
  body: v.InferOutput<typeof CreatePaymentBody>,
  clientIp: string,
  now = new Date(),
): Promise<PaymentStart> {
  if ('outTradeNo' in body) {
    return payPendingOrder(config, provider, session, await ownOrder(config, session, body.outTradeNo), now);
  }
  const { userId } = session;
  const plan = findPlan(body.planId);
  if (!plan) throw new BadRequestError('会员套餐不存在', 'UNKNOWN_PLAN');
  const appId = payerAppId(config, session);

  let replacing: OrderClaim | undefined;
  for (let round = 0; round < 3; round++) {
    const claim = { outTradeNo: newOutTradeNo(now), claimedAt: now.toISOString() };
    const window = now.toISOString().slice(0, 13);
    const result = await users.claimOpenOrder(config.usersTable, {
      userId,
      planId: plan.id,
      claim,
      replacing,
      window,
      cap: ORDERS_PER_USER_HOUR,
      endedBefore: claimsEndedBefore(now),
      sessionVersion: session.sessionVersion,
    });
    if (result.kind === 'no_user') throw new UnauthorizedError('登录已失效，请重新登录', 'USER_NOT_FOUND');
    if (result.kind === 'capped') {
      const nextWindow = Date.parse(`${window}:00:00.000Z`) + 3_600_000;
      throw new TooManyRequestsError(
        '下单过于频繁，请稍后再试',
        Math.ceil((nextWindow - now.getTime()) / 1000),
        'ORDER_RATE_LIMITED',
      );
    }
    if (result.kind === 'claimed') {
      const openid = appId ? result.user.mpOpenid : result.user.openid;
      if (!openid) throw new UnauthorizedError('请重新登录后再支付', 'PAYER_OPENID_MISSING');
      const order = newOrder({
        outTradeNo: claim.outTradeNo,
        userId,
        openid,
        ...(appId ? { appId } : {}),
        plan,
        payVersion: provider.version,
        clientIp,
        now,
        owner: result.user,
      });
      return openClaimedOrder(config, provider, order, now);
    }
    replacing = undefined;
    if (!result.claim) continue;
    const held = await orders.getOrder(config.ordersTable, result.claim.outTradeNo);
    if (held && held.userId === userId && continuesOrder(held, plan.id, provider.version, now, appId)) {
      return payPendingOrder(config, provider, session, held, now);
    }
    if (!held && now.getTime() - Date.parse(result.claim.claimedAt) < CLAIM_STALE_MS) {
      throw new ConflictError('订单正在创建，请稍后重试', 'ORDER_IN_PROGRESS');
    }
    // The held order is paid, closed, expiring, of the other pay version, or was never stored: replace it.
    replacing = result.claim;
  }
  throw new ServiceUnavailableError('下单繁忙，请重试', 'ORDER_CONTENDED');
}
