import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '#lib/config';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
} from '#lib/errors';
import { createPayment } from '#lib/payments/orders';
import { anOrder, aUser, sessionOf } from '#test/helpers/builders';
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
  return createPayment(config, provider, sessionOf({ ...user, id: userId }), body, IP, NOW).then(
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
  ddb.on(PutCommand).resolves({});
  ddb.on(UpdateCommand).resolves({});
});

describe('createPayment {planId}', () => {
  /** The user item as a claim on the monthly plan left it (what a failed claim condition hands back). */
  const holding = (outTradeNo: string, claimedAt = '2026-11-21T08:00:00.000Z', extra: object = {}) =>
    conditionFailed({ ...user, openOrder_monthly: { outTradeNo, claimedAt }, ...extra });
  const claims = () =>
    ddb
      .commandCalls(UpdateCommand)
      .map((call) => call.args[0].input)
      .filter((input) => input.TableName === config.usersTable);

  it('claims the plan on the user, prepays the claimed order at the catalog price and stores it with its prepay_id', async () => {
    // Prepare
    ddb.on(UpdateCommand, { TableName: config.usersTable }).resolves({ Attributes: user });
    provider.answerPrepay('wx_prepay_new');
    // Act
    const started = await createPayment(config, provider, sessionOf(user), { planId: 'quarterly' }, IP, NOW);
    // Assess
    const [claim] = claims();
    expect(claim).toMatchObject({
      Key: { id: user.id },
      ExpressionAttributeNames: { '#c': 'openOrder_quarterly' },
      ExpressionAttributeValues: { ':claim': { claimedAt: NOW.toISOString() }, ':w': '2026-11-21T08' },
    });
    const outTradeNo = (claim?.ExpressionAttributeValues?.[':claim'] as { outTradeNo: string } | undefined)
      ?.outTradeNo;
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
    const put = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(put?.ConditionExpression).toBe('attribute_not_exists(outTradeNo)');
    expect(put?.Item).toMatchObject({
      outTradeNo,
      userId: user.id,
      openid: user.openid,
      planId: 'quarterly',
      totalFee: 4800,
      status: 'PENDING',
      payVersion: 'v2',
      clientIp: IP,
      createdAt: NOW.toISOString(),
      timeExpire: '2026-11-21T10:30:00.000Z',
      prepayId: 'wx_prepay_new',
      prepayAt: NOW.toISOString(),
    });
    expect(started.order).toMatchObject({
      outTradeNo,
      planId: 'quarterly',
      totalFee: 4800,
      status: 'PENDING',
    });
    expect(started.payParams.package).toBe('prepay_id=wx_prepay_new');
    expect(writesTo(ddb)).toEqual(['UpdateCommand', 'PutCommand']);
  });

  it('continues the open order the claim holds instead of creating another, reusing its live prepay_id', async () => {
    // Prepare
    const open = anOrder({
      userId: user.id,
      prepayId: 'wx_prepay_live',
      timeExpire: '2026-11-21T09:00:00.000Z',
    });
    storeItems(ddb, { orders: [open], users: [user] });
    ddb.on(UpdateCommand, { TableName: config.usersTable }).rejects(holding(open.outTradeNo));
    // Act
    const started = await createPayment(config, provider, sessionOf(user), { planId: 'monthly' }, IP, NOW);
    // Assess
    expect(started.order.outTradeNo).toBe(open.outTradeNo);
    expect(started.payParams.package).toBe('prepay_id=wx_prepay_live');
    expect(provider.prepays).toHaveLength(0);
    expect(writesTo(ddb)).toEqual(['UpdateCommand']);
  });

  it('prepays a held open order that has no prepay_id yet with exactly its stored parameters', async () => {
    // Prepare
    const open = anOrder({ userId: user.id, clientIp: '203.0.113.7' });
    storeItems(ddb, { orders: [open], users: [user] });
    ddb.on(UpdateCommand, { TableName: config.usersTable }).rejects(holding(open.outTradeNo));
    // Act
    await createPayment(config, provider, sessionOf(user), { planId: 'monthly' }, IP, NOW);
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
    expect(writesTo(ddb)).toEqual(['UpdateCommand', 'UpdateCommand']);
  });

  it.each([
    ['of another pay version', { payVersion: 'v3' as const }],
    ['with less than 10 minutes left', { timeExpire: '2026-11-21T08:39:59.000Z' }],
    ['CLOSED', { status: 'CLOSED' as const }],
    ['PAID', { status: 'PAID' as const, transactionId: '4200000000000000000000000001' }],
  ])('replaces a held order that is %s with a new one', async (_name, overrides) => {
    // Prepare
    const held = anOrder({ userId: user.id, ...overrides });
    storeItems(ddb, { orders: [held], users: [user] });
    ddb
      .on(UpdateCommand, { TableName: config.usersTable })
      .rejectsOnce(holding(held.outTradeNo))
      .resolves({ Attributes: user });
    // Act
    const started = await createPayment(config, provider, sessionOf(user), { planId: 'monthly' }, IP, NOW);
    // Assess
    expect(started.order.outTradeNo).not.toBe(held.outTradeNo);
    expect(claims()[1]?.ExpressionAttributeValues?.[':held']).toBe(held.outTradeNo);
    expect(writesTo(ddb)).toEqual(['UpdateCommand', 'UpdateCommand', 'PutCommand']);
  });

  it('answers 409 ORDER_IN_PROGRESS while another caller’s fresh claim has no stored order yet', async () => {
    // Prepare
    storeItems(ddb, { users: [user] });
    ddb
      .on(UpdateCommand, { TableName: config.usersTable })
      .rejects(holding('M20261121083000inflightINFLI', '2026-11-21T08:29:55.000Z'));
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ code: 'ORDER_IN_PROGRESS' });
    expect(provider.prepays).toHaveLength(0);
  });

  it('takes over a claim older than 30 s whose order was never stored', async () => {
    // Prepare
    storeItems(ddb, { users: [user] });
    ddb
      .on(UpdateCommand, { TableName: config.usersTable })
      .rejectsOnce(holding('M20261121082900deadDEADdead', '2026-11-21T08:29:29.000Z'))
      .resolves({ Attributes: user });
    // Act
    const started = await createPayment(config, provider, sessionOf(user), { planId: 'monthly' }, IP, NOW);
    // Assess
    expect(claims()[1]?.ExpressionAttributeValues?.[':held']).toBe('M20261121082900deadDEADdead');
    expect(started.order.status).toBe('PENDING');
  });

  it('answers 429 ORDER_RATE_LIMITED with retry-after to the next hour once the hourly cap is reached', async () => {
    // Prepare
    ddb
      .on(UpdateCommand, { TableName: config.usersTable })
      // The hour's counter slot: (hours since the epoch of 2026-11-21T08) mod 97 = 3
      .rejects(conditionFailed({ ...user, orderWindow: '2026-11-21T08', orders3: 20 }));
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBeInstanceOf(TooManyRequestsError);
    expect(error).toMatchObject({ code: 'ORDER_RATE_LIMITED', retryAfterSeconds: 1800 });
    expect(provider.prepays).toHaveLength(0);
  });

  it('answers 503 ORDER_CONTENDED when the claim keeps changing hands', async () => {
    // Prepare
    const paid = anOrder({ userId: user.id, status: 'PAID', transactionId: '4200000000000000000000000001' });
    storeItems(ddb, { orders: [paid], users: [user] });
    ddb.on(UpdateCommand, { TableName: config.usersTable }).rejects(holding(paid.outTradeNo));
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ code: 'ORDER_CONTENDED' });
    expect(provider.prepays).toHaveLength(0);
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
    ddb.on(UpdateCommand, { TableName: config.usersTable }).rejects(conditionFailed());
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(provider.prepays).toHaveLength(0);
  });

  it('stores the claimed order without a prepay_id and rethrows when WeChat is unavailable', async () => {
    // Prepare
    ddb.on(UpdateCommand, { TableName: config.usersTable }).resolves({ Attributes: user });
    const unavailable = new ServiceUnavailableError('微信支付繁忙，请稍后再试', 'WECHAT_PAY_UNAVAILABLE');
    provider.answerPrepay(unavailable);
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBe(unavailable);
    expect(writesTo(ddb)).toEqual(['UpdateCommand', 'PutCommand']);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).not.toHaveProperty('prepayId');
  });

  it('answers 503 ORDER_ID_EXHAUSTED when the claimed out_trade_no is already stored', async () => {
    // Prepare
    ddb.on(UpdateCommand, { TableName: config.usersTable }).resolves({ Attributes: user });
    ddb.on(PutCommand).rejects(conditionFailed());
    // Act
    const error = await refusal({ planId: 'monthly' });
    // Assess
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ code: 'ORDER_ID_EXHAUSTED' });
  });
});

describe('createPayment {outTradeNo}', () => {
  it('pays the caller’s PENDING order again with its live prepay_id and writes nothing', async () => {
    // Prepare
    const order = anOrder({ userId: user.id, prepayId: 'wx_prepay_live' });
    storeItems(ddb, { orders: [order], users: [user] });
    // Act
    const started = await createPayment(
      config,
      provider,
      sessionOf(user),
      { outTradeNo: order.outTradeNo },
      IP,
      NOW,
    );
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
      refundedFee: 0,
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
    storeItems(ddb, { orders, users: [user] });
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
    storeItems(ddb, { orders: [anOrder({ userId: user.id, ...overrides })], users: [user] });
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
    storeItems(ddb, { orders: [pending], users: [user] });
    ddb
      .on(GetCommand, { Key: { outTradeNo: pending.outTradeNo } })
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
