import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '#lib/config';
import { RefundRefusedError, ServiceUnavailableError, UpstreamError } from '#lib/errors';
import { applyRefundReport, createRefund, newOutRefundNo } from '#lib/payments/refunds';
import { type RefundRecord, refundKey } from '#lib/repositories/refund-repository';
import { OUT_REFUND_NO } from '#lib/wechat-pay/fields';
import { anOrder, aUser } from '#test/helpers/builders';
import { writesTo } from '#test/helpers/dynamo';
import { FakePaymentProvider } from '#test/helpers/fake-payment-provider';
import { rejection } from '#test/helpers/outcomes';

const ddb = mockClient(DynamoDBDocumentClient);
const AT = new Date('2026-11-21T08:05:00.000Z');
const user = aUser({ version: 4, role: 1, membershipExpiredAt: '2027-01-21T08:05:00.000Z' });
const paid = anOrder({ userId: user.id, status: 'PAID', transactionId: '4200000215201811190261405420' });
let config: Config;

function aRefund(overrides: Partial<RefundRecord> = {}): RefundRecord {
  return {
    outTradeNo: refundKey('R1'),
    kind: 'refund',
    outRefundNo: 'R1',
    refundOf: paid.outTradeNo,
    amount: 600,
    totalFee: 1800,
    status: 'PROCESSING',
    payVersion: 'v2',
    createdAt: AT.toISOString(),
    ...overrides,
  };
}

/** Answers reads of this order, this user and these refunds by key. */
function store(order = paid, refunds: RefundRecord[] = []): void {
  ddb.on(GetCommand).resolves({});
  ddb.on(GetCommand, { Key: { outTradeNo: order.outTradeNo } }).resolves({ Item: order });
  ddb.on(GetCommand, { Key: { id: user.id } }).resolves({ Item: user });
  for (const refund of refunds) {
    ddb.on(GetCommand, { Key: { outTradeNo: refund.outTradeNo } }).resolves({ Item: refund });
  }
}

/** A cancelled transaction with one reason per item (`item`: the first item's current state). */
function cancelled(codes: string[], item?: object): TransactionCanceledException {
  return new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: codes.map((Code, index) => ({
      Code,
      ...(index === 0 && item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {}),
    })),
  });
}

const transactions = () =>
  ddb.commandCalls(TransactWriteCommand).map((call) => call.args[0].input.TransactItems ?? []);

beforeAll(async () => {
  config = await loadConfig();
});

beforeEach(() => ddb.reset());

describe('newOutRefundNo', () => {
  it('derives one out_refund_no per Idempotency-Key and a fresh one without, both within WeChat’s rule', () => {
    // Act
    const keyed = [newOutRefundNo(AT, 'op-1'), newOutRefundNo(AT, 'op-1'), newOutRefundNo(AT, 'op-2')];
    const fresh = [newOutRefundNo(AT), newOutRefundNo(AT)];
    // Assess
    expect(keyed[0]).toBe(keyed[1]);
    expect(keyed[0]).not.toBe(keyed[2]);
    expect(fresh[0]).not.toBe(fresh[1]);
    for (const no of [...keyed, ...fresh]) expect(no).toMatch(OUT_REFUND_NO);
  });
});

describe('createRefund', () => {
  it('reserves the amount with the refund in one conditional transaction before WeChat is asked', async () => {
    // Prepare
    store();
    ddb.on(TransactWriteCommand).resolves({});
    const provider = new FakePaymentProvider('v2');
    // Act
    const refund = await createRefund(
      config,
      provider,
      { outTradeNo: paid.outTradeNo, amount: 600 },
      undefined,
      AT,
    );
    // Assess
    expect(refund).toMatchObject({ outTradeNo: paid.outTradeNo, amount: 600, status: 'PROCESSING' });
    const [items] = transactions();
    expect(items?.[0]?.Update).toMatchObject({
      Key: { outTradeNo: paid.outTradeNo },
      UpdateExpression: 'SET refundReservedFee = if_not_exists(refundReservedFee, :zero) + :amount',
      ExpressionAttributeValues: expect.objectContaining({ ':amount': 600, ':limit': 1200, ':total': 1800 }),
    });
    expect(items?.[0]?.Update?.ConditionExpression).toContain('refundReservedFee <= :limit');
    expect(items?.[1]?.Put).toMatchObject({
      Item: {
        kind: 'refund',
        refundOf: paid.outTradeNo,
        amount: 600,
        status: 'PROCESSING',
        reconcileShard: 'REFUND',
      },
      ConditionExpression: 'attribute_not_exists(outTradeNo)',
    });
    expect(provider.refunds).toEqual([
      {
        outTradeNo: paid.outTradeNo,
        outRefundNo: refund.outRefundNo,
        totalFee: 1800,
        refundFee: 600,
        reason: undefined,
      },
    ]);
  });

  it.each([
    ['PENDING', anOrder({ status: 'PENDING' }), {}, [409, 'ORDER_NOT_REFUNDABLE']],
    ['REFUNDED', anOrder({ status: 'REFUNDED', refundReservedFee: 1800 }), {}, [409, 'ORDER_NOT_REFUNDABLE']],
    [
      'more than remains',
      anOrder({ status: 'PAID', refundReservedFee: 1200 }),
      { amount: 700 },
      [400, 'REFUND_EXCEEDS'],
    ],
    ['nothing left', anOrder({ status: 'PAID', refundReservedFee: 1800 }), {}, [400, 'REFUND_EXCEEDS']],
  ] as const)(
    'refuses an order that is %s: no write, no WeChat call',
    async (_name, order, body, expected) => {
      // Prepare
      store(order);
      const provider = new FakePaymentProvider('v2');
      // Act
      const error = (await rejection(
        createRefund(config, provider, { outTradeNo: order.outTradeNo, ...body }, undefined, AT),
      )) as { status: number; code: string };
      // Assess
      expect([error.status, error.code]).toEqual(expected);
      expect(writesTo(ddb)).toEqual([]);
      expect(provider.refunds).toEqual([]);
    },
  );

  it('waits out conflicting transactions on the reservation (a concurrent request with the same key) within its budget', async () => {
    // Prepare: four TransactionConflicts in a row, then the reservation commits
    store();
    const conflict = cancelled(['TransactionConflict', 'None']);
    ddb
      .on(TransactWriteCommand)
      .rejectsOnce(conflict)
      .rejectsOnce(conflict)
      .rejectsOnce(conflict)
      .rejectsOnce(conflict)
      .resolves({});
    const provider = new FakePaymentProvider('v2');
    // Act
    const refund = await createRefund(
      config,
      provider,
      { outTradeNo: paid.outTradeNo, amount: 600 },
      'op-9',
      AT,
    );
    // Assess: reserved once, asked of WeChat once
    expect(refund).toMatchObject({ amount: 600, status: 'PROCESSING' });
    expect(transactions()).toHaveLength(5);
    expect(provider.refunds).toHaveLength(1);
  });

  it('answers REFUND_EXCEEDS when a concurrent refund took the rest between the read and the reservation', async () => {
    // Prepare: the reservation's condition fails and returns the order as it is now
    store();
    ddb
      .on(TransactWriteCommand)
      .rejects(cancelled(['ConditionalCheckFailed', 'None'], { ...paid, refundReservedFee: 1500 }));
    const provider = new FakePaymentProvider('v2');
    // Act
    const error = (await rejection(
      createRefund(config, provider, { outTradeNo: paid.outTradeNo, amount: 600 }, undefined, AT),
    )) as { code: string };
    // Assess
    expect(error.code).toBe('REFUND_EXCEEDS');
    expect(provider.refunds).toEqual([]);
  });

  it('closes the refund and releases the reservation when WeChat refuses it for good, and says so', async () => {
    // Prepare
    store();
    ddb.on(TransactWriteCommand).resolves({});
    const provider = new FakePaymentProvider('v2').answerRefund(
      new RefundRefusedError('NOTENOUGH', 'refund NOTENOUGH'),
    );
    // The key's refund does not exist yet; after the reservation it reads back PROCESSING (to be closed)
    const outRefundNo = newOutRefundNo(AT, 'k');
    ddb
      .on(GetCommand, { Key: { outTradeNo: refundKey(outRefundNo) } })
      .resolvesOnce({})
      .resolves({ Item: aRefund({ outRefundNo, outTradeNo: refundKey(outRefundNo) }) });
    // Act
    const error = (await rejection(
      createRefund(config, provider, { outTradeNo: paid.outTradeNo, amount: 600 }, 'k', AT),
    )) as UpstreamError;
    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.code).toBe('REFUND_REFUSED');
    const [, close] = transactions();
    expect(close?.[0]?.Update?.ExpressionAttributeValues).toMatchObject({ ':final': 'CLOSED' });
    expect(close?.[1]?.Update?.UpdateExpression).toBe('SET refundReservedFee = refundReservedFee - :amount');
  });

  it('keeps the refund PROCESSING (for the reconciler) when WeChat is unavailable', async () => {
    // Prepare
    store();
    ddb.on(TransactWriteCommand).resolves({});
    const provider = new FakePaymentProvider('v2').answerRefund(new ServiceUnavailableError());
    // Act
    const refund = await createRefund(
      config,
      provider,
      { outTradeNo: anOrder().outTradeNo, amount: 600 },
      undefined,
      AT,
    ).catch((error: unknown) => error);
    // Assess
    expect(refund).toMatchObject({ status: 'PROCESSING', amount: 600 });
    expect(transactions()).toHaveLength(1);
  });
});

describe('applyRefundReport', () => {
  const report = {
    outRefundNo: 'R1',
    outTradeNo: paid.outTradeNo,
    refundFee: 600,
    refundId: '5030',
    successAt: '2026-11-21T16:30:00.000Z',
    via: 'notify-v2' as const,
  };

  it('SUCCESS: refund, order and owner in one transaction; ⌊31 × 600 ÷ 1800⌋ = 10 days revoked', async () => {
    // Prepare
    store(paid, [aRefund()]);
    ddb.on(TransactWriteCommand).resolves({});
    // Act
    const outcome = await applyRefundReport(config, { ...report, status: 'SUCCESS' }, () => AT);
    // Assess
    expect(outcome).toBe('applied');
    const [items] = transactions();
    expect(items).toHaveLength(3);
    expect(items?.[0]?.Update?.ExpressionAttributeValues).toMatchObject({
      ':final': 'SUCCESS',
      ':at': '2026-11-21T16:30:00.000Z',
      ':day': '2026-11-22',
    });
    expect(items?.[1]?.Update?.ExpressionAttributeValues).toMatchObject({
      ':fee': 600,
      ':days': 10,
      ':status': 'PAID',
      ':old': 0,
    });
    expect(items?.[2]?.Update?.ExpressionAttributeValues).toMatchObject({
      ':end': Date.parse('2027-01-11T08:05:00.000Z'),
      ':role': 1,
      ':version': 4,
      ':next': 5,
    });
  });

  it('applies SUCCESS to an ABNORMAL refund the merchant re-applied, conditioned on it still being ABNORMAL', async () => {
    // Prepare
    store(paid, [aRefund({ status: 'ABNORMAL' })]);
    ddb.on(TransactWriteCommand).resolves({});
    // Act
    const outcome = await applyRefundReport(config, { ...report, status: 'SUCCESS' }, () => AT);
    // Assess
    expect(outcome).toBe('applied');
    const [items] = transactions();
    expect(items?.[0]?.Update?.ConditionExpression).toBe('#s = :from');
    expect(items?.[0]?.Update?.ExpressionAttributeValues).toMatchObject({
      ':from': 'ABNORMAL',
      ':final': 'SUCCESS',
    });
    expect(items?.[1]?.Update?.ExpressionAttributeValues).toMatchObject({ ':fee': 600, ':days': 10 });
  });

  it('keeps an ABNORMAL refund in the reconcile index, asked again later; a second ABNORMAL is a duplicate', async () => {
    // Prepare
    store(paid, [aRefund()]);
    ddb.on(PutCommand).resolves({});
    ddb.on(TransactWriteCommand).resolves({});
    // Act
    const first = await applyRefundReport(config, { ...report, status: 'ABNORMAL' }, () => AT);
    store(paid, [aRefund({ status: 'ABNORMAL' })]);
    const second = await applyRefundReport(config, { ...report, status: 'ABNORMAL' }, () => AT);
    // Assess
    expect([first, second]).toEqual(['applied', 'duplicate']);
    const [items] = transactions();
    expect(items?.[0]?.Update?.UpdateExpression).toBe(
      'SET #s = :final, endedAt = :at, refundId = :rid, reconcileAt = :recheck',
    );
    expect(transactions()).toHaveLength(1);
  });

  it('answers duplicate for a refund already final, writing nothing', async () => {
    // Prepare
    store(paid, [aRefund({ status: 'SUCCESS' })]);
    // Act
    const outcome = await applyRefundReport(config, { ...report, status: 'SUCCESS' }, () => AT);
    // Assess
    expect(outcome).toBe('duplicate');
    expect(writesTo(ddb)).toEqual([]);
  });

  it('answers duplicate when the order already holds this refund (read after another delivery applied it)', async () => {
    // Prepare: the refund reads PROCESSING first (stale), the order already refunded in full, then the refund SUCCESS
    const full = aRefund({ amount: 1800 });
    store({ ...paid, status: 'REFUNDED', refundedFee: 1800, refundReservedFee: 1800, revokedDays: 31 });
    ddb
      .on(GetCommand, { Key: { outTradeNo: full.outTradeNo } })
      .resolvesOnce({ Item: full })
      .resolves({ Item: { ...full, status: 'SUCCESS' } });
    // Act
    const outcome = await applyRefundReport(
      config,
      { ...report, refundFee: 1800, status: 'SUCCESS' },
      () => AT,
    );
    // Assess
    expect(outcome).toBe('duplicate');
    expect(writesTo(ddb)).toEqual([]);
  });

  it('answers duplicate when another delivery committed first (the refund condition failed)', async () => {
    // Prepare
    store(paid, [aRefund()]);
    ddb
      .on(TransactWriteCommand)
      .rejects(cancelled(['ConditionalCheckFailed', 'None', 'None'], aRefund({ status: 'SUCCESS' })));
    // Act
    const outcome = await applyRefundReport(config, { ...report, status: 'SUCCESS' }, () => AT);
    // Assess
    expect(outcome).toBe('duplicate');
    expect(transactions()).toHaveLength(1);
  });

  it.each([
    ['an unknown out_refund_no', { outRefundNo: 'R404' }],
    ['another order', { outTradeNo: 'M20261121080000otherOTHER00' }],
    ['another amount', { refundFee: 601 }],
    ['another merchant', { mchId: '1900000000' }],
  ])('records %s once as a refund_mismatch exception and applies nothing', async (_name, change) => {
    // Prepare
    store(paid, [aRefund()]);
    ddb.on(PutCommand).resolves({});
    // Act
    const outcome = await applyRefundReport(config, { ...report, status: 'SUCCESS', ...change }, () => AT);
    // Assess
    expect(outcome).toBe('exception');
    expect(writesTo(ddb)).toEqual(['PutCommand']);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({ reason: 'refund_mismatch' });
  });
});
