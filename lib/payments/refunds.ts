import { createHash, randomInt } from 'node:crypto';
import * as v from 'valibot';
import type { PaymentProvider, RefundReport, RefundRequest } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  type PaymentRejection,
  RefundRefusedError,
  ServiceUnavailableError,
  UpstreamError,
} from '#lib/errors';
import { logger } from '#lib/logger';
import { countPaymentException } from '#lib/metrics';
import { findPlan } from '#lib/plans';
import * as exceptions from '#lib/repositories/exception-repository';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import type { RefundRecord } from '#lib/repositories/refund-repository';
import * as refunds from '#lib/repositories/refund-repository';
import * as users from '#lib/repositories/user-repository';
import { MAX_TOTAL_FEE, OUT_TRADE_NO, randomAlphanumeric } from '#lib/wechat-pay/fields';
import { chinaDay } from '#lib/wechat-pay/refund-protocol';
import { type Providers, providerFor, revokedDaysFor, shortenMembership, utcStamp } from './rules';

/**
 * Refunds (WeChat Pay v2 申请退款 / v3 退款申请): the operator's request, the reservation before WeChat is asked,
 * and the exactly-once application of WeChat's outcome, whichever channel reports it (the refund answer, a refund
 * notify, the reconciler's refund query). A refund moves PROCESSING → SUCCESS | CLOSED | ABNORMAL once, and an
 * ABNORMAL one → SUCCESS | CLOSED once when the merchant re-applies it (the reconciler keeps asking about it).
 */

/** `POST /admin/refunds` body: amount in integer fen (default: all still refundable); reason ≤ 80 characters. */
export const RefundBody = v.object({
  outTradeNo: v.pipe(v.string('outTradeNo 必须是字符串'), v.regex(OUT_TRADE_NO, 'outTradeNo 格式不正确')),
  amount: v.optional(
    v.pipe(
      v.number('amount 必须是整数（单位：分）'),
      v.integer('amount 必须是整数（单位：分）'),
      v.minValue(1, 'amount 至少为 1 分'),
      v.maxValue(MAX_TOTAL_FEE, 'amount 超出范围'),
    ),
  ),
  reason: v.optional(v.pipe(v.string('reason 必须是字符串'), v.maxLength(80, '退款原因不能超过 80 个字符'))),
});

/** An `Idempotency-Key` header: 1–128 visible ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/** What `POST /admin/refunds` answers. */
export interface PublicRefund {
  outRefundNo: string;
  outTradeNo: string;
  /** Integer fen. */
  amount: number;
  status: RefundRecord['status'];
}

/** The public shape of a stored refund. */
export function toPublicRefund(refund: RefundRecord): PublicRefund {
  return {
    outRefundNo: refund.outRefundNo,
    outTradeNo: refund.refundOf,
    amount: refund.amount,
    status: refund.status,
  };
}

/**
 * The out_refund_no of a refund: from an Idempotency-Key, `K` + 40 hex of its SHA-256 (the same key, the same
 * refund); else `R` + yyyyMMddHHmmss (UTC) + 12 random letters/digits. Both fit [0-9A-Za-z_-|*@]{1,64}.
 */
export function newOutRefundNo(now: Date, idempotencyKey?: string): string {
  if (idempotencyKey !== undefined) {
    return `K${createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 40)}`;
  }
  return `R${utcStamp(now)}${randomAlphanumeric(12)}`;
}

function refundRequestOf(refund: RefundRecord): RefundRequest {
  return {
    outTradeNo: refund.refundOf,
    outRefundNo: refund.outRefundNo,
    totalFee: refund.totalFee,
    refundFee: refund.amount,
    reason: refund.reason,
    ...(refund.appId ? { appId: refund.appId } : {}),
  };
}

/** How far apart the reconciler looks at a PROCESSING refund, minutes after its creation (then hourly). */
const REFUND_CHECK_MINUTES = [1, 5, 15, 60] as const;

/** The next check of a PROCESSING refund after `now` (ISO UTC). */
export function nextRefundCheckAt(createdAt: string, now: Date): string {
  const created = Date.parse(createdAt);
  for (const minutes of REFUND_CHECK_MINUTES) {
    const at = created + minutes * 60_000;
    if (at > now.getTime()) return new Date(at).toISOString();
  }
  return new Date(now.getTime() + 3_600_000).toISOString();
}

function exceeds(order: OrderRecord): BadRequestError {
  const left = order.totalFee - (order.refundReservedFee ?? 0);
  return new BadRequestError(`退款金额超过可退金额（剩余 ${Math.max(left, 0)} 分）`, 'REFUND_EXCEEDS');
}

/** How long a refund request may wait out conflicting transactions on its reservation, milliseconds. */
const RESERVE_BUDGET_MS = 2000;

function notRefundable(order: OrderRecord): ConflictError {
  return new ConflictError(
    order.status === 'REFUNDED' ? '订单已全额退款' : '订单未支付，无法退款',
    'ORDER_NOT_REFUNDABLE',
    order.status,
  );
}

/**
 * `POST /admin/refunds`: refunds `amount` fen (default: all still refundable) of a PAID order. The amount is
 * reserved on the order together with creating the PROCESSING refund, in one transaction, before WeChat is asked;
 * then WeChat is asked with notify_url = the payment notify URL. With an `Idempotency-Key`, a retried request
 * answers the same refund (and asks WeChat again, with identical parameters, while it is PROCESSING).
 * WeChat unavailable: the refund stays PROCESSING and the reconciler asks again. Throws ValidationError /
 * BadRequestError (REFUND_EXCEEDS, INVALID_IDEMPOTENCY_KEY), NotFoundError (ORDER_NOT_FOUND), ConflictError
 * (ORDER_NOT_REFUNDABLE, IDEMPOTENCY_KEY_REUSED, ORDER_PAY_VERSION_CHANGED), UpstreamError (REFUND_REFUSED:
 * WeChat refused it for good; the reservation is released).
 */
export async function createRefund(
  config: Config,
  providers: Providers,
  body: v.InferOutput<typeof RefundBody>,
  idempotencyKey: string | undefined,
  now = new Date(),
): Promise<PublicRefund> {
  if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    throw new BadRequestError('Idempotency-Key 应为 1–128 个可见 ASCII 字符', 'INVALID_IDEMPOTENCY_KEY');
  }
  const outRefundNo = newOutRefundNo(now, idempotencyKey);
  if (idempotencyKey !== undefined) {
    const existing = await refunds.getRefund(config.ordersTable, outRefundNo);
    if (existing) return retried(config, providers, existing, body);
  }
  let order = await orders.getOrder(config.ordersTable, body.outTradeNo);
  if (!order) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  const provider = providerFor(order, providers);
  // Three looks at a changed order; a conflicting transaction in flight (a concurrent request with the same
  // Idempotency-Key, say) is waited out within the budget instead of counting as one.
  const deadline = Date.now() + RESERVE_BUDGET_MS;
  for (let round = 0; round < 3; ) {
    if (order.status !== 'PAID') throw notRefundable(order);
    const left = order.totalFee - (order.refundReservedFee ?? 0);
    const amount = body.amount ?? left;
    if (amount < 1 || amount > left) throw exceeds(order);
    if (!provider) {
      throw new ConflictError(
        '订单的支付版本已停用，无法退款',
        'ORDER_PAY_VERSION_CHANGED',
        order.payVersion,
      );
    }
    const refund: RefundRecord = {
      outTradeNo: refunds.refundKey(outRefundNo),
      kind: 'refund',
      outRefundNo,
      refundOf: order.outTradeNo,
      amount,
      totalFee: order.totalFee,
      status: 'PROCESSING',
      ...(body.reason ? { reason: body.reason } : {}),
      payVersion: order.payVersion,
      ...(order.appId ? { appId: order.appId } : {}),
      createdAt: now.toISOString(),
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      reconcileAt: nextRefundCheckAt(now.toISOString(), now),
    };
    const reserved = await refunds.reserveRefund(config.ordersTable, refund);
    if (reserved.kind === 'reserved') {
      logger.info('refund reserved', { outRefundNo, outTradeNo: order.outTradeNo, amount });
      return toPublicRefund(await askWechat(config, provider, refund));
    }
    if (reserved.kind === 'refund_exists') {
      const existing = reserved.refund ?? (await refunds.getRefund(config.ordersTable, outRefundNo));
      if (existing) return retried(config, providers, existing, body);
    }
    if (reserved.kind === 'conflict' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, randomInt(5, 50)));
    } else {
      round++;
    }
    const current = reserved.kind === 'order_changed' ? reserved.order : undefined;
    order = current ?? (await orders.getOrder(config.ordersTable, body.outTradeNo));
    if (!order) throw new NotFoundError('订单不存在', 'ORDER_NOT_FOUND');
  }
  throw new ConflictError('退款繁忙，请重试', 'REFUND_CONTENDED');
}

/** A retried request (same Idempotency-Key): the same refund, asked of WeChat again while PROCESSING. */
async function retried(
  config: Config,
  providers: Providers,
  refund: RefundRecord,
  body: v.InferOutput<typeof RefundBody>,
): Promise<PublicRefund> {
  if (refund.refundOf !== body.outTradeNo || (body.amount !== undefined && body.amount !== refund.amount)) {
    throw new ConflictError('Idempotency-Key 已用于另一笔退款', 'IDEMPOTENCY_KEY_REUSED');
  }
  const provider = providerFor(refund, providers);
  if (refund.status !== 'PROCESSING' || !provider) return toPublicRefund(refund);
  return toPublicRefund(await askWechat(config, provider, refund));
}

/**
 * Asks WeChat for a reserved refund (identical parameters on every retry) and applies what it answers: a refusal
 * for good closes it (releasing the reservation) and throws UpstreamError REFUND_REFUSED; an unavailable WeChat
 * leaves it PROCESSING for the reconciler. Returns the refund as stored now.
 */
async function askWechat(
  config: Config,
  provider: PaymentProvider,
  refund: RefundRecord,
): Promise<RefundRecord> {
  let report: RefundReport;
  try {
    report = await provider.refund(refundRequestOf(refund));
  } catch (error) {
    if (error instanceof RefundRefusedError) {
      await applyRefundReport(config, {
        outRefundNo: refund.outRefundNo,
        outTradeNo: refund.refundOf,
        status: 'CLOSED',
        refundFee: refund.amount,
        via: provider.version === 'v2' ? 'refund-v2' : 'refund-v3',
      });
      throw new UpstreamError(`微信支付拒绝退款（${error.code}）`, 'REFUND_REFUSED', error.code);
    }
    // Only WeChat's unavailability or an unusable answer leaves the outcome open; anything else is ours to fix.
    if (!(error instanceof ServiceUnavailableError || error instanceof UpstreamError)) throw error;
    logger.warn('refund request unanswered; the reconciler asks again', {
      outRefundNo: refund.outRefundNo,
      code: error.code,
    });
    return refund;
  }
  await applyRefundReport(config, report);
  return (await refunds.getRefund(config.ordersTable, refund.outRefundNo)) ?? refund;
}

/** What became of a refund report. */
export type RefundOutcome = 'applied' | 'duplicate' | 'pending' | 'exception';

/** How long applying a SUCCESS may keep retrying contention, milliseconds (inside WeChat's 5 s notify window). */
const APPLY_BUDGET_MS = 3000;

/**
 * Applies what WeChat reports of a refund (refund answer, v2/v3 refund notify, refund query) exactly once:
 * PROCESSING only stores the refund_id; SUCCESS, in one transaction, marks the refund SUCCESS, adds its amount to
 * the order's refundedFee (REFUNDED when fully refunded) and revokes ⌊plan days × refundedFee ÷ totalFee⌋ − the days
 * already revoked from the owner's membership (role 0 when it then lies in the past); CLOSED releases the reserved
 * amount; ABNORMAL is recorded as a payment exception (alarmed), and its later SUCCESS or CLOSED (the merchant
 * re-applied it) is applied like one from PROCESSING. A refund already final answers 'duplicate'; a
 * report that matches no refund of ours (unknown out_refund_no, other order, amount or merchant) is recorded once as
 * a payment exception ('exception'). Throws Error when contention outlasts the budget (WeChat notifies again).
 */
export async function applyRefundReport(
  config: Config,
  report: RefundReport,
  now: () => Date = () => new Date(),
): Promise<RefundOutcome> {
  const deadline = Date.now() + APPLY_BUDGET_MS;
  for (;;) {
    try {
      return await applyOnce(config, report, now);
    } catch (error) {
      // Every step is conditioned, so meeting another delivery's transaction in flight is simply tried again.
      if ((error as { name?: string }).name !== 'TransactionConflictException' || Date.now() > deadline) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, randomInt(10, 60)));
    }
  }
}

async function applyOnce(config: Config, report: RefundReport, now: () => Date): Promise<RefundOutcome> {
  const refund = await refunds.getRefund(config.ordersTable, report.outRefundNo);
  if (
    !refund ||
    refund.refundOf !== report.outTradeNo ||
    refund.amount !== report.refundFee ||
    (report.mchId !== undefined && report.mchId !== config.mchId)
  ) {
    await recordRefundException(config, report, 'refund_mismatch', refund);
    return 'exception';
  }
  // An ABNORMAL refund the merchant re-applied (商户平台, or apply-abnormal-refund) ends SUCCESS or CLOSED later:
  // that final state is applied once, like one reached from PROCESSING.
  const resolvesAbnormal =
    refund.status === 'ABNORMAL' && (report.status === 'SUCCESS' || report.status === 'CLOSED');
  if (refund.status !== 'PROCESSING' && !resolvesAbnormal) {
    if (report.status !== refund.status && report.status !== 'PROCESSING') {
      logger.error('refund reported in another final state', {
        outRefundNo: refund.outRefundNo,
        stored: refund.status,
        reported: report.status,
      });
    }
    return 'duplicate';
  }
  const at = now().toISOString();
  switch (report.status) {
    case 'PROCESSING':
      if (report.refundId && !refund.refundId) {
        await refunds.saveRefundId(config.ordersTable, refund.outRefundNo, report.refundId);
      }
      return 'pending';
    case 'CLOSED': {
      const result = await refunds.markRefundClosed(config.ordersTable, refund, at);
      if (result.kind !== 'committed' && result.kind !== 'refund_changed') {
        throw new Error(`refund ${refund.outRefundNo} close did not commit: ${result.kind}`);
      }
      logger.info('refund closed; reservation released', {
        outRefundNo: refund.outRefundNo,
        via: report.via,
      });
      return result.kind === 'committed' ? 'applied' : 'duplicate';
    }
    case 'ABNORMAL': {
      // Recorded first (once per refund), so an ABNORMAL refund always has its exception.
      await recordRefundException(config, report, 'refund_abnormal', refund);
      const result = await refunds.markRefundAbnormal(
        config.ordersTable,
        refund,
        at,
        nextRefundCheckAt(refund.createdAt, now()),
        report.refundId,
      );
      if (result.kind !== 'committed' && result.kind !== 'refund_changed') {
        throw new Error(`refund ${refund.outRefundNo} abnormal did not commit: ${result.kind}`);
      }
      return result.kind === 'committed' ? 'applied' : 'duplicate';
    }
    case 'SUCCESS':
      return applySuccess(config, refund, report, now);
  }
}

/** A refund WeChat may still move to SUCCESS or CLOSED: PROCESSING, or ABNORMAL until the merchant resolves it. */
const isOpen = (refund: RefundRecord | undefined) =>
  refund?.status === 'PROCESSING' || refund?.status === 'ABNORMAL';

async function applySuccess(
  config: Config,
  read: RefundRecord,
  report: RefundReport,
  now: () => Date,
): Promise<RefundOutcome> {
  // The refund as last read: its status is what the transition is conditioned on.
  let refund = read;
  const deadline = Date.now() + APPLY_BUDGET_MS;
  const successAt = report.successAt ?? now().toISOString();
  for (let attempt = 1; ; attempt++) {
    let result: Awaited<ReturnType<typeof refunds.markRefundSucceeded>>;
    let refundedFee = 0;
    let revoke = 0;
    try {
      const order = await orders.getOrder(config.ordersTable, refund.refundOf);
      if (!order) throw new Error(`refund ${refund.outRefundNo} names a missing order`);
      const plan = findPlan(order.planId);
      if (!plan) throw new Error(`order ${order.outTradeNo} references a missing plan`);
      const previous = order.refundedFee ?? 0;
      refundedFee = previous + refund.amount;
      if (refundedFee > order.totalFee) {
        // Read after another delivery applied this very refund (our refund read was older): a duplicate.
        const current = await refunds.getRefund(config.ordersTable, refund.outRefundNo);
        if (!isOpen(current)) return 'duplicate';
        throw new Error(`refunds of ${order.outTradeNo} exceed its total`);
      }
      const revokedDays = revokedDaysFor(plan.days, refundedFee, order.totalFee);
      revoke = revokedDays - (order.revokedDays ?? 0);
      const owner = await users.getUser(config.usersTable, order.userId);
      const at = now();
      const membership = owner
        ? shortenMembership(owner.membershipExpiredAt, owner.role, revoke, at)
        : undefined;
      result = await refunds.markRefundSucceeded({
        ordersTable: config.ordersTable,
        usersTable: config.usersTable,
        refund,
        successAt,
        ledgerDay: chinaDay(successAt),
        refundId: report.refundId,
        previousRefundedFee: previous,
        refundedFee,
        revokedDays,
        status: refundedFee === order.totalFee ? 'REFUNDED' : 'PAID',
        user: owner && membership ? { id: owner.id, version: owner.version ?? 0, ...membership } : undefined,
        now: at.toISOString(),
      });
    } catch (error) {
      // A read or write that met another delivery's transaction in flight: the same as a conflict, retried.
      if ((error as { name?: string }).name !== 'TransactionConflictException') throw error;
      result = { kind: 'conflict' };
    }
    if (result.kind === 'committed') {
      logger.info('refund succeeded; membership shortened', {
        outRefundNo: refund.outRefundNo,
        outTradeNo: refund.refundOf,
        refundedFee,
        revokedDays: revoke,
        via: report.via,
        attempt,
      });
      return 'applied';
    }
    if (result.kind === 'refund_changed') {
      const current = result.refund ?? (await refunds.getRefund(config.ordersTable, refund.outRefundNo));
      if (!current || !isOpen(current)) return 'duplicate';
      refund = current;
    }
    if (Date.now() > deadline) {
      throw new Error(`refund ${refund.outRefundNo} did not settle within ${APPLY_BUDGET_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, randomInt(5, Math.min(30 * attempt, 250) + 6)));
  }
}

/**
 * Stores a refund that must be looked at by an operator as a payment exception, once per (out_trade_no,
 * out_refund_no), logged as an error and counted (the alarmed metric) when new.
 */
async function recordRefundException(
  config: Config,
  report: RefundReport,
  reason: PaymentRejection,
  refund: RefundRecord | undefined,
): Promise<void> {
  const created = await exceptions.recordException(config.ordersTable, {
    outTradeNo: report.outTradeNo,
    transactionId: `REFUND#${report.outRefundNo}`,
    reason,
    ...(refund ? { orderFee: refund.totalFee } : {}),
    reportedFee: report.refundFee,
    source: report.via,
    at: new Date().toISOString(),
  });
  logger.error('payment exception: a refund needs an operator', {
    outTradeNo: report.outTradeNo,
    outRefundNo: report.outRefundNo,
    reason,
    status: report.status,
    firstSeen: created,
  });
  if (created) countPaymentException(reason);
}

/** What one refund reconcile pass did. */
export interface RefundReconcileSummary {
  /** PROCESSING and ABNORMAL refunds looked at. */
  refundsChecked: number;
  /** Refunds that reached a final state (SUCCESS, CLOSED or ABNORMAL). */
  refundsSettled: number;
  /** Refunds still PROCESSING or ABNORMAL at WeChat (or asked again), checked later. */
  refundsProcessing: number;
}

const PAGE = 25;
/** What one refund's check may take at most (a query and a re-request with their retries), milliseconds. */
const PER_REFUND_MS = 12_000;

/**
 * The refund half of a reconcile pass: reads due PROCESSING and ABNORMAL refunds from the byReconcile index (REFUND shard) and
 * asks WeChat about each with its own pay version's client (查询退款): a final state is applied through
 * applyRefundReport (the same exactly-once path as a notify); a refund WeChat never received is asked again with
 * identical parameters; the rest are checked again later. Stops once `deadline` (epoch ms) is near.
 */
export async function reconcileRefunds(
  config: Config,
  providers: Providers,
  options: { deadline: number; all?: boolean; now?: () => Date },
): Promise<RefundReconcileSummary & { failed: number; more: boolean }> {
  const now = options.now ?? (() => new Date());
  const summary = { refundsChecked: 0, refundsSettled: 0, refundsProcessing: 0, failed: 0, more: false };
  const due = options.all ? '9999-12-31T23:59:59.999Z' : now().toISOString();
  const seen = new Set<string>();
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await refunds.listRefundsToReconcile(config.ordersTable, due, PAGE, startKey);
    startKey = page.lastKey;
    for (const refund of page.refunds) {
      if (seen.has(refund.outRefundNo)) continue;
      if (Date.now() + PER_REFUND_MS > options.deadline) {
        summary.more = true;
        return summary;
      }
      seen.add(refund.outRefundNo);
      summary.refundsChecked++;
      try {
        const provider = providerFor(refund, providers);
        const settled = provider ? await checkRefund(config, provider, refund) : false;
        if (settled) summary.refundsSettled++;
        else {
          summary.refundsProcessing++;
          await refunds.scheduleRefundCheck(
            config.ordersTable,
            refund.outRefundNo,
            nextRefundCheckAt(refund.createdAt, now()),
          );
        }
      } catch (error) {
        summary.failed++;
        logger.warn('reconcile: refund check failed; it stays due', {
          outRefundNo: refund.outRefundNo,
          error: (error as Error).message,
        });
      }
    }
  } while (startKey);
  return summary;
}

/** One PROCESSING or ABNORMAL refund: true when it reached SUCCESS or CLOSED. */
async function checkRefund(
  config: Config,
  provider: PaymentProvider,
  refund: RefundRecord,
): Promise<boolean> {
  const query = await provider.queryRefund(refund.outRefundNo, refund.appId);
  if (query.status === 'NOTEXIST') {
    // WeChat never received it (the request timed out on the way): ask again, same out_refund_no and parameters.
    const stored = await askWechat(config, provider, refund).catch((error: unknown) => {
      if (error instanceof UpstreamError && error.code === 'REFUND_REFUSED') return { status: 'CLOSED' };
      throw error;
    });
    return stored.status !== 'PROCESSING';
  }
  const outcome = await applyRefundReport(config, query);
  // ABNORMAL stays due (asked again later) until the merchant's re-application ends it SUCCESS or CLOSED.
  return (outcome === 'applied' || outcome === 'duplicate') && query.status !== 'ABNORMAL';
}
