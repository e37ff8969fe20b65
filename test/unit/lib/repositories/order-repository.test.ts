import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  createOrder,
  getOrder,
  listOrdersByUser,
  markOrderPaidAndExtendMembership,
  type PaidFacts,
  savePrepayId,
} from '#lib/repositories/order-repository';
import type { MembershipChange } from '#lib/repositories/user-repository';
import { anOrder } from '#test/helpers/builders';
import { conditionFailed, transactionCanceled } from '#test/helpers/dynamo';

const ddb = mockClient(DynamoDBDocumentClient);
const ORDERS = 'wechat-miniprogram-backend-test-orders';
const USERS = 'wechat-miniprogram-backend-test-users';
const NOW = '2026-11-21T08:05:00.000Z';
const order = anOrder();
const throttled = Object.assign(new Error('Rate exceeded'), {
  name: 'ProvisionedThroughputExceededException',
});

beforeEach(() => ddb.reset());

describe('createOrder', () => {
  it('puts the order only when the out_trade_no is free', async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    // Act
    const created = await createOrder(ORDERS, order);
    // Assess
    expect(created).toBe(true);
    expect(ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: ORDERS,
      Item: order,
      ConditionExpression: 'attribute_not_exists(outTradeNo)',
    });
  });

  it('puts an order with reconcileAt into the sparse byReconcile index', async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    const due = anOrder({ reconcileAt: '2026-11-21T08:01:00.000Z' });
    // Act
    await createOrder(ORDERS, due);
    // Assess
    expect(ddb).toHaveReceivedCommandWith(PutCommand, { Item: { ...due, reconcileShard: 'PENDING' } });
  });

  it('answers false on a collision and rethrows other errors', async () => {
    // Prepare
    ddb.on(PutCommand).rejectsOnce(conditionFailed()).rejectsOnce(throttled);
    // Act / Assess
    expect(await createOrder(ORDERS, order)).toBe(false);
    await expect(createOrder(ORDERS, order)).rejects.toBe(throttled);
  });
});

describe('getOrder', () => {
  it('reads by out_trade_no with ConsistentRead', async () => {
    // Prepare
    ddb.on(GetCommand).resolves({ Item: order });
    // Act
    const read = await getOrder(ORDERS, order.outTradeNo);
    // Assess
    expect(read).toEqual(order);
    expect(ddb).toReceiveCommandWith(GetCommand, {
      TableName: ORDERS,
      Key: { outTradeNo: order.outTradeNo },
      ConsistentRead: true,
    });
  });
});

describe('savePrepayId', () => {
  it('sets prepayId and prepayAt on a PENDING order without touching status', async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});
    // Act
    const saved = await savePrepayId(ORDERS, order.outTradeNo, 'wx_prepay_1', NOW);
    // Assess
    expect(saved).toBe(true);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
      TableName: ORDERS,
      Key: { outTradeNo: order.outTradeNo },
      UpdateExpression: 'SET prepayId = :p, prepayAt = :t',
      ConditionExpression: '#s = :pending',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':p': 'wx_prepay_1', ':t': NOW, ':pending': 'PENDING' },
    });
  });

  it('answers false when the order is no longer PENDING and rethrows other errors', async () => {
    // Prepare
    ddb.on(UpdateCommand).rejectsOnce(conditionFailed()).rejectsOnce(throttled);
    // Act / Assess
    expect(await savePrepayId(ORDERS, order.outTradeNo, 'wx_prepay_1', NOW)).toBe(false);
    await expect(savePrepayId(ORDERS, order.outTradeNo, 'wx_prepay_1', NOW)).rejects.toBe(throttled);
  });
});

describe('listOrdersByUser', () => {
  it('queries the byUser index newest first (never a Scan) and passes the page keys through', async () => {
    // Prepare
    const start = { outTradeNo: 'M1', userId: order.userId, createdAt: NOW };
    const last = { outTradeNo: 'M2', userId: order.userId, createdAt: NOW };
    ddb.on(QueryCommand).resolves({ Items: [order], LastEvaluatedKey: last });
    // Act
    const page = await listOrdersByUser(ORDERS, order.userId, 10, start);
    // Assess
    expect(page).toEqual({ orders: [order], lastKey: last });
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toEqual({
      TableName: ORDERS,
      IndexName: 'byUser',
      KeyConditionExpression: 'userId = :u',
      ExpressionAttributeValues: { ':u': order.userId },
      ScanIndexForward: false,
      Limit: 10,
      ExclusiveStartKey: start,
    });
    expect(ddb.calls()).toHaveLength(1);
  });
});

describe('markOrderPaidAndExtendMembership', () => {
  const paid: PaidFacts = {
    transactionId: '4200000215201811190261405420',
    paidAt: '2026-11-21T08:04:59.000Z',
    bankType: 'CMB_CREDIT',
    cashFee: 1700,
    paidVia: 'notify-v3',
  };
  /** paidAt 08:04:59 UTC is 16:04:59 China time, the same day. */
  const LEDGER_DAY = '2026-11-21';
  const SET: MembershipChange = { kind: 'set', end: '2026-12-22T08:05:00.000Z', role: 1, version: 3 };
  const transition = (facts: PaidFacts = paid, membership: MembershipChange = SET) =>
    markOrderPaidAndExtendMembership({
      ordersTable: ORDERS,
      usersTable: USERS,
      order,
      paid: facts,
      membership,
      now: NOW,
    });

  it('sends ONE transaction: order PENDING → PAID on status and amount (out of byReconcile), user on its version', async () => {
    // Prepare
    ddb.on(TransactWriteCommand).resolves({});
    // Act
    const result = await transition();
    // Assess
    expect(result).toEqual({ kind: 'committed' });
    expect(ddb.calls()).toHaveLength(1);
    expect(ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input).toEqual({
      TransactItems: [
        {
          Update: {
            TableName: ORDERS,
            Key: { outTradeNo: order.outTradeNo },
            UpdateExpression:
              'SET #s = :paid, transactionId = :tx, paidAt = :paidAt, paidVia = :via, bankType = :bank, cashFee = :cash, ' +
              'ledgerDay = :day REMOVE reconcileShard, reconcileAt',
            ConditionExpression: '#s = :pending AND totalFee = :fee',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: {
              ':paid': 'PAID',
              ':pending': 'PENDING',
              ':fee': 1800,
              ':tx': paid.transactionId,
              ':paidAt': paid.paidAt,
              ':day': LEDGER_DAY,
              ':via': 'notify-v3',
              ':bank': 'CMB_CREDIT',
              ':cash': 1700,
            },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        },
        {
          Update: {
            TableName: USERS,
            Key: { id: order.userId },
            UpdateExpression:
              'SET membershipEndMs = :end, #r = :role, version = :next, updatedAt = :now REMOVE membershipExpiredAt',
            ConditionExpression: 'attribute_exists(id) AND version = :version',
            ExpressionAttributeNames: { '#r': 'role' },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            ExpressionAttributeValues: {
              ':end': Date.parse('2026-12-22T08:05:00.000Z'),
              ':role': 1,
              ':version': 3,
              ':next': 4,
              ':now': NOW,
            },
          },
        },
      ],
    });
  });

  it('extends a membership that has not ended in place: + days on the stored end, no version condition', async () => {
    // Prepare
    ddb.on(TransactWriteCommand).resolves({});
    const at = new Date('2026-11-21T08:05:00.000Z');
    // Act
    const result = await transition(paid, { kind: 'extend', days: 31, now: at });
    // Assess
    expect(result).toEqual({ kind: 'committed' });
    expect(ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[1]).toEqual({
      Update: {
        TableName: USERS,
        Key: { id: order.userId },
        UpdateExpression:
          'SET membershipEndMs = membershipEndMs + :delta, #r = :role, updatedAt = :now ADD version :one',
        ConditionExpression: 'membershipEndMs > :at',
        ExpressionAttributeNames: { '#r': 'role' },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        ExpressionAttributeValues: {
          ':delta': 31 * 86_400_000,
          ':at': at.getTime(),
          ':role': 1,
          ':one': 1,
          ':now': NOW,
        },
      },
    });
  });

  it('stores an empty bank type and the order total as cash when WeChat reported neither', async () => {
    // Prepare
    ddb.on(TransactWriteCommand).resolves({});
    // Act
    await transition({ transactionId: paid.transactionId, paidAt: paid.paidAt, paidVia: 'orderquery-v2' });
    // Assess
    const values =
      ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Update
        ?.ExpressionAttributeValues;
    expect(values).toMatchObject({ ':bank': '', ':cash': 1800, ':via': 'orderquery-v2' });
  });

  it('maps a failed order condition to order_changed with the order as it is now', async () => {
    // Prepare
    const now = anOrder({ status: 'PAID', transactionId: paid.transactionId });
    ddb.on(TransactWriteCommand).rejects(transactionCanceled('ConditionalCheckFailed', 'None', now));
    // Act / Assess
    expect(await transition()).toEqual({ kind: 'order_changed', order: now });
  });

  it('maps a failed order condition without the item to order_changed without an order', async () => {
    // Prepare
    ddb
      .on(TransactWriteCommand)
      .rejects(transactionCanceled('ConditionalCheckFailed', 'ConditionalCheckFailed'));
    // Act / Assess
    expect(await transition()).toEqual({ kind: 'order_changed', order: undefined });
  });

  it('maps a failed user condition to user_changed (retry, never a duplicate)', async () => {
    // Prepare
    ddb.on(TransactWriteCommand).rejects(transactionCanceled('None', 'ConditionalCheckFailed'));
    // Act / Assess
    expect(await transition()).toEqual({ kind: 'user_changed' });
  });

  it('returns the refused owner as the app reads it: the stored membershipEndMs as membershipExpiredAt', async () => {
    // Prepare
    const end = Date.parse('2027-01-05T00:00:00.000Z');
    ddb.on(TransactWriteCommand).rejects(
      transactionCanceled('None', 'ConditionalCheckFailed', undefined, {
        id: 'u1',
        version: 7,
        membershipEndMs: end,
      }),
    );
    // Act / Assess
    expect(await transition()).toEqual({
      kind: 'user_changed',
      user: { id: 'u1', version: 7, membershipExpiredAt: '2027-01-05T00:00:00.000Z' },
    });
  });

  it.each([
    ['order', 'TransactionConflict', 'None'],
    ['user', 'None', 'TransactionConflict'],
  ] as const)('maps a TransactionConflict on the %s to conflict', async (_side, orderCode, userCode) => {
    // Prepare
    ddb.on(TransactWriteCommand).rejects(transactionCanceled(orderCode, userCode));
    // Act / Assess
    expect(await transition()).toEqual({ kind: 'conflict' });
  });

  it('rethrows a cancellation it cannot explain and any other error', async () => {
    // Prepare
    const unexplained = transactionCanceled('None', 'None');
    ddb.on(TransactWriteCommand).rejectsOnce(unexplained).rejectsOnce(throttled);
    // Act / Assess
    await expect(transition()).rejects.toBe(unexplained);
    await expect(transition()).rejects.toBe(throttled);
  });

  it('treats a plain ConditionalCheckFailedException as an error, not a cancellation', async () => {
    // Prepare
    const plain = new ConditionalCheckFailedException({ message: 'failed', $metadata: {} });
    ddb.on(TransactWriteCommand).rejects(plain);
    // Act / Assess
    await expect(transition()).rejects.toBe(plain);
  });
});
