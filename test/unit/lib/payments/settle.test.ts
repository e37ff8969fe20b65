import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PaymentReport } from '#lib/clients/payment-provider';
import { type Config, loadConfig } from '#lib/config';
import { PaymentRejectedError, type PaymentRejection } from '#lib/errors';
import { settlePayment, settleReport } from '#lib/payments/settle';
import { anOrder, aUser } from '#test/helpers/builders';
import { storeItems, transactionCanceled, writesTo } from '#test/helpers/dynamo';

const ddb = mockClient(DynamoDBDocumentClient);
const AT = new Date('2026-11-21T08:05:00.000Z');
const now = () => AT;
const TRANSACTION_ID = '4200000215201811190261405420';
const user = aUser({ version: 3, membershipExpiredAt: '2026-12-01T00:00:00.000Z' });
const order = anOrder({ userId: user.id });
let config: Config;

function aReport(overrides: Partial<PaymentReport> = {}): PaymentReport {
  return {
    outTradeNo: order.outTradeNo,
    transactionId: TRANSACTION_ID,
    totalFee: 1800,
    currency: 'CNY',
    paidAt: '2026-11-21T08:04:59.000Z',
    appId: config.appId,
    mchId: config.mchId,
    bankType: 'OTHERS',
    cashFee: 1800,
    paidVia: 'notify-v2',
    ...overrides,
  };
}

/** The `:name` values of the user update in the n-th transaction sent. */
function userValues(n = 0): Record<string, unknown> | undefined {
  return ddb.commandCalls(TransactWriteCommand)[n]?.args[0].input.TransactItems?.[1]?.Update
    ?.ExpressionAttributeValues;
}

beforeAll(async () => {
  config = await loadConfig();
});

beforeEach(() => {
  ddb.reset();
  storeItems(ddb, { orders: [order], users: [user] });
  ddb.on(TransactWriteCommand).resolves({});
});

afterEach(() => vi.useRealTimers());

const DAY_MS = 86_400_000;
/** The in-place extend of an unended membership by 31 days at AT. */
const EXTEND = { ':delta': 31 * DAY_MS, ':at': AT.getTime(), ':role': 1, ':one': 1 };
/** A lapsed membership set to AT + 31 days on user version `version`. */
const setFromNow = (version: number) => ({
  ':end': AT.getTime() + 31 * DAY_MS,
  ':role': 1,
  ':version': version,
  ':next': version + 1,
});

describe('settlePayment', () => {
  it('credits a PENDING order in one transaction: an unended membership extended in place by 31 days', async () => {
    // Act
    const outcome = await settlePayment(config, aReport(), now);
    // Assess
    expect(outcome).toBe('credited');
    expect(writesTo(ddb)).toEqual(['TransactWriteCommand']);
    expect(userValues()).toEqual({ ...EXTEND, ':now': AT.toISOString() });
  });

  it('sets a lapsed membership to now + 31 days, role 1, on the user version read', async () => {
    // Prepare
    storeItems(ddb, {
      orders: [order],
      users: [{ ...user, membershipExpiredAt: '2026-11-01T00:00:00.000Z' }],
    });
    // Act
    const outcome = await settlePayment(config, aReport(), now);
    // Assess
    expect(outcome).toBe('credited');
    expect(userValues()).toEqual({ ...setFromNow(3), ':now': AT.toISOString() });
  });

  describe('with the owner snapshot the order was opened with', () => {
    const snapshotted = {
      ...order,
      ownerAtOrder: { version: 3, membershipExpiredAt: user.membershipExpiredAt },
    };
    const lapsedSnapshot = { ...order, ownerAtOrder: { version: 3 } };

    it('credits without reading the user: one order read and one transaction', async () => {
      // Prepare
      storeItems(ddb, { orders: [snapshotted], users: [user] });
      // Act
      const outcome = await settlePayment(config, aReport(), now);
      // Assess
      expect(outcome).toBe('credited');
      const reads = ddb.commandCalls(GetCommand).map((call) => call.args[0].input.Key);
      expect(reads).toEqual([{ outTradeNo: order.outTradeNo }]);
      expect(writesTo(ddb)).toEqual(['TransactWriteCommand']);
      expect(userValues()).toMatchObject(EXTEND);
    });

    it('extends in place on the user the refused set returned when another payment started the membership first', async () => {
      // Prepare: opened as a non-member (set on version 3); another payment then made it version 4, ending later
      const moved = { ...user, version: 4, membershipExpiredAt: '2026-12-22T08:05:00.000Z' };
      storeItems(ddb, { orders: [lapsedSnapshot], users: [moved] });
      ddb
        .on(TransactWriteCommand)
        .rejectsOnce(transactionCanceled('None', 'ConditionalCheckFailed', undefined, moved))
        .resolves({});
      // Act
      const outcome = await settlePayment(config, aReport(), now);
      // Assess: two transactions, no read of the user
      expect(outcome).toBe('credited');
      const reads = ddb.commandCalls(GetCommand).map((call) => call.args[0].input.Key);
      expect(reads).toEqual([{ outTradeNo: order.outTradeNo }]);
      expect(userValues(0)).toMatchObject(setFromNow(3));
      expect(userValues(1)).toMatchObject(EXTEND);
    });

    it('sets the membership on the returned version when a refund ended it after the order was opened', async () => {
      // Prepare: the snapshot's end is ahead, but a refund revoked it (version 4, ended yesterday)
      const revoked = {
        ...user,
        version: 4,
        role: 0 as const,
        membershipExpiredAt: '2026-11-20T08:05:00.000Z',
      };
      storeItems(ddb, { orders: [snapshotted], users: [revoked] });
      ddb
        .on(TransactWriteCommand)
        .rejectsOnce(transactionCanceled('None', 'ConditionalCheckFailed', undefined, revoked))
        .resolves({});
      // Act
      const outcome = await settlePayment(config, aReport(), now);
      // Assess
      expect(outcome).toBe('credited');
      expect(userValues(0)).toMatchObject(EXTEND);
      expect(userValues(1)).toMatchObject(setFromNow(4));
    });

    it('sets an unended membership still stored in the old ISO form on its version (the extend is refused)', async () => {
      // Prepare: the refused extend returns an item without membershipEndMs, whose end is still ahead
      storeItems(ddb, { orders: [snapshotted], users: [user] });
      ddb
        .on(TransactWriteCommand)
        .rejectsOnce(transactionCanceled('None', 'ConditionalCheckFailed', undefined, { ...user }))
        .resolves({});
      // Act
      const outcome = await settlePayment(config, aReport(), now);
      // Assess: max(now, end) + 31 days from the ISO end, on version 3
      expect(outcome).toBe('credited');
      expect(userValues(1)).toMatchObject({
        ':end': Date.parse('2027-01-01T00:00:00.000Z'),
        ':version': 3,
        ':next': 4,
      });
    });

    it('refuses owner_missing when the owner was deleted after the order was opened', async () => {
      // Prepare
      storeItems(ddb, { orders: [snapshotted], users: [] });
      ddb.on(TransactWriteCommand).rejects(transactionCanceled('None', 'ConditionalCheckFailed'));
      // Act
      const error = await settlePayment(config, aReport(), now).catch((caught: unknown) => caught);
      // Assess
      expect(error).toBeInstanceOf(PaymentRejectedError);
      expect((error as PaymentRejectedError).reason).toBe('owner_missing');
      expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
    });
  });

  it('answers duplicate without a write when the order is PAID by the same transaction_id', async () => {
    // Prepare
    storeItems(ddb, { orders: [{ ...order, status: 'PAID', transactionId: TRANSACTION_ID }], users: [user] });
    // Act
    const outcome = await settlePayment(config, aReport(), now);
    // Assess
    expect(outcome).toBe('duplicate');
    expect(writesTo(ddb)).toEqual([]);
  });

  const rejections: [PaymentRejection, () => Partial<PaymentReport>, Partial<typeof order> | undefined][] = [
    ['merchant_mismatch', () => ({ appId: 'wx0000000000000000' }), undefined],
    ['merchant_mismatch', () => ({ mchId: '1900000000' }), undefined],
    ['currency_mismatch', () => ({ currency: 'USD' }), undefined],
    ['unknown_order', () => ({ outTradeNo: 'M20261121080000unknownUNKNO' }), undefined],
    ['amount_mismatch', () => ({ totalFee: 1 }), undefined],
    ['paid_by_other', () => ({}), { status: 'PAID', transactionId: '4200000000000000000000000009' }],
    ['not_pending', () => ({}), { status: 'CLOSED' }],
    ['not_pending', () => ({}), { status: 'REFUNDED' }],
  ];

  it.each(rejections)('refuses %s and writes nothing', async (reason, report, stored) => {
    // Prepare
    storeItems(ddb, { orders: [{ ...order, ...stored }], users: [user] });
    // Act
    const error = await settlePayment(config, aReport(report()), now).catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(PaymentRejectedError);
    expect((error as PaymentRejectedError).reason).toBe(reason);
    expect(writesTo(ddb)).toEqual([]);
  });

  it('retries after a TransactionConflict on the user read afresh', async () => {
    // Prepare: a refund ended the membership while the conflicting transaction was in flight
    const revoked = {
      ...user,
      version: 4,
      role: 0 as const,
      membershipExpiredAt: '2026-11-20T08:05:00.000Z',
    };
    ddb
      .on(GetCommand, { Key: { id: user.id } })
      .resolvesOnce({ Item: user })
      .resolves({ Item: revoked });
    ddb.on(TransactWriteCommand).rejectsOnce(transactionCanceled('TransactionConflict', 'None')).resolves({});
    // Act
    const outcome = await settlePayment(config, aReport(), now);
    // Assess
    expect(outcome).toBe('credited');
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(2);
    expect(userValues(0)).toMatchObject(EXTEND);
    expect(userValues(1)).toMatchObject(setFromNow(4));
  });

  it('answers duplicate when another delivery committed the same transaction_id first', async () => {
    // Prepare: DynamoDB hands back the order as the winner left it
    const won = { ...order, status: 'PAID' as const, transactionId: TRANSACTION_ID };
    ddb.on(TransactWriteCommand).rejects(transactionCanceled('ConditionalCheckFailed', 'None', won));
    // Act
    const outcome = await settlePayment(config, aReport(), now);
    // Assess
    expect(outcome).toBe('duplicate');
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it('refuses paid_by_other when another transaction_id committed first, re-reading the order', async () => {
    // Prepare: no item on the cancellation, so the order is read again
    const other = { ...order, status: 'PAID' as const, transactionId: '4200000000000000000000000009' };
    ddb
      .on(GetCommand, { Key: { outTradeNo: order.outTradeNo } })
      .resolvesOnce({ Item: order })
      .resolves({ Item: other });
    ddb.on(TransactWriteCommand).rejects(transactionCanceled('ConditionalCheckFailed', 'None'));
    // Act
    const error = await settlePayment(config, aReport(), now).catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(PaymentRejectedError);
    expect((error as PaymentRejectedError).reason).toBe('paid_by_other');
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it('gives up with an Error (WeChat redelivers) when contention outlasts the 3 s budget', async () => {
    // Prepare
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    ddb.on(TransactWriteCommand).rejects(transactionCanceled('None', 'TransactionConflict'));
    // Act
    const settled = settlePayment(config, aReport(), now).catch((caught: unknown) => caught);
    await vi.runAllTimersAsync();
    const error = await settled;
    // Assess
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(PaymentRejectedError);
    expect((error as Error).message).toMatch(/did not settle within 3000 ms/);
    expect(ddb.commandCalls(TransactWriteCommand).length).toBeGreaterThan(10);
  });

  it('refuses owner_missing without a write when the order’s user is gone', async () => {
    // Prepare
    storeItems(ddb, { orders: [order], users: [] });
    // Act
    const error = await settlePayment(config, aReport(), now).catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(PaymentRejectedError);
    expect(error).toMatchObject({ reason: 'owner_missing', orderFee: 1800 });
    expect(writesTo(ddb)).toEqual([]);
  });

  it('throws an Error (WeChat redelivers) without a write when the order’s plan is missing', async () => {
    // Prepare
    storeItems(ddb, { orders: [{ ...order, planId: 'retired' }], users: [user] });
    // Act
    const error = await settlePayment(config, aReport(), now).catch((caught: unknown) => caught);
    // Assess
    expect(error).not.toBeInstanceOf(PaymentRejectedError);
    expect((error as Error).message).toMatch(/missing plan/);
    expect(writesTo(ddb)).toEqual([]);
  });
});

describe('settleReport', () => {
  it('credits like settlePayment and records no exception', async () => {
    // Act / Assess
    expect(await settleReport(config, aReport())).toBe('credited');
    expect(writesTo(ddb)).toEqual(['TransactWriteCommand']);
  });

  it('stores a payment that must never be credited once as an exception and answers exception', async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    // Act
    const outcome = await settleReport(config, aReport({ totalFee: 1 }));
    // Assess
    expect(outcome).toBe('exception');
    expect(writesTo(ddb)).toEqual(['PutCommand']);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({
      reason: 'amount_mismatch',
      orderFee: 1800,
      reportedFee: 1,
      source: 'notify-v2',
    });
  });

  it('throws (WeChat redelivers) when the exception cannot be stored', async () => {
    // Prepare
    const unavailable = new Error('DynamoDB unavailable');
    ddb.on(PutCommand).rejects(unavailable);
    // Act / Assess
    await expect(settleReport(config, aReport({ currency: 'USD' }))).rejects.toBe(unavailable);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
  });
});
