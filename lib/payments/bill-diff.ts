import type {
  AmountMismatch,
  CreditedNotInBill,
  PaidNotCredited,
  RefundNotInBill,
  RefundNotRecorded,
} from '#lib/repositories/bill-repository';
import type { LedgerRefund } from '#lib/repositories/ledger-repository';
import type { OrderRecord } from '#lib/repositories/order-repository';
import { chinaDay, type TradeBill } from '#lib/wechat-pay/bill';

/** What a bill and a day's ledger disagree on (the report without its run facts). Amounts integer fen. */
export interface BillDiff {
  date: string;
  matched: number;
  /** Bill lines of other apps on the same mchid (another AppID): left out of the comparison. */
  otherApps: number;
  paidNotCredited: PaidNotCredited[];
  creditedNotInBill: CreditedNotInBill[];
  amountMismatch: AmountMismatch[];
  refundsNotRecorded: RefundNotRecorded[];
  refundsNotInBill: RefundNotInBill[];
}

export interface BillDiffInput {
  /** China-time day, YYYY-MM-DD. */
  date: string;
  /** The bill with only our AppIDs' lines (ownLines). */
  bill: TradeBill;
  /** Lines ownLines left out (other apps on the same mchid). */
  otherApps?: number;
  /** The day's ledger (byLedgerDay): orders paid and refunds succeeded that China day. */
  ledger: { orders: OrderRecord[]; refunds: LedgerRefund[] };
  /**
   * Records of bill lines the day's ledger lacks, looked up by key: orders by out_trade_no (paid on another day,
   * before ledgerDay existed, or not paid here), refunds by out_refund_no (requested that day, succeeded later).
   */
  lookedUp?: { orders?: OrderRecord[]; refunds?: LedgerRefund[] };
}

const CREDITED: ReadonlySet<string> = new Set(['PAID', 'REFUNDED']);

/**
 * Compares WeChat's trade bill of one day with our ledger of that day (对账). A payment line matches an order
 * credited (PAID or REFUNDED) under the same transaction_id and amount; otherwise it is paidNotCredited (order
 * absent, PENDING, CLOSED or paid under another transaction_id) or an amountMismatch. A refund line matches a
 * refund with the same out_refund_no and amount (unless we hold it CLOSED while the bill says SUCCESS). Orders
 * credited that day and absent from the bill are creditedNotInBill; successful refunds of that day absent from
 * the bill are refundsNotInBill, unless they were requested on another China day (the bill lists a refund on the
 * day it was requested). Pure; never throws.
 */
export function diffBill(input: BillDiffInput): BillDiff {
  const { date, bill, ledger } = input;
  const orders = new Map<string, OrderRecord>();
  for (const order of input.lookedUp?.orders ?? []) orders.set(order.outTradeNo, order);
  for (const order of ledger.orders) orders.set(order.outTradeNo, order);
  const refunds = new Map<string, LedgerRefund>();
  for (const refund of input.lookedUp?.refunds ?? []) refunds.set(refund.outRefundNo, refund);
  for (const refund of ledger.refunds) refunds.set(refund.outRefundNo, refund);

  const diff: BillDiff = {
    date,
    matched: 0,
    otherApps: input.otherApps ?? 0,
    paidNotCredited: [],
    creditedNotInBill: [],
    amountMismatch: [],
    refundsNotRecorded: [],
    refundsNotInBill: [],
  };

  const billed = new Set<string>();
  for (const line of bill.payments) {
    billed.add(line.outTradeNo);
    const order = orders.get(line.outTradeNo);
    if (order && CREDITED.has(order.status) && order.transactionId === line.transactionId) {
      if (order.totalFee === line.totalFee) diff.matched++;
      else {
        diff.amountMismatch.push({
          kind: 'payment',
          outTradeNo: line.outTradeNo,
          id: line.transactionId,
          billFee: line.totalFee,
          ourFee: order.totalFee,
        });
      }
      continue;
    }
    diff.paidNotCredited.push({
      outTradeNo: line.outTradeNo,
      transactionId: line.transactionId,
      billFee: line.totalFee,
      ourStatus: order?.status ?? 'ABSENT',
    });
  }
  for (const order of ledger.orders) {
    if (billed.has(order.outTradeNo) || !CREDITED.has(order.status)) continue;
    diff.creditedNotInBill.push({
      outTradeNo: order.outTradeNo,
      transactionId: order.transactionId ?? '',
      ourFee: order.totalFee,
    });
  }

  const billedRefunds = new Set<string>();
  for (const line of bill.refunds) {
    billedRefunds.add(line.outRefundNo);
    const refund = refunds.get(line.outRefundNo);
    if (!refund || (refund.status === 'CLOSED' && line.refundStatus === 'SUCCESS')) {
      diff.refundsNotRecorded.push({
        outTradeNo: line.outTradeNo,
        outRefundNo: line.outRefundNo,
        refundId: line.refundId,
        billFee: line.refundFee,
        billStatus: line.refundStatus,
        ourStatus: refund?.status ?? 'ABSENT',
      });
    } else if (refund.amount !== line.refundFee) {
      diff.amountMismatch.push({
        kind: 'refund',
        outTradeNo: line.outTradeNo,
        id: line.outRefundNo,
        billFee: line.refundFee,
        ourFee: refund.amount,
      });
    } else diff.matched++;
  }
  for (const refund of ledger.refunds) {
    if (billedRefunds.has(refund.outRefundNo) || refund.status !== 'SUCCESS') continue;
    const requestedAt = Date.parse(refund.createdAt ?? '');
    if (Number.isFinite(requestedAt) && chinaDay(new Date(requestedAt)) !== date) continue;
    diff.refundsNotInBill.push({
      outTradeNo: refund.refundOf,
      outRefundNo: refund.outRefundNo,
      ourFee: refund.amount,
    });
  }
  return diff;
}

/**
 * The lines of a bill that belong to us: payments and refunds under one of `appIds` (the mini-program's, and
 * the official account's for H5). A merchant account (mchid) often serves several apps; their trades are
 * not ours to reconcile. `otherApps` counts the lines left out. Pure.
 */
export function ownLines(bill: TradeBill, appIds: readonly string[]): { bill: TradeBill; otherApps: number } {
  const ours = (line: { appId: string }) => appIds.includes(line.appId);
  const payments = bill.payments.filter(ours);
  const refunds = bill.refunds.filter(ours);
  return {
    bill: { ...bill, payments, refunds },
    otherApps: bill.payments.length - payments.length + bill.refunds.length - refunds.length,
  };
}

/** How many differences a diff holds (every list's length). */
export function differenceCount(diff: BillDiff): number {
  return (
    diff.paidNotCredited.length +
    diff.creditedNotInBill.length +
    diff.amountMismatch.length +
    diff.refundsNotRecorded.length +
    diff.refundsNotInBill.length
  );
}
