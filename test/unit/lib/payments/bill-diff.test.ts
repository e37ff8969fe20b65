import { describe, expect, it } from 'vitest';
import { diffBill, differenceCount, ownLines } from '#lib/payments/bill-diff';
import type { LedgerRefund } from '#lib/repositories/ledger-repository';
import type { OrderRecord } from '#lib/repositories/order-repository';
import type { BillPayment, BillRefund, TradeBill } from '#lib/wechat-pay/bill';

const DAY = '2026-11-28';

function order(outTradeNo: string, fields: Partial<OrderRecord> = {}): OrderRecord {
  return {
    outTradeNo,
    userId: 'u1',
    planId: 'monthly',
    description: '会员 月卡',
    totalFee: 1800,
    status: 'PAID',
    payVersion: 'v2',
    createdAt: '2026-11-28T01:00:00.000Z',
    timeExpire: '2026-11-28T03:00:00.000Z',
    transactionId: `tx-${outTradeNo}`,
    paidAt: '2026-11-28T01:05:00.000Z',
    ledgerDay: DAY,
    ...fields,
  };
}

function payment(outTradeNo: string, fields: Partial<BillPayment> = {}): BillPayment {
  return {
    kind: 'payment',
    at: '2026-11-28T01:05:00.000Z',
    appId: 'wx2421b1c4370ec43b',
    mchId: '10000100',
    transactionId: `tx-${outTradeNo}`,
    outTradeNo,
    totalFee: 1800,
    settlementFee: 1800,
    ...fields,
  };
}

function refundLine(outRefundNo: string, fields: Partial<BillRefund> = {}): BillRefund {
  return {
    kind: 'refund',
    at: '2026-11-28T06:00:00.000Z',
    appId: 'wx2421b1c4370ec43b',
    mchId: '10000100',
    transactionId: 'tx-R',
    outTradeNo: 'R',
    refundId: `id-${outRefundNo}`,
    outRefundNo,
    refundFee: 600,
    refundStatus: 'SUCCESS',
    tradeState: 'REFUND',
    ...fields,
  };
}

function refund(outRefundNo: string, fields: Partial<LedgerRefund> = {}): LedgerRefund {
  return {
    outRefundNo,
    refundOf: 'R',
    amount: 600,
    status: 'SUCCESS',
    createdAt: '2026-11-28T06:00:00.000Z',
    successAt: '2026-11-28T06:00:05.000Z',
    ledgerDay: DAY,
    ...fields,
  };
}

function bill(payments: BillPayment[], refunds: BillRefund[] = []): TradeBill {
  return {
    payments,
    refunds,
    summary: { count: payments.length + refunds.length, settlementTotal: 0, refundTotal: 0 },
  };
}

describe('ownLines', () => {
  it('keeps the lines of our AppIDs and counts those of other apps on the same mchid', () => {
    // Prepare: a mini-program payment, an H5 payment, and another app's payment and refund
    const H5 = 'wx8888888888888888';
    const whole = bill(
      [payment('A'), payment('H', { appId: H5 }), payment('X', { appId: 'wxotherapp0000000' })],
      [refundLine('RF1'), refundLine('RFX', { appId: 'wxotherapp0000000' })],
    );
    // Act
    const { bill: ours, otherApps } = ownLines(whole, ['wx2421b1c4370ec43b', H5]);
    // Assess: the diff never sees another app's trade (no bill_not_credited exception for it)
    expect(ours.payments.map((line) => line.outTradeNo)).toEqual(['A', 'H']);
    expect(ours.refunds.map((line) => line.outRefundNo)).toEqual(['RF1']);
    expect(ours.summary).toBe(whole.summary);
    expect(otherApps).toBe(2);
    const diff = diffBill({
      date: DAY,
      bill: ours,
      otherApps,
      ledger: { orders: [order('A'), order('H')], refunds: [refund('RF1')] },
    });
    expect([diff.matched, diff.otherApps, differenceCount(diff)]).toEqual([3, 2, 0]);
  });
});

describe('diffBill', () => {
  it('matches every line that agrees with the ledger, and finds no difference', () => {
    // Act
    const diff = diffBill({
      date: DAY,
      bill: bill([payment('A'), payment('B')], [refundLine('RF1')]),
      ledger: { orders: [order('A'), order('B', { status: 'REFUNDED' })], refunds: [refund('RF1')] },
    });

    // Assess
    expect(diff).toEqual({
      date: DAY,
      matched: 3,
      otherApps: 0,
      paidNotCredited: [],
      creditedNotInBill: [],
      amountMismatch: [],
      refundsNotRecorded: [],
      refundsNotInBill: [],
    });
    expect(differenceCount(diff)).toBe(0);
  });

  it('lists paid lines we did not credit: PENDING (to settle), CLOSED, absent, paid under another transaction_id', () => {
    // Act
    const diff = diffBill({
      date: DAY,
      bill: bill([payment('PEND'), payment('CLOSE'), payment('GONE'), payment('OTHER')]),
      ledger: { orders: [order('OTHER', { transactionId: 'tx-first' })], refunds: [] },
      lookedUp: {
        orders: [
          order('PEND', { status: 'PENDING', ledgerDay: undefined }),
          order('CLOSE', { status: 'CLOSED' }),
        ],
      },
    });

    // Assess
    expect(diff.paidNotCredited).toEqual([
      { outTradeNo: 'PEND', transactionId: 'tx-PEND', billFee: 1800, ourStatus: 'PENDING' },
      { outTradeNo: 'CLOSE', transactionId: 'tx-CLOSE', billFee: 1800, ourStatus: 'CLOSED' },
      { outTradeNo: 'GONE', transactionId: 'tx-GONE', billFee: 1800, ourStatus: 'ABSENT' },
      { outTradeNo: 'OTHER', transactionId: 'tx-OTHER', billFee: 1800, ourStatus: 'PAID' },
    ]);
    expect(diff.matched).toBe(0);
    // OTHER is in the bill (under another transaction), so it is not also "credited, not in bill".
    expect(diff.creditedNotInBill).toEqual([]);
  });

  it('matches an order credited on another day (or before ledgerDay existed) found by its out_trade_no', () => {
    // Act
    const diff = diffBill({
      date: DAY,
      bill: bill([payment('OLD')]),
      ledger: { orders: [], refunds: [] },
      lookedUp: { orders: [order('OLD', { ledgerDay: undefined })] },
    });

    // Assess
    expect(diff.matched).toBe(1);
    expect(differenceCount(diff)).toBe(0);
  });

  it('lists amount mismatches of payments and refunds in integer fen', () => {
    // Act
    const diff = diffBill({
      date: DAY,
      bill: bill([payment('A', { totalFee: 1700 })], [refundLine('RF1', { refundFee: 500 })]),
      ledger: { orders: [order('A')], refunds: [refund('RF1')] },
    });

    // Assess
    expect(diff.amountMismatch).toEqual([
      { kind: 'payment', outTradeNo: 'A', id: 'tx-A', billFee: 1700, ourFee: 1800 },
      { kind: 'refund', outTradeNo: 'R', id: 'RF1', billFee: 500, ourFee: 600 },
    ]);
    expect(diff.matched).toBe(0);
  });

  it('lists credited orders of the day the bill lacks, but not PENDING or CLOSED ones', () => {
    // Act
    const diff = diffBill({
      date: DAY,
      bill: bill([]),
      ledger: { orders: [order('A'), order('B', { status: 'CLOSED' })], refunds: [] },
    });

    // Assess
    expect(diff.creditedNotInBill).toEqual([{ outTradeNo: 'A', transactionId: 'tx-A', ourFee: 1800 }]);
  });

  it('lists refunds we do not know (or hold CLOSED while the bill says SUCCESS) and ours the bill lacks', () => {
    // Act
    const diff = diffBill({
      date: DAY,
      bill: bill(
        [],
        [
          refundLine('UNKNOWN'),
          refundLine('CLOSED-HERE'),
          refundLine('LATER', { refundStatus: 'PROCESSING' }),
        ],
      ),
      ledger: {
        orders: [],
        refunds: [
          refund('MISSING'),
          // Requested the day before, succeeded today: on the day before's bill, so not missing from this one.
          refund('YESTERDAY', { createdAt: '2026-11-27T15:59:00.000Z' }),
        ],
      },
      lookedUp: {
        refunds: [
          refund('CLOSED-HERE', { status: 'CLOSED', ledgerDay: undefined }),
          // Requested today, still PROCESSING for us: matched by out_refund_no (its ledger day comes later).
          refund('LATER', { status: 'PROCESSING', ledgerDay: undefined }),
        ],
      },
    });

    // Assess
    expect(diff.refundsNotRecorded).toEqual([
      {
        outTradeNo: 'R',
        outRefundNo: 'UNKNOWN',
        refundId: 'id-UNKNOWN',
        billFee: 600,
        billStatus: 'SUCCESS',
        ourStatus: 'ABSENT',
      },
      {
        outTradeNo: 'R',
        outRefundNo: 'CLOSED-HERE',
        refundId: 'id-CLOSED-HERE',
        billFee: 600,
        billStatus: 'SUCCESS',
        ourStatus: 'CLOSED',
      },
    ]);
    expect(diff.refundsNotInBill).toEqual([{ outTradeNo: 'R', outRefundNo: 'MISSING', ourFee: 600 }]);
    expect(diff.matched).toBe(1);
    expect(differenceCount(diff)).toBe(3);
  });

  it('finds no difference on an empty day (NO_STATEMENT_EXIST) with an empty ledger', () => {
    // Act
    const diff = diffBill({
      date: DAY,
      bill: bill([]),
      ledger: { orders: [], refunds: [] },
    });

    // Assess
    expect(differenceCount(diff)).toBe(0);
    expect(diff.matched).toBe(0);
  });
});
