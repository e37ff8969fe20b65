import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';
import type { PaymentReport } from '#lib/clients/payment-provider';
import type { PayVersion } from '#lib/wechat-pay/fields';

export type OrderStatus = 'PENDING' | 'PAID' | 'CLOSED' | 'REFUNDED';

/** An order as stored. Amounts are integer fen; times are ISO 8601 UTC. */
export interface OrderRecord {
  outTradeNo: string;
  userId: string;
  openid: string;
  planId: string;
  description: string;
  totalFee: number;
  status: OrderStatus;
  payVersion: PayVersion;
  /** The payer's IP sent as spbill_create_ip / payer_client_ip; kept so a re-request is identical. */
  clientIp: string;
  createdAt: string;
  timeExpire: string;
  prepayId?: string;
  prepayAt?: string;
  transactionId?: string;
  paidAt?: string;
  bankType?: string;
  cashFee?: number;
  paidVia?: string;
  closedAt?: string;
}

/** The facts of a reported payment that the exactly-once transition writes onto the order. */
export type PaidFacts = Pick<PaymentReport, 'transactionId' | 'paidAt' | 'bankType' | 'cashFee' | 'paidVia'>;

/** Runs a conditional write; false (nothing written) when its condition fails. */
async function writeIf(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Creates a new order unless the out_trade_no is taken; false on a collision. */
export function createOrder(table: string, order: OrderRecord): Promise<boolean> {
  return writeIf(() =>
    dynamo().send(
      new PutCommand({
        TableName: table,
        Item: order,
        ConditionExpression: 'attribute_not_exists(outTradeNo)',
      }),
    ),
  );
}

/**
 * PENDING → CLOSED once WeChat reports the order closed (its order query answers CLOSED); stamps `closedAt`.
 * False when the order is no longer PENDING (a payment committed first): nothing is written.
 */
export function markOrderClosed(table: string, outTradeNo: string, closedAt: string): Promise<boolean> {
  return writeIf(() =>
    dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo },
        UpdateExpression: 'SET #s = :closed, closedAt = :at',
        ConditionExpression: '#s = :pending',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':closed': 'CLOSED', ':pending': 'PENDING', ':at': closedAt },
      }),
    ),
  );
}

/** Reads an order by out_trade_no (strongly consistent). */
export async function getOrder(table: string, outTradeNo: string): Promise<OrderRecord | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item as OrderRecord | undefined;
}

/**
 * Stores a prepay_id on a PENDING order. Never touches `status`, so a notify that committed first
 * (PAID) is never reverted; returns false when the order is no longer PENDING.
 */
export function savePrepayId(
  table: string,
  outTradeNo: string,
  prepayId: string,
  now: string,
): Promise<boolean> {
  return writeIf(() =>
    dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo },
        UpdateExpression: 'SET prepayId = :p, prepayAt = :t',
        ConditionExpression: '#s = :pending',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':p': prepayId, ':t': now, ':pending': 'PENDING' },
      }),
    ),
  );
}

/** A page of one user's orders, newest first, from the byUser index (never a Scan). */
export async function listOrdersByUser(
  table: string,
  userId: string,
  limit: number,
  startKey?: Record<string, string>,
): Promise<{ orders: OrderRecord[]; lastKey?: Record<string, string> }> {
  const { Items = [], LastEvaluatedKey } = await dynamo().send(
    new QueryCommand({
      TableName: table,
      IndexName: 'byUser',
      KeyConditionExpression: 'userId = :u',
      ExpressionAttributeValues: { ':u': userId },
      ScanIndexForward: false,
      Limit: limit,
      ExclusiveStartKey: startKey,
    }),
  );
  return { orders: Items as OrderRecord[], lastKey: LastEvaluatedKey as Record<string, string> | undefined };
}

export type PaidTransitionResult =
  | { kind: 'committed' }
  /** The order was not PENDING (or its amount differed); `order` is its current state. */
  | { kind: 'order_changed'; order?: OrderRecord }
  /** The user's version moved under us: re-read and retry. */
  | { kind: 'user_changed' }
  /** DynamoDB reported a conflicting transaction: retry after a pause. */
  | { kind: 'conflict' };

/**
 * The exactly-once paid transition in ONE transaction: the order PENDING → PAID (conditioned on status
 * and amount) and the owner's membership set (conditioned on the user's version, optimistic locking).
 */
export async function markOrderPaidAndExtendMembership(input: {
  ordersTable: string;
  usersTable: string;
  order: Pick<OrderRecord, 'outTradeNo' | 'totalFee' | 'userId'>;
  paid: PaidFacts;
  userVersion: number;
  membershipExpiredAt: string;
  now: string;
}): Promise<PaidTransitionResult> {
  const { order, paid } = input;
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: input.ordersTable,
              Key: { outTradeNo: order.outTradeNo },
              UpdateExpression:
                'SET #s = :paid, transactionId = :tx, paidAt = :paidAt, paidVia = :via, bankType = :bank, cashFee = :cash',
              ConditionExpression: '#s = :pending AND totalFee = :fee',
              ExpressionAttributeNames: { '#s': 'status' },
              ExpressionAttributeValues: {
                ':paid': 'PAID',
                ':pending': 'PENDING',
                ':fee': order.totalFee,
                ':tx': paid.transactionId,
                ':paidAt': paid.paidAt,
                ':via': paid.paidVia,
                ':bank': paid.bankType ?? '',
                ':cash': paid.cashFee ?? order.totalFee,
              },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          {
            Update: {
              TableName: input.usersTable,
              Key: { id: order.userId },
              UpdateExpression:
                'SET membershipExpiredAt = :exp, #r = :member, version = :next, updatedAt = :now',
              ConditionExpression: 'attribute_exists(id) AND version = :version',
              ExpressionAttributeNames: { '#r': 'role' },
              ExpressionAttributeValues: {
                ':exp': input.membershipExpiredAt,
                ':member': 1,
                ':version': input.userVersion,
                ':next': input.userVersion + 1,
                ':now': input.now,
              },
            },
          },
        ],
      }),
    );
    return { kind: 'committed' };
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const [orderReason, userReason] = error.CancellationReasons ?? [];
    if (orderReason?.Code === 'ConditionalCheckFailed') {
      return {
        kind: 'order_changed',
        order: orderReason.Item ? (unmarshall(orderReason.Item) as OrderRecord) : undefined,
      };
    }
    if (userReason?.Code === 'ConditionalCheckFailed') return { kind: 'user_changed' };
    if ([orderReason?.Code, userReason?.Code].includes('TransactionConflict')) return { kind: 'conflict' };
    throw error;
  }
}
