import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PaymentReport } from '#lib/clients/payment-provider';
import { type Config, loadConfig } from '#lib/config';
import { BadRequestError, NotFoundError, ServiceUnavailableError } from '#lib/errors';
import { decodeCursor, getOrderForUser, listOrders } from '#lib/payments/views';
import { anOrder, aUser, sessionOf } from '#test/helpers/builders';
import { conditionFailed, storeItems, writesTo } from '#test/helpers/dynamo';
import { FakePaymentProvider } from '#test/helpers/fake-payment-provider';

const ddb = mockClient(DynamoDBDocumentClient);
const user = aUser();
const order = anOrder({ userId: user.id });
const TRANSACTION_ID = '4200000215201811190261405420';
let config: Config;

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
let provider: FakePaymentProvider;

function paidReport(overrides: Partial<PaymentReport> = {}): PaymentReport {
  return {
    outTradeNo: order.outTradeNo,
    transactionId: TRANSACTION_ID,
    totalFee: order.totalFee,
    currency: 'CNY',
    paidAt: '2026-11-21T08:04:59.000Z',
    appId: config.appId,
    mchId: config.mchId,
    paidVia: 'orderquery-v2',
    ...overrides,
  };
}

beforeAll(async () => {
  config = await loadConfig();
});

beforeEach(() => {
  ddb.reset();
  provider = new FakePaymentProvider('v2');
  storeItems(ddb, { orders: [order], users: [user] });
  ddb.on(TransactWriteCommand).resolves({});
  ddb.on(UpdateCommand).resolves({});
  ddb.on(PutCommand).resolves({});
});

describe('getOrderForUser', () => {
  it('settles a PENDING order WeChat’s order query reports SUCCESS and answers it PAID', async () => {
    // Prepare: the order reads PENDING until the settle commits
    const paid = {
      ...order,
      status: 'PAID' as const,
      transactionId: TRANSACTION_ID,
      paidAt: '2026-11-21T08:04:59.000Z',
    };
    ddb
      .on(GetCommand, { Key: { outTradeNo: order.outTradeNo } })
      .resolvesOnce({ Item: order })
      .resolves({ Item: paid });
    provider.answerQuery({ tradeState: 'SUCCESS', report: paidReport() });
    // Act
    const shown = await getOrderForUser(config, provider, sessionOf(user), order.outTradeNo);
    // Assess
    expect(provider.queries).toEqual([order.outTradeNo]);
    expect(writesTo(ddb)).toEqual(['UpdateCommand', 'TransactWriteCommand']);
    const orderUpdate = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Update;
    expect(orderUpdate?.ExpressionAttributeValues).toMatchObject({
      ':tx': TRANSACTION_ID,
      ':via': 'orderquery-v2',
    });
    expect(shown).toMatchObject({ status: 'PAID', transactionId: TRANSACTION_ID, paidAt: paid.paidAt });
  });

  it.each([
    ['the order query fails', () => new ServiceUnavailableError(), ['UpdateCommand']],
    ['WeChat says NOTPAY', () => ({ tradeState: 'NOTPAY' }), ['UpdateCommand']],
    [
      'WeChat reports another amount (stored as a payment exception)',
      () => ({ tradeState: 'SUCCESS', report: paidReport({ totalFee: 1 }) }),
      ['UpdateCommand', 'PutCommand'],
    ],
  ])('leaves the order PENDING and credits nothing when %s', async (_name, answer, writes) => {
    // Prepare
    provider.answerQuery(answer());
    // Act
    const shown = await getOrderForUser(config, provider, sessionOf(user), order.outTradeNo);
    // Assess
    expect(shown).toMatchObject({ outTradeNo: order.outTradeNo, status: 'PENDING', transactionId: null });
    expect(provider.queries).toHaveLength(1);
    expect(writesTo(ddb)).toEqual(writes);
  });

  it('claims the query cooldown on the order, and skips WeChat while another view’s query is recent', async () => {
    // Prepare
    ddb.on(UpdateCommand).resolvesOnce({}).rejects(conditionFailed());
    // Act
    await getOrderForUser(config, provider, sessionOf(user), order.outTradeNo);
    const second = await getOrderForUser(config, provider, sessionOf(user), order.outTradeNo);
    // Assess
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { outTradeNo: order.outTradeNo },
      UpdateExpression: 'SET lastQueryAt = :now',
    });
    expect(provider.queries).toEqual([order.outTradeNo]);
    expect(second.status).toBe('PENDING');
  });

  it.each([
    ['PAID', { status: 'PAID' as const, transactionId: TRANSACTION_ID }],
    ['of the other pay version', { payVersion: 'v3' as const }],
  ])('answers an order that is %s from the table without asking WeChat', async (_name, overrides) => {
    // Prepare
    storeItems(ddb, { orders: [{ ...order, ...overrides }], users: [user] });
    // Act
    const shown = await getOrderForUser(config, provider, sessionOf(user), order.outTradeNo);
    // Assess
    expect(shown.outTradeNo).toBe(order.outTradeNo);
    expect(provider.queries).toEqual([]);
  });

  it('answers 404 for another user’s order without asking WeChat', async () => {
    // Prepare
    const other = aUser({ openid: 'oSomeoneElse000000001' });
    storeItems(ddb, { orders: [order], users: [user, other] });
    // Act
    const error = await getOrderForUser(config, provider, sessionOf(other), order.outTradeNo).catch(
      (caught: unknown) => caught,
    );
    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ code: 'ORDER_NOT_FOUND' });
    expect(provider.queries).toEqual([]);
  });

  it('answers 404 for an out_trade_no WeChat would refuse without reading the table', async () => {
    // Act
    const error = await getOrderForUser(config, provider, sessionOf(user), 'bad/no').catch(
      (caught: unknown) => caught,
    );
    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(ddb.calls()).toHaveLength(0);
  });
});

describe('listOrders', () => {
  const key = { outTradeNo: order.outTradeNo, userId: user.id, createdAt: order.createdAt };

  it('queries the byUser index newest first from the cursor and encodes the next one', async () => {
    // Prepare
    const next = { ...key, outTradeNo: 'M20261121070000abcdefABCDEF' };
    ddb.on(QueryCommand).resolves({ Items: [order], LastEvaluatedKey: next });
    // Act
    const page = await listOrders(config, sessionOf(user), encode(key), 5);
    // Assess
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, {
      TableName: config.ordersTable,
      IndexName: 'byUser',
      ScanIndexForward: false,
      Limit: 5,
      ExclusiveStartKey: key,
    });
    expect(page.orders.map((shown) => shown.outTradeNo)).toEqual([order.outTradeNo]);
    expect(decodeCursor(page.nextCursor ?? undefined, user.id)).toEqual(next);
  });

  it('answers nextCursor null on the last page', async () => {
    // Prepare
    ddb.on(QueryCommand).resolves({ Items: [] });
    // Act
    const page = await listOrders(config, sessionOf(user), undefined);
    // Assess
    expect(page).toEqual({ orders: [], nextCursor: null });
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, { Limit: 20 });
  });

  it.each([0, 51, 1.5, Number.NaN])(
    'refuses limit %s with 400 INVALID_LIMIT before any query',
    async (limit) => {
      // Act
      const error = await listOrders(config, sessionOf(user), undefined, limit).catch(
        (caught: unknown) => caught,
      );
      // Assess
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error).toMatchObject({ code: 'INVALID_LIMIT' });
      expect(ddb.calls()).toHaveLength(0);
    },
  );

  it.each([
    ['another user’s', encode({ ...key, userId: aUser({ openid: 'oSomeoneElse000000001' }).id })],
    ['a garbage', 'not-base64-json'],
  ])('refuses %s cursor with 400 INVALID_CURSOR before any query', async (_name, cursor) => {
    // Act
    const error = await listOrders(config, sessionOf(user), cursor).catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ code: 'INVALID_CURSOR' });
    expect(ddb.calls()).toHaveLength(0);
  });
});

describe('decodeCursor', () => {
  const key = {
    outTradeNo: 'M20261121080000abcdefABCDEF',
    userId: 'uAAAAAAAAAAA',
    createdAt: '2026-11-21T08:00:00.000Z',
  };

  it('returns the key of a cursor that belongs to the caller', () => {
    // Assess
    expect(decodeCursor(encode(key), 'uAAAAAAAAAAA')).toEqual(key);
    expect(decodeCursor(undefined, 'uAAAAAAAAAAA')).toBeUndefined();
  });

  it('refuses a cursor of another user, garbage or extra keys', () => {
    // Assess
    expect(() => decodeCursor(encode(key), 'uBBBBBBBBBBB')).toThrow(BadRequestError);
    expect(() => decodeCursor('not-base64-json', 'uAAAAAAAAAAA')).toThrow(BadRequestError);
    expect(() => decodeCursor(encode({ ...key, extra: 1 }), 'uAAAAAAAAAAA')).toThrow(BadRequestError);
  });
});
