import { randomInt } from 'node:crypto';
import * as v from 'valibot';
import type {
  OrderQueryResult,
  PaymentProvider,
  PaymentReport,
  PayParams,
} from '#lib/clients/payment-provider';
import type { Config } from './config';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  NotifyRejectedError,
  ServiceUnavailableError,
  UnauthorizedError,
} from './errors';
import { logger } from './logger';
import { findPlan, type Plan } from './plans';
import type { OrderRecord } from './repositories/order-repository';
import * as orders from './repositories/order-repository';
import * as users from './repositories/user-repository';

/** The order as the mini-program sees it (DESIGN.md `order`). */
export interface PublicOrder {
  outTradeNo: string;
  planId: string;
  description: string;
  totalFee: number;
  status: OrderRecord['status'];
  createdAt: string;
  paidAt: string | null;
  transactionId: string | null;
}

/** How long an order (and its prepay_id) can be paid: WeChat keeps a prepay_id for 2 hours. */
export const ORDER_LIFETIME_SECONDS = 2 * 3600;
/** An open order is continued by a new `{planId}` request only while it has this long left to be paid. */
const REUSE_MARGIN_SECONDS = 10 * 60;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The public shape of a stored order. */
export function toPublicOrder(order: OrderRecord): PublicOrder {
  return {
    outTradeNo: order.outTradeNo,
    planId: order.planId,
    description: order.description,
    totalFee: order.totalFee,
    status: order.status,
    createdAt: order.createdAt,
    paidAt: order.paidAt ?? null,
    transactionId: order.transactionId ?? null,
  };
}

/** A fresh out_trade_no: `M` + yyyyMMddHHmmss (UTC) + 12 random letters/digits = 27 chars of [0-9A-Za-z]. */
export function newOutTradeNo(now: Date): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  let random = '';
  for (let i = 0; i < 12; i++) random += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return `M${stamp}${random}`;
}

/** Cuts a string to at most `maxBytes` UTF-8 bytes on a code-point boundary (never splits a character). */
export function truncateUtf8(text: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes) break;
    out += char;
    bytes += size;
  }
  return out;
}

const DAY_MS = 86_400_000;

/** New membership end: max(now, current end) + days, as ISO 8601 UTC. Commutative for concurrent payments. */
export function extendMembership(currentEnd: string | undefined, now: Date, days: number): string {
  const current = currentEnd ? new Date(currentEnd).getTime() : 0;
  return new Date(Math.max(now.getTime(), current) + days * DAY_MS).toISOString();
}

export const CreatePaymentBody = v.union(
  [
    // Other fields (a client-sent amount, currency, openid…) are ignored: prices come from the catalog.
    v.object({ planId: v.pipe(v.string(), v.minLength(1), v.maxLength(32)) }),
    v.object({ outTradeNo: v.pipe(v.string(), v.regex(OUT_TRADE_NO)) }),
  ],
  '请提供 planId（新订单）或 outTradeNo（继续支付）其中之一',
);

/** Order description shown in the user's WeChat bill (≤ 127 bytes). */
export function orderDescription(plan: Plan): string {
  return truncateUtf8(`会员-${plan.name}`, 127);
}

async function payPendingOrder(
  config: Config,
  provider: PaymentProvider,
  order: OrderRecord,
  now: Date,
): Promise<{ order: PublicOrder; payParams: PayParams }> {
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
 * `POST /wechat/pay`: `{planId}` continues the caller's open PENDING order for that plan, or creates one at
 * the catalog price, and requests a prepay_id;
 * `{outTradeNo}` pays the caller's PENDING order again (reusing its live prepay_id). Returns the order and
 * `wx.requestPayment` parameters. Throws BadRequestError (unknown plan), NotFoundError (not the caller's
 * order), ConflictError (PAID / CLOSED / expired), UpstreamError / ServiceUnavailableError (WeChat).
 */
export async function createPayment(
  config: Config,
  provider: PaymentProvider,
  userId: string,
  body: v.InferOutput<typeof CreatePaymentBody>,
  clientIp: string,
  now = new Date(),
): Promise<{ order: PublicOrder; payParams: PayParams }> {
  if ('outTradeNo' in body) {
    const order = await orders.getOrder(config.ordersTable, body.outTradeNo);
    if (!order || order.userId !== userId) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
    return payPendingOrder(config, provider, order, now);
  }
  const plan = findPlan(body.planId);
  if (!plan) throw new BadRequestError('会员套餐不存在', 'UNKNOWN_PLAN');
  const user = await users.getUser(config.usersTable, userId);
  if (!user) throw new UnauthorizedError('用户不存在，请重新登录', 'USER_NOT_FOUND');

  // A double tap, or a retry after WeChat was unavailable, continues the open order for the same plan
  // instead of opening another one.
  const { orders: recent } = await orders.listOrdersByUser(config.ordersTable, userId, 10);
  const open = recent.find(
    (order) =>
      order.status === 'PENDING' &&
      order.planId === plan.id &&
      order.payVersion === provider.version &&
      new Date(order.timeExpire).getTime() - now.getTime() > REUSE_MARGIN_SECONDS * 1000,
  );
  if (open) return payPendingOrder(config, provider, open, now);

  for (let attempt = 0; attempt < 3; attempt++) {
    const order: OrderRecord = {
      outTradeNo: newOutTradeNo(now),
      userId,
      openid: user.openid,
      planId: plan.id,
      description: orderDescription(plan),
      totalFee: plan.totalFee,
      status: 'PENDING',
      payVersion: provider.version,
      clientIp,
      createdAt: now.toISOString(),
      timeExpire: new Date(now.getTime() + ORDER_LIFETIME_SECONDS * 1000).toISOString(),
    };
    if (await orders.createOrder(config.ordersTable, order))
      return payPendingOrder(config, provider, order, now);
    logger.warn('out_trade_no collision, generating another', { outTradeNo: order.outTradeNo });
  }
  throw new ServiceUnavailableError('下单失败，请重试', 'ORDER_ID_EXHAUSTED');
}

export type SettleOutcome = 'credited' | 'duplicate';

/** How long a settle may keep retrying contention: well inside WeChat's 5 s notify window. */
const SETTLE_BUDGET_MS = 3000;

/** Where an order stands for a reported payment: credit it, or it is already this payment (duplicate). */
function checkOrder(
  order: OrderRecord | undefined,
  report: PaymentReport,
  context: object,
): 'pending' | 'duplicate' {
  const detail = (extra: object = {}) => JSON.stringify({ ...context, ...extra });
  if (!order) throw new NotifyRejectedError('unknown out_trade_no', 404, detail());
  if (order.totalFee !== report.totalFee) {
    throw new NotifyRejectedError(
      'amount mismatch',
      400,
      detail({ expected: order.totalFee, reported: report.totalFee }),
    );
  }
  if (order.status === 'PAID') {
    if (order.transactionId === report.transactionId) return 'duplicate';
    throw new NotifyRejectedError('order already paid by another transaction', 409, detail());
  }
  if (order.status !== 'PENDING') throw new NotifyRejectedError(`order is ${order.status}`, 409, detail());
  return 'pending';
}

/**
 * Credits a payment WeChat reported (notify or order query) exactly once, keyed on out_trade_no:
 * validates appid/mchid/amount/currency against our records, then one transaction (order PENDING → PAID,
 * membership max(now, end) + plan days, role 1). A changed user version is re-read and retried (with
 * jittered backoff, within a 3 s budget), never taken for a duplicate. Returns 'duplicate' when the order
 * is already PAID with the same transaction_id; throws NotifyRejectedError for anything that must not be
 * credited (nothing is written then), or Error when contention outlasts the budget (WeChat retries).
 */
export async function settlePayment(
  config: Config,
  report: PaymentReport,
  now: () => Date = () => new Date(),
): Promise<SettleOutcome> {
  const context = {
    outTradeNo: report.outTradeNo,
    transactionId: report.transactionId,
    source: report.source,
  };
  if (report.appId !== config.appId || report.mchId !== config.mchId) {
    throw new NotifyRejectedError('appid/mchid mismatch', 400, JSON.stringify(context));
  }
  if (report.currency !== 'CNY') throw new NotifyRejectedError('currency mismatch', 400);

  let order = await orders.getOrder(config.ordersTable, report.outTradeNo);
  if (checkOrder(order, report, context) === 'duplicate') return 'duplicate';
  const pending = order as OrderRecord;
  const plan = findPlan(pending.planId);
  let user = await users.getUser(config.usersTable, pending.userId);
  if (!plan || !user) throw new Error(`order ${pending.outTradeNo} references a missing plan or user`);

  const deadline = Date.now() + SETTLE_BUDGET_MS;
  for (let attempt = 1; ; attempt++) {
    const at = now();
    const result = await orders.markOrderPaidAndExtendMembership({
      ordersTable: config.ordersTable,
      usersTable: config.usersTable,
      order: pending,
      paid: {
        transactionId: report.transactionId,
        paidAt: report.paidAt,
        bankType: report.bankType,
        cashFee: report.cashFee,
        paidVia: report.source,
      },
      userVersion: user.version ?? 0,
      membershipExpiredAt: extendMembership(user.membershipExpiredAt, at, plan.days),
      now: at.toISOString(),
    });
    if (result.kind === 'committed') {
      logger.info('payment credited', { ...context, attempt });
      return 'credited';
    }
    if (result.kind === 'order_changed') {
      // Another delivery (or the order query) settled it first: DynamoDB returned the order as it is now.
      order = result.order ?? (await orders.getOrder(config.ordersTable, report.outTradeNo));
      if (checkOrder(order, report, context) === 'duplicate') return 'duplicate';
    }
    if (Date.now() > deadline) {
      throw new Error(
        `paid transition for ${report.outTradeNo} did not settle within ${SETTLE_BUDGET_MS} ms`,
      );
    }
    // Another payment of the same user moved its version (or DynamoDB saw a conflict): back off, re-read the user.
    await new Promise((resolve) => setTimeout(resolve, randomInt(5, Math.min(30 * attempt, 250) + 6)));
    const latest = await users.getUser(config.usersTable, pending.userId);
    if (!latest) throw new Error(`user ${pending.userId} disappeared`);
    user = latest;
  }
}

/**
 * `GET /wechat/orders/{outTradeNo}`: the caller's order; a PENDING one is first checked with WeChat's order
 * query, and a SUCCESS there goes through the same exactly-once transition as a notify. NotFoundError
 * for someone else's order. A failing order query leaves the order PENDING (logged, not thrown).
 */
export async function getOrderForUser(
  config: Config,
  provider: PaymentProvider,
  userId: string,
  outTradeNo: string,
): Promise<PublicOrder> {
  if (!OUT_TRADE_NO.test(outTradeNo)) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  const order = await orders.getOrder(config.ordersTable, outTradeNo);
  if (!order || order.userId !== userId) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  if (order.status !== 'PENDING' || order.payVersion !== provider.version) return toPublicOrder(order);

  let query: OrderQueryResult;
  try {
    query = await provider.queryOrder(outTradeNo);
  } catch (error) {
    logger.warn('order query failed; order stays PENDING', { outTradeNo, error: (error as Error).message });
    return toPublicOrder(order);
  }
  if (query.tradeState !== 'SUCCESS' || !('report' in query)) return toPublicOrder(order);
  try {
    await settlePayment(config, query.report);
  } catch (error) {
    // Money-safe either way (nothing was written); the notify or the next look settles it.
    const rejected = error instanceof NotifyRejectedError;
    logger.error(
      rejected ? 'order query reported a payment we cannot credit' : 'settling from the order query failed',
      {
        outTradeNo,
        reason: (error as Error).message,
      },
    );
  }
  const current = await orders.getOrder(config.ordersTable, outTradeNo);
  return toPublicOrder(current ?? order);
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

/** `GET /wechat/orders`: the caller's orders, newest first, `limit` per page (1–50), with an opaque cursor. */
export async function listOrders(
  config: Config,
  userId: string,
  cursor: string | undefined,
  limit = 20,
): Promise<{ orders: PublicOrder[]; nextCursor: string | null }> {
  if (!Number.isInteger(limit) || limit < 1 || limit > 50) {
    throw new BadRequestError('limit 应为 1–50 的整数', 'INVALID_LIMIT');
  }
  const page = await orders.listOrdersByUser(config.ordersTable, userId, limit, decodeCursor(cursor, userId));
  return {
    orders: page.orders.map(toPublicOrder),
    nextCursor: page.lastKey ? Buffer.from(JSON.stringify(page.lastKey)).toString('base64url') : null,
  };
}
