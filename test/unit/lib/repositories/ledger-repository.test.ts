import { BatchGetCommand, DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { billDay, previousChinaDay } from '#lib/payments/bill';
import { type BillReport, STORED_PER_LIST, saveBillReport } from '#lib/repositories/bill-repository';
import { getLedgerItems, ledgerForDay } from '#lib/repositories/ledger-repository';
import { anOrder } from '#test/helpers/builders';

const ddb = mockClient(DynamoDBDocumentClient);
const ORDERS = 'wechat-miniprogram-backend-test-orders';

beforeEach(() => ddb.reset());

const refundItem = {
  outTradeNo: 'REFUND#RF1',
  kind: 'refund',
  outRefundNo: 'RF1',
  refundOf: 'ORDER1',
  amount: 600,
  status: 'SUCCESS',
  ledgerDay: '2026-11-28',
};

describe('ledgerForDay', () => {
  it('reads every page of byLedgerDay for the day and splits orders from refunds', async () => {
    // Prepare
    const order = { ...anOrder(), status: 'PAID', ledgerDay: '2026-11-28' };
    ddb
      .on(QueryCommand)
      .resolvesOnce({ Items: [order], LastEvaluatedKey: { outTradeNo: order.outTradeNo } })
      .resolvesOnce({ Items: [refundItem] });

    // Act
    const ledger = await ledgerForDay(ORDERS, '2026-11-28');

    // Assess
    expect(ledger.orders).toEqual([order]);
    expect(ledger.refunds).toEqual([
      { outRefundNo: 'RF1', refundOf: 'ORDER1', amount: 600, status: 'SUCCESS', ledgerDay: '2026-11-28' },
    ]);
    const queries = ddb.commandCalls(QueryCommand).map((call) => call.args[0].input);
    expect(queries[0]).toMatchObject({
      TableName: ORDERS,
      IndexName: 'byLedgerDay',
      KeyConditionExpression: 'ledgerDay = :day',
      ExpressionAttributeValues: { ':day': '2026-11-28' },
    });
    expect(queries[1]?.ExclusiveStartKey).toEqual({ outTradeNo: order.outTradeNo });
  });
});

describe('getLedgerItems', () => {
  it('batches 100 keys per request, refunds under REFUND#, and retries unprocessed keys', async () => {
    // Prepare
    const outTradeNos = Array.from({ length: 150 }, (_, i) => `ORDER${String(i).padStart(4, '0')}`);
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { [ORDERS]: [{ ...anOrder(), outTradeNo: 'ORDER0000' }] },
        UnprocessedKeys: { [ORDERS]: { Keys: [{ outTradeNo: 'ORDER0001' }] } },
      })
      .resolvesOnce({ Responses: { [ORDERS]: [{ ...anOrder(), outTradeNo: 'ORDER0001' }] } })
      .resolvesOnce({ Responses: { [ORDERS]: [refundItem] } });

    // Act
    const found = await getLedgerItems(ORDERS, { outTradeNos, outRefundNos: ['RF1'] });

    // Assess
    const requests = ddb
      .commandCalls(BatchGetCommand)
      .map((call) => call.args[0].input.RequestItems?.[ORDERS]);
    expect(requests.map((request) => request?.Keys?.length)).toEqual([100, 1, 51]);
    expect(requests[2]?.Keys?.at(-1)).toEqual({ outTradeNo: 'REFUND#RF1' });
    expect(requests.every((request) => request?.ConsistentRead === true)).toBe(true);
    expect(found.orders.map((order) => order.outTradeNo)).toEqual(['ORDER0000', 'ORDER0001']);
    expect(found.refunds.map((refund) => refund.outRefundNo)).toEqual(['RF1']);
  });
});

describe('saveBillReport', () => {
  it('stores the report under BILL#<date>, each list cut to STORED_PER_LIST and marked truncated', async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    const many = Array.from({ length: STORED_PER_LIST + 5 }, (_, i) => ({
      outTradeNo: `O${i}`,
      transactionId: `T${i}`,
      ourFee: 1800,
    }));
    const report: BillReport = {
      date: '2026-11-28',
      status: 'done',
      version: 'v2',
      checkedAt: '2026-11-29T02:30:00.000Z',
      matched: 0,
      paidNotCredited: [],
      creditedNotInBill: many,
      amountMismatch: [],
      refundsNotRecorded: [],
      refundsNotInBill: [],
      differences: many.length,
      totals: { lines: 0, paymentFee: 0, refundFee: 0 },
    };

    // Act
    await saveBillReport(ORDERS, report);

    // Assess
    const item = ddb.commandCalls(PutCommand)[0]?.args[0].input.Item as Record<string, unknown>;
    expect(item).toMatchObject({
      outTradeNo: 'BILL#2026-11-28',
      kind: 'bill',
      truncated: true,
      differences: 205,
    });
    expect(item.creditedNotInBill).toHaveLength(STORED_PER_LIST);
  });
});

describe('billDay and previousChinaDay', () => {
  it('takes a real day up to today in China time, and names yesterday in China time', () => {
    // Prepare: 2026-11-28 17:00 UTC is already 2026-11-29 01:00 in China.
    const now = new Date('2026-11-28T17:00:00.000Z');

    // Assess
    expect(billDay('2026-11-29', now)).toBe('2026-11-29');
    expect(() => billDay('2026-11-30', now)).toThrow(
      expect.objectContaining({ code: 'FUTURE_DATE', status: 400 }),
    );
    expect(() => billDay('2026-11-31', now)).toThrow(expect.objectContaining({ code: 'INVALID_DATE' }));
    expect(() => billDay(undefined, now)).toThrow(expect.objectContaining({ code: 'INVALID_DATE' }));
    expect(previousChinaDay(now)).toBe('2026-11-28');
  });
});
