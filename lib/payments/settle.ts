import { randomInt } from 'node:crypto';
import type { PaymentReport } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import { PaymentRejectedError } from '#lib/errors';
import { logger } from '#lib/logger';
import { countPaymentException } from '#lib/metrics';
import { findPlan } from '#lib/plans';
import * as exceptions from '#lib/repositories/exception-repository';
import type { OrderRecord, OwnerSnapshot } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import * as users from '#lib/repositories/user-repository';
import { assertOrderAppId, assertOurMerchant, membershipCredit, standingFor } from './rules';

export type SettleOutcome = 'credited' | 'duplicate';

/** What became of a reported payment: credited, a duplicate, or recorded as a payment exception. */
export type ReportOutcome = SettleOutcome | 'exception';

function ownerMissing(order: OrderRecord): PaymentRejectedError {
  return new PaymentRejectedError(
    'owner_missing',
    'order owner no longer exists',
    JSON.stringify({ outTradeNo: order.outTradeNo }),
    order.totalFee,
  );
}

/** How long a settle may keep retrying contention, milliseconds: well inside WeChat's 5 s notify window. */
const SETTLE_BUDGET_MS = 3000;

/**
 * Credits a payment WeChat reported (v2/v3 notify or order query) exactly once, keyed on out_trade_no:
 * checks appid (the one the order was made with)/mchid/currency/amount against our records, then one
 * transaction (order PENDING → PAID, membership max(now, end) + plan days, role 1). A membership that has not
 * ended is extended in place (payments of one user commute: no version race); an ended or absent one is set
 * on the user's version. The first attempt uses the owner snapshot the order was opened with (two DynamoDB
 * requests in all: the order read and the transaction); a refused attempt retries on the user as DynamoDB
 * returned it (a conflicting transaction after a jittered pause), within a 3 s budget, never taken for a
 * duplicate.
 * Returns 'duplicate' when the order is already PAID with the same transaction_id. Throws
 * PaymentRejectedError for anything that must not be credited (nothing is written then), or Error when
 * contention outlasts the budget or the order's plan or user is missing (WeChat retries).
 */
export async function settlePayment(
  config: Config,
  report: PaymentReport,
  now: () => Date = () => new Date(),
): Promise<SettleOutcome> {
  assertOurMerchant(report, config);
  const stored = await orders.getOrder(config.ordersTable, report.outTradeNo);
  if (stored) assertOrderAppId(stored, report, config.appId);
  if (standingFor(stored, report) === 'duplicate') return 'duplicate';
  const order = stored as OrderRecord;
  const plan = findPlan(order.planId);
  if (!plan) throw new Error(`order ${order.outTradeNo} references a missing plan`);
  // The owner as the order saw it, when it was opened recently enough to carry it: no read of the user. Each
  // write's condition catches a stale snapshot, which is then retried on the user DynamoDB returns.
  let user: OwnerSnapshot | undefined =
    order.ownerAtOrder ?? (await users.getUser(config.usersTable, order.userId));
  if (!user) throw ownerMissing(order);
  let extendRefused = false;

  const context = {
    outTradeNo: report.outTradeNo,
    transactionId: report.transactionId,
    paidVia: report.paidVia,
  };
  const deadline = Date.now() + SETTLE_BUDGET_MS;
  for (let attempt = 1; ; attempt++) {
    const at = now();
    const membership = membershipCredit(user, at, plan.days, extendRefused);
    const result = await orders.markOrderPaidAndExtendMembership({
      ordersTable: config.ordersTable,
      usersTable: config.usersTable,
      order,
      paid: report,
      membership,
      now: at.toISOString(),
    });
    if (result.kind === 'committed') {
      logger.info('payment credited', { ...context, attempt, membership: membership.kind });
      return 'credited';
    }
    if (result.kind === 'order_changed') {
      // Another delivery (or the order query) settled it first: DynamoDB returned the order as it is now.
      const current = result.order ?? (await orders.getOrder(config.ordersTable, report.outTradeNo));
      if (standingFor(current, report) === 'duplicate') return 'duplicate';
    }
    if (Date.now() > deadline) {
      throw new Error(
        `paid transition for ${report.outTradeNo} did not settle within ${SETTLE_BUDGET_MS} ms`,
      );
    }
    extendRefused = result.kind === 'user_changed' && membership.kind === 'extend';
    if (result.kind === 'user_changed') {
      // The owner as the refused write found it: retry at once on it (an extend that commutes, or a set on
      // its version). Absent: the owner is gone.
      if (!result.user) throw ownerMissing(order);
      user = result.user;
      continue;
    }
    // A conflicting transaction in flight (or an order that moved): back off, then read the owner afresh.
    await new Promise((resolve) => setTimeout(resolve, randomInt(5, Math.min(30 * attempt, 250) + 6)));
    const latest = await users.getUser(config.usersTable, order.userId);
    if (!latest) throw ownerMissing(order);
    user = latest;
  }
}

/**
 * Settles a validly signed payment report (notify, order query, reconciler) exactly once; a payment that
 * must never be credited (PaymentRejectedError) is stored once per (out_trade_no, transaction_id) as a
 * payment exception, logged as an error and counted (alarmed metric), and then answered 'exception' so the
 * caller acknowledges WeChat: acknowledged ⇔ durably recorded, never credited. Throws what settlePayment
 * throws otherwise (transient failures, so WeChat retries).
 */
export async function settleReport(config: Config, report: PaymentReport): Promise<ReportOutcome> {
  try {
    return await settlePayment(config, report);
  } catch (error) {
    if (!(error instanceof PaymentRejectedError)) throw error;
    const created = await exceptions.recordException(config.ordersTable, {
      outTradeNo: report.outTradeNo,
      transactionId: report.transactionId,
      reason: error.reason,
      orderFee: error.orderFee,
      reportedFee: report.totalFee,
      source: report.paidVia,
      at: new Date().toISOString(),
    });
    logger.error('payment exception: a verified payment cannot be credited', {
      outTradeNo: report.outTradeNo,
      transactionId: report.transactionId,
      reason: error.reason,
      detail: error.detail,
      firstSeen: created,
    });
    if (created) countPaymentException(error.reason);
    return 'exception';
  }
}
