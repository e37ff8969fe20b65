import type { PaymentProvider } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import { BadRequestError, type BillDifferenceReason, UpstreamError } from '#lib/errors';
import { logger } from '#lib/logger';
import { countBillDifferences, countPaymentException } from '#lib/metrics';
import type { BillReport, PaidNotCredited } from '#lib/repositories/bill-repository';
import * as reports from '#lib/repositories/bill-repository';
import * as exceptions from '#lib/repositories/exception-repository';
import type { LedgerRefund } from '#lib/repositories/ledger-repository';
import * as ledgers from '#lib/repositories/ledger-repository';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import { BillFormatError, chinaDay, isDay, parseTradeBill, type TradeBill } from '#lib/wechat-pay/bill';
import { type BillDiff, diffBill, differenceCount, ownLines } from './bill-diff';
import { type Providers, providerFor } from './rules';
import { settleReport } from './settle';

/**
 * The daily bill (对账): WeChat's trade bill of a China-time day against our ledger of that day. Payments WeChat
 * has and we hold PENDING are credited through the order query + the one exactly-once settle; every other
 * difference is a payment exception (recorded once, whichever run finds it); the report is stored and its
 * differences counted.
 */

const EMPTY_BILL: TradeBill = {
  payments: [],
  refunds: [],
  summary: { count: 0, settlementTotal: 0, refundTotal: 0 },
};
/** What settling one PENDING order may take at most (an order query with its retry, the settle), milliseconds. */
const PER_SETTLE_MS = 12_000;

/**
 * The day a request names: `YYYY-MM-DD`, a real date, not after today in China time. Throws BadRequestError
 * INVALID_DATE / FUTURE_DATE.
 */
export function billDay(text: string | undefined, now: Date): string {
  if (!text || !isDay(text)) throw new BadRequestError('date 应为 YYYY-MM-DD 格式的日期', 'INVALID_DATE');
  if (text > chinaDay(now)) throw new BadRequestError('不能对账未来的日期', 'FUTURE_DATE');
  return text;
}

/** The China-time day before `now` (what the scheduled run checks). */
export function previousChinaDay(now: Date): string {
  return chinaDay(new Date(now.getTime() - 86_400_000));
}

/**
 * Checks one day (YYYY-MM-DD, China time) and stores its report: downloads the trade bill with the configured
 * version's client (the first of `providers`; a bill is per merchant, whatever the API version), parses it, reads
 * the day's ledger (byLedgerDay) and the records of lines it lacks, diffs, settles the PENDING ones, records the
 * other differences as payment exceptions and counts them (metric BillDifferences). `not_ready` (WeChat still
 * making the bill) is stored as such and nothing else is done. Stops settling once `deadline` (epoch ms) is less
 * than one settle away: those orders stay PENDING for the reconciler and are listed with outcome `failed`.
 * Throws UpstreamError (WECHAT_PAY_BILL_CORRUPT) on an unreadable bill, and what the clients throw.
 */
export async function checkBill(
  config: Config,
  providers: Providers,
  day: string,
  options: { deadline: number; now?: () => Date },
): Promise<BillReport> {
  const now = options.now ?? (() => new Date());
  const list: readonly PaymentProvider[] = Array.isArray(providers)
    ? providers
    : [providers as PaymentProvider];
  const provider = list[0] as PaymentProvider;
  const download = await provider.downloadTradeBill(day);
  const base = { date: day, version: provider.version, checkedAt: now().toISOString() };
  if (download.kind === 'not_ready') {
    const report: BillReport = {
      ...base,
      status: 'not_ready',
      ...noDifferences(day),
      differences: 0,
      totals: { lines: 0, paymentFee: 0, refundFee: 0 },
    };
    await reports.saveBillReport(config.ordersTable, report);
    logger.info('bill not ready at WeChat; checked again later', { date: day });
    return report;
  }
  let whole = EMPTY_BILL;
  if (download.kind === 'bill') {
    try {
      whole = parseTradeBill(download.text);
    } catch (error) {
      if (!(error instanceof BillFormatError)) throw error;
      throw new UpstreamError('微信支付账单格式异常', 'WECHAT_PAY_BILL_CORRUPT', error.message);
    }
  }

  // Lines of other apps on the same mchid are not ours to reconcile (the totals stay the bill's own).
  const appIds = config.mpAppId ? [config.appId, config.mpAppId] : [config.appId];
  const { bill, otherApps } = ownLines(whole, appIds);
  const ledger = await ledgers.ledgerForDay(config.ordersTable, day);
  const diff = diffBill({ date: day, bill, otherApps, ledger, lookedUp: await lookUp(config, bill, ledger) });
  await settleOrRecord(config, list, diff, bill, options.deadline);

  const report: BillReport = {
    ...base,
    ...diff,
    status: download.kind === 'bill' ? 'done' : 'empty',
    differences: differenceCount(diff),
    totals: {
      lines: whole.summary.count,
      paymentFee: whole.summary.orderTotal ?? whole.summary.settlementTotal,
      refundFee: whole.summary.requestedRefundTotal ?? whole.summary.refundTotal,
    },
  };
  await reports.saveBillReport(config.ordersTable, report);
  countBillDifferences(report.differences);
  const log = report.differences > 0 ? logger.error.bind(logger) : logger.info.bind(logger);
  log('daily bill checked', {
    date: day,
    status: report.status,
    matched: report.matched,
    differences: report.differences,
  });
  return report;
}

/** Days before yesterday (China time) the scheduled run also checks when they have no final report. */
export const BILL_BACKFILL_DAYS = 6;
/** A backfill day is not started with less time than this before the deadline, ms (a download and its settles). */
const BACKFILL_START_MS = 30_000;

/**
 * The scheduled run: the previous China day, then each of the BILL_BACKFILL_DAYS days before it that has no
 * final report (every run of its day failed, or the stage was deployed since), newest first, while at least
 * BACKFILL_START_MS are left. A day with a final report (done or empty) is never fetched again, so the hourly
 * retries after a `not_ready` stop once one run got through; the reports are read in one BatchGetItem.
 * Returns the previous day's report; a backfill day that fails is logged and ends the backfill (the next run
 * tries it again). Throws what checkBill throws for the previous day.
 */
export async function checkRecentDays(
  config: Config,
  providers: Providers,
  options: { deadline: number; now?: () => Date },
): Promise<BillReport> {
  const now = (options.now ?? (() => new Date()))();
  const days = Array.from({ length: 1 + BILL_BACKFILL_DAYS }, (_, back) =>
    previousChinaDay(new Date(now.getTime() - back * 86_400_000)),
  );
  const stored = await reports.getBillReports(config.ordersTable, days);
  const [yesterday, ...earlier] = days as [string, ...string[]];
  const final = (day: string) => {
    const report = stored.get(day);
    return report && report.status !== 'not_ready' ? report : undefined;
  };
  const previous = final(yesterday) ?? (await checkBill(config, providers, yesterday, options));
  for (const day of earlier) {
    if (final(day)) continue;
    if (options.deadline - Date.now() < BACKFILL_START_MS) break;
    try {
      const report = await checkBill(config, providers, day, options);
      logger.info('bill backfilled', { date: day, status: report.status, differences: report.differences });
    } catch (error) {
      logger.error('bill backfill failed; the next run tries again', {
        date: day,
        error: (error as Error).message,
      });
      break;
    }
  }
  return previous;
}

function noDifferences(day: string): BillDiff {
  return {
    date: day,
    matched: 0,
    otherApps: 0,
    paidNotCredited: [],
    creditedNotInBill: [],
    amountMismatch: [],
    refundsNotRecorded: [],
    refundsNotInBill: [],
  };
}

/** The stored records of bill lines the day's ledger does not hold (by key, in batches). */
function lookUp(
  config: Config,
  bill: TradeBill,
  ledger: { orders: OrderRecord[]; refunds: LedgerRefund[] },
): Promise<{ orders: OrderRecord[]; refunds: LedgerRefund[] }> {
  const haveOrders = new Set(ledger.orders.map((order) => order.outTradeNo));
  const haveRefunds = new Set(ledger.refunds.map((refund) => refund.outRefundNo));
  return ledgers.getLedgerItems(config.ordersTable, {
    outTradeNos: bill.payments.map((line) => line.outTradeNo).filter((no) => !haveOrders.has(no)),
    outRefundNos: bill.refunds.map((line) => line.outRefundNo).filter((no) => !haveRefunds.has(no)),
  });
}

/** Credits the PENDING ones (order query + settle) and records every other difference as a payment exception. */
async function settleOrRecord(
  config: Config,
  providers: readonly PaymentProvider[],
  diff: BillDiff,
  bill: TradeBill,
  deadline: number,
): Promise<void> {
  const source = `bill-${providers[0]?.version ?? 'v2'}`;
  const at = new Date().toISOString();
  const record = async (
    reason: BillDifferenceReason,
    fields: {
      outTradeNo: string;
      transactionId: string;
      orderFee?: number;
      reportedFee: number;
      outRefundNo?: string;
    },
  ) => {
    const created = await exceptions.recordException(config.ordersTable, {
      ...fields,
      reason,
      source,
      at,
      billDate: diff.date,
    });
    if (created) countPaymentException(reason);
  };

  for (const entry of diff.paidNotCredited) {
    if (entry.ourStatus === 'PENDING') {
      const outcome = await settlePending(config, providers, entry, deadline);
      // settleReport records its own exception (e.g. amount_mismatch) when it refuses to credit.
      if (outcome !== 'not_paid') {
        entry.outcome = outcome;
        continue;
      }
    }
    entry.outcome = 'exception';
    await record('bill_not_credited', {
      outTradeNo: entry.outTradeNo,
      transactionId: entry.transactionId,
      reportedFee: entry.billFee,
    });
  }
  for (const entry of diff.creditedNotInBill) {
    await record('bill_missing_payment', {
      outTradeNo: entry.outTradeNo,
      transactionId: entry.transactionId,
      orderFee: entry.ourFee,
      reportedFee: 0,
    });
  }
  for (const entry of diff.amountMismatch) {
    const refund = entry.kind === 'refund';
    const line = refund ? bill.refunds.find((r) => r.outRefundNo === entry.id) : undefined;
    await record('bill_amount_mismatch', {
      outTradeNo: entry.outTradeNo,
      transactionId: refund ? (line?.transactionId ?? '') : entry.id,
      ...(refund ? { outRefundNo: entry.id } : {}),
      orderFee: entry.ourFee,
      reportedFee: entry.billFee,
    });
  }
  for (const entry of diff.refundsNotRecorded) {
    await record('bill_refund_not_recorded', {
      outTradeNo: entry.outTradeNo,
      transactionId: entry.refundId,
      outRefundNo: entry.outRefundNo,
      reportedFee: entry.billFee,
    });
  }
  for (const entry of diff.refundsNotInBill) {
    await record('bill_refund_missing', {
      outTradeNo: entry.outTradeNo,
      transactionId: '',
      outRefundNo: entry.outRefundNo,
      orderFee: entry.ourFee,
      reportedFee: 0,
    });
  }
}

/**
 * A paid order we hold PENDING: WeChat's signed order query (the bill itself is unsigned in v2), then the same
 * exactly-once settle as a notify. A query that does not say SUCCESS is `not_paid` (recorded by the caller); a
 * failed query (or no time left) is `failed`: the order stays PENDING and due for the reconciler.
 */
async function settlePending(
  config: Config,
  providers: readonly PaymentProvider[],
  entry: PaidNotCredited,
  deadline: number,
): Promise<NonNullable<PaidNotCredited['outcome']> | 'not_paid'> {
  if (Date.now() + PER_SETTLE_MS > deadline) return 'failed';
  const order = await orders.getOrder(config.ordersTable, entry.outTradeNo);
  const provider = order ? providerFor(order, providers) : undefined;
  if (!provider) return 'failed';
  try {
    const query = await provider.queryOrder(entry.outTradeNo, order?.appId);
    if (!('report' in query)) return 'not_paid';
    return await settleReport(config, query.report);
  } catch (error) {
    logger.warn('bill: settling a paid PENDING order failed; the reconciler retries it', {
      outTradeNo: entry.outTradeNo,
      error: (error as Error).message,
    });
    return 'failed';
  }
}
