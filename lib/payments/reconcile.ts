import type { PaymentProvider } from '#lib/clients/payment-provider';
import type { Config } from '#lib/config';
import { logger } from '#lib/logger';
import type { OrderRecord } from '#lib/repositories/order-repository';
import * as orders from '#lib/repositories/order-repository';
import { closePendingOrder } from './close';
import { reconcileRefunds } from './refunds';
import { isExpired, nextReconcileAt, type Providers, providerFor } from './rules';
import { settleReport } from './settle';

/** What one reconcile pass did. */
export interface ReconcileSummary {
  /** Orders looked at. */
  checked: number;
  /** Payments credited (lost notifies). */
  credited: number;
  /** Expired orders closed at WeChat and here. */
  closed: number;
  /** Orders still unpaid and not expired, checked again on their back-off plan. */
  stillPending: number;
  /** Payments recorded as payment exceptions. */
  exceptions: number;
  /** Orders whose check failed (WeChat or DynamoDB); they stay due and the next pass retries them. */
  failed: number;
  /** Whether due orders (or refunds) were left for the next pass because the budget ran out. */
  more: boolean;
  /** PROCESSING refunds looked at (after the orders). */
  refundsChecked: number;
  /** Refunds that reached a final state. */
  refundsSettled: number;
  /** Refunds still PROCESSING, checked again later. */
  refundsProcessing: number;
}

/** Orders read from the byReconcile index per page. */
const PAGE = 25;
/** How often an order of the other pay version is looked at again, milliseconds. */
const OTHER_VERSION_RECHECK_MS = 3_600_000;
/** What one order's check may take at most (a WeChat close and query with their retries), milliseconds. */
const PER_ORDER_MS = 12_000;

/**
 * One reconcile pass (WeChat Pay 查询订单 / 关闭订单, "query when the notify is missing, close unpaid orders"):
 * reads due PENDING orders from the sparse byReconcile index (never a Scan), oldest check first, and for
 * each, with the client of the order's own pay version: credits a SUCCESS through the very same exactly-once settle as a notify, closes an expired one at
 * WeChat and here (a paid-after-all close is settled instead), marks one WeChat reports CLOSED, and moves
 * the rest to their next back-off step (1, 5, 15, 30, 60 minutes after creation, then expiry). `all`
 * checks every PENDING order now. Stops taking new orders once `deadline` (epoch ms) is less than one
 * order's budget away; the orders left stay due and the next pass continues with them. Overlapping passes
 * and a pass racing a notify credit once (settle is keyed on out_trade_no). Then the PROCESSING refunds
 * (reconcileRefunds, lib/payments/refunds.ts): the orders stop a quarter of the remaining time before `deadline`,
 * so refunds are checked every pass (a pass too short for that, under 16 s, gives the orders all of it).
 */
export async function reconcile(
  config: Config,
  providers: Providers,
  options: { deadline: number; all?: boolean; now?: () => Date },
): Promise<ReconcileSummary> {
  // The orders stop a quarter of the time early, so the refunds always get their turn, unless that would leave
  // the orders less than one order's budget (a short pass: the orders first, the refunds with what is left).
  const remaining = Math.max(0, options.deadline - Date.now());
  const ordersDeadline =
    (remaining * 3) / 4 >= PER_ORDER_MS ? options.deadline - remaining / 4 : options.deadline;
  const summary = await reconcileOrders(config, providers, { ...options, deadline: ordersDeadline });
  const refunds = await reconcileRefunds(config, providers, options);
  return {
    ...summary,
    failed: summary.failed + refunds.failed,
    more: summary.more || refunds.more,
    refundsChecked: refunds.refundsChecked,
    refundsSettled: refunds.refundsSettled,
    refundsProcessing: refunds.refundsProcessing,
  };
}

type OrderSummary = Omit<ReconcileSummary, 'refundsChecked' | 'refundsSettled' | 'refundsProcessing'>;

/** The order half of a pass (see reconcile). */
async function reconcileOrders(
  config: Config,
  providers: Providers,
  options: { deadline: number; all?: boolean; now?: () => Date },
): Promise<OrderSummary> {
  const now = options.now ?? (() => new Date());
  const summary: OrderSummary = {
    checked: 0,
    credited: 0,
    closed: 0,
    stillPending: 0,
    exceptions: 0,
    failed: 0,
    more: false,
  };
  const due = options.all ? '9999-12-31T23:59:59.999Z' : now().toISOString();
  const seen = new Set<string>();
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await orders.listOrdersToReconcile(config.ordersTable, due, PAGE, startKey);
    startKey = page.lastKey;
    for (const order of page.orders) {
      if (seen.has(order.outTradeNo)) continue;
      if (Date.now() + PER_ORDER_MS > options.deadline) {
        summary.more = true;
        return summary;
      }
      seen.add(order.outTradeNo);
      summary.checked++;
      try {
        await checkOrder(config, providerFor(order, providers), order, now(), summary);
      } catch (error) {
        summary.failed++;
        logger.warn('reconcile: order check failed; it stays due', {
          outTradeNo: order.outTradeNo,
          error: (error as Error).message,
        });
      }
    }
  } while (startKey);
  return summary;
}

async function checkOrder(
  config: Config,
  provider: PaymentProvider | undefined,
  order: OrderRecord,
  now: Date,
  summary: OrderSummary,
): Promise<void> {
  if (!provider) {
    // Only a client of the order's own pay version can query or close it, and that version is no longer
    // configured (no migration window): it stays PENDING, checked hourly and logged (see the README).
    logger.warn('reconcile: order of the other pay version left PENDING', {
      outTradeNo: order.outTradeNo,
      payVersion: order.payVersion,
    });
    const later = new Date(now.getTime() + OTHER_VERSION_RECHECK_MS).toISOString();
    await orders.scheduleReconcile(config.ordersTable, order.outTradeNo, later);
    summary.stillPending++;
    return;
  }
  if (isExpired(order, now)) {
    const closed = await closePendingOrder(config, provider, order, now);
    if (closed.kind === 'closed') summary.closed++;
    else count(summary, closed.outcome);
    return;
  }
  const query = await provider.queryOrder(order.outTradeNo, order.appId);
  if ('report' in query) {
    count(summary, await settleReport(config, query.report));
    return;
  }
  if (query.tradeState === 'CLOSED' || query.tradeState === 'REVOKED') {
    await orders.markOrderClosed(config.ordersTable, order.outTradeNo, now.toISOString());
    summary.closed++;
    return;
  }
  // NOTPAY, USERPAYING, PAYERROR, NOTEXIST (prepay never reached WeChat): left alone until expiry.
  await orders.scheduleReconcile(config.ordersTable, order.outTradeNo, nextReconcileAt(order, now));
  summary.stillPending++;
}

function count(summary: OrderSummary, outcome: string): void {
  if (outcome === 'credited') summary.credited++;
  else if (outcome === 'exception') summary.exceptions++;
}
