import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '#lib/config';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  ServiceUnavailableError,
  UnauthorizedError,
} from '#lib/errors';
import { createPayment } from '#lib/payments/orders';
import { anOrder, aUser } from '#test/helpers/builders';
import { conditionFailed, storeItems, writesTo } from '#test/helpers/dynamo';
import { FakePaymentProvider } from '#test/helpers/fake-payment-provider';

const ddb = mockClient(DynamoDBDocumentClient);
const NOW = new Date('2026-11-21T08:30:00.000Z');
const IP = '198.51.100.9';
const user = aUser();
let config: Config;
let provider: FakePaymentProvider;

/** Runs createPayment and returns the error it rejects with (fails when it resolves). */
async function refusal(body: Parameters<typeof createPayment>[3], userId = user.id): Promise<unknown> {
  return createPayment(config, provider, userId, body, IP, NOW).then(
    () => expect.fail('createPayment resolved'),
    (error: unknown) => error,
  );
}

beforeAll(async () => {
  config = await loadConfig();
});

beforeEach(() => {
  ddb.reset();
  provider = new FakePaymentProvider('v2');
  ddb.on(QueryCommand).resolves({ Items: [] });
  ddb.on(PutCommand).resolves({});
  ddb.on(UpdateCommand).resolves({});
});

describe('createPayment {planId}', () => {
  it('creates a PENDING order at the catalog price, prepays it with the stored parameters and saves the prepay_id', async () => {
    // Prepare
    storeItems(ddb, { users: [user] });
    provider.answerPrepay('wx_prepay_new');
    // Act
    const started = await createPayment(config, provider, user.id, { planId: 'quarterly' }, IP, NOW);
    // Assess
    const put = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(put?.ConditionExpression).toBe('attribute_not_exists(outTradeNo)');
    expect(put?.Item).toMatchObject({
      userId: user.id,
      openid: user.openid,
      planId: 'quarterly',
      totalFee: 4800,
      status: 'PENDING',
      payVersion: 'v2',
      clientIp: IP,
      createdAt: NOW.toISOString(),
      timeExpire: '2026-11-21T10:30:00.000Z',
    });
    const outTradeNo = put?.Item?.outTradeNo as string;
    expect(provider.prepays).toEqual([
      {
        outTradeNo,
        description: '会员-季度会员',
        totalFee: 4800,
        openid: user.openid,
        clientIp: IP,
        timeExpire: new Date('2026-11-21T10:30:00.000Z'),
      },
    ]);
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: config.ordersTable,
      Key: { outTradeNo },
      ExpressionAttributeValues: { ':p': 'wx_prepay_new', ':t': NOW.toISOString(), ':pending': 'PENDING' },
    });
    expect(started.order).toMatchObject({
      outTradeNo,
      planId: 'quarterly',
      totalFee: 4800,
      status: 'PENDING',
    });
    expect(started.payParams.package).toBe('prepay_id=wx_prepay_new');
    expect(writesTo(ddb)).toEqual(['PutCommand', 'UpdateCommand']);
  });

  it('continues the open order of the same plan instead of creating another, reusing its live prepay_id', async () => {
    // Prepare
    const open = anOrder({
      userId: user.id,
      prepayId: 'wx_prepay_live',
      timeExpire: '2026-11-21T09:00:00.000Z',
    });
    storeItems(ddb, { users: [user] });
    ddb.on(QueryCommand).resolves({ Items: [open] });
    // Act
    const started = await createPayment(config, provider, user.id, { planId: 'monthly' }, IP, NOW);
    // Assess
    expect(started.order.outTradeNo).toBe(open.outTradeNo);
    expect(started.payParams.package).toBe('prepay_id=wx_prepay_live');
    expect(provider.prepays).toHaveLength(0);
    expect(writesTo(ddb)).toEqual([]);
  });

  it('prepays a continued open order that has no prepay_id yet with exactly its stored parameters', async () => {
    // Prepare
    const open = anOrder({ userId: user.id, clientIp: '203.0.113.7' });
    storeItems(ddb, { users: [user] });
    ddb.on(QueryCommand).resolves({ Items: [open] });
    // Act
    await createPayment(config, provider, user.id, { planId: 'monthly' }, IP, NOW);
    // Assess
    expect(provider.prepays).toEqual([
      {
        outTradeNo: open.outTradeNo,
        description: open.description,
        totalFee: open.totalFee,
        openid: open.openid,
        clientIp: '203.0.113.7',
        timeExpire: new Date(open.timeExpire),
      },
    ]);
    expect(writesTo(ddb)).toEqual(['UpdateCommand']);
  });

  it.each([
    ['another plan', { planId: 'yearly' }],
    ['another pay version', { payVersion: 'v3' as const }],
    ['less than 10 minutes left', { timeExpire: '2026-11-21T08:39:59.000Z' }],
    ['CLOSED', { status: 'CLOSED' as const }],
  ])('creates a new order when the recent one has %s', async (_name, overrides) => {
    // Prepare
    storeItems(ddb, { users: [user] });
    ddb.on(QueryCommand).resolves({ Items: [anOrder({ userId: user.id, ...overrides })] });
    // Act
    const started = await createPayment(config, provider, user.id, { planId: 'monthly' }, IP, NOW);
    // Assess
    expect(started.order.outTradeNo).not.toBe(anOrder().outTradeNo);
    expect(writesTo(ddb)).toEqual(['PutCommand', 'UpdateCommand']);
  });

  it('refuses an unknown plan with 400 UNKNOWN_PLAN before any DynamoDB or WeChat call', async () => {
    // Act
    const error = await refusal({ planId: 'lifetime' });
    // Assess
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ code: 'UNKNOWN_PLAN' });
    expect(ddb.calls()).toHaveLength(0);
    expect(provider.prepays).toHaveLength(0);
  });

  it('refuses a caller whose user record is gone with 401 USER_NOT_FOUND', async () => {
    // Prepare
    storeItems(ddb, {});
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(writesTo(ddb)).toEqual([]);
  });

  it('generates another out_trade_no on a collision, and answers 503 ORDER_ID_EXHAUSTED after three', async () => {
    // Prepare
    storeItems(ddb, { users: [user] });
    ddb.on(PutCommand).rejects(conditionFailed());
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ code: 'ORDER_ID_EXHAUSTED' });
    const tried = ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item?.outTradeNo);
    expect(new Set(tried).size).toBe(3);
    expect(provider.prepays).toHaveLength(0);
  });

  it('leaves the new order without a prepay_id when WeChat is unavailable', async () => {
    // Prepare
    storeItems(ddb, { users: [user] });
    const unavailable = new ServiceUnavailableError('微信支付繁忙，请稍后再试', 'WECHAT_PAY_UNAVAILABLE');
    provider.answerPrepay(unavailable);
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBe(unavailable);
    expect(writesTo(ddb)).toEqual(['PutCommand']);
  });
});

describe('createPayment {outTradeNo}', () => {
  it('pays the caller’s PENDING order again with its live prepay_id and writes nothing', async () => {
    // Prepare
    const order = anOrder({ userId: user.id, prepayId: 'wx_prepay_live' });
    storeItems(ddb, { orders: [order] });
    // Act
    const started = await createPayment(config, provider, user.id, { outTradeNo: order.outTradeNo }, IP, NOW);
    // Assess
    expect(started.order).toEqual({
      outTradeNo: order.outTradeNo,
      planId: 'monthly',
      description: '会员-月度会员',
      totalFee: 1800,
      status: 'PENDING',
      createdAt: order.createdAt,
      paidAt: null,
      transactionId: null,
    });
    expect(started.payParams).toEqual(provider.payParams('wx_prepay_live'));
    expect(provider.prepays).toHaveLength(0);
    expect(writesTo(ddb)).toEqual([]);
  });

  it.each([
    ['does not exist', []],
    ['belongs to another user', [anOrder({ userId: aUser({ openid: 'oSomeoneElse000000001' }).id })]],
  ])('answers 404 ORDER_NOT_FOUND when the order %s', async (_name, orders) => {
    // Prepare
    storeItems(ddb, { orders });
    // Act
    const error = await refusal({ outTradeNo: anOrder().outTradeNo });
    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'ORDER_NOT_FOUND' });
    expect(provider.prepays).toHaveLength(0);
    expect(writesTo(ddb)).toEqual([]);
  });

  it.each([
    ['PAID', { status: 'PAID' as const, transactionId: '4200000000000000000000000001' }, 'ORDER_PAID'],
    ['CLOSED', { status: 'CLOSED' as const }, 'ORDER_CLOSED'],
    ['expired', { timeExpire: NOW.toISOString() }, 'ORDER_EXPIRED'],
    ['of the other pay version', { payVersion: 'v3' as const }, 'ORDER_PAY_VERSION_CHANGED'],
  ])('answers 409 when the order is %s, without asking WeChat', async (_name, overrides, code) => {
    // Prepare
    storeItems(ddb, { orders: [anOrder({ userId: user.id, ...overrides })] });
    // Act
    const error = await refusal({ outTradeNo: anOrder().outTradeNo });
    // Assess
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ status: 409, code });
    expect(provider.prepays).toHaveLength(0);
    expect(writesTo(ddb)).toEqual([]);
  });
});

describe('createPayment when a notify lands between prepay and saving the prepay_id', () => {
  it.each([
    ['PAID', 'ORDER_PAID'],
    ['CLOSED', 'ORDER_CHANGED'],
  ] as const)('answers 409 %s → %s and never reverts the status', async (status, code) => {
    // Prepare: the prepay_id save finds the order no longer PENDING
    const pending = anOrder({ userId: user.id });
    ddb.on(UpdateCommand).rejects(conditionFailed());
    ddb
      .on(GetCommand, { Key: { outTradeNo: pending.outTradeNo } })
      .resolvesOnce({ Item: pending })
      .resolves({ Item: { ...pending, status } });
    // Act
    const error = await refusal({ outTradeNo: pending.outTradeNo });
    // Assess
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ code });
    expect(provider.prepays).toHaveLength(1);
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      ConditionExpression: '#s = :pending',
      UpdateExpression: 'SET prepayId = :p, prepayAt = :t',
    });
    expect(writesTo(ddb)).toEqual(['UpdateCommand']);
  });
});
