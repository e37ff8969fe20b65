import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';
import type { PaymentReport } from '#lib/clients/payment-provider';
import { chinaDay } from '#lib/wechat-pay/bill';
import type { PayVersion } from '#lib/wechat-pay/fields';
import { type MembershipChange, membershipUpdate, toUserRecord, type UserRecord } from './user-repository';

export type OrderStatus = 'PENDING' | 'PAID' | 'CLOSED' | 'REFUNDED';

/** An order as stored. Amounts are integer fen; times are ISO 8601 UTC. */
export interface OrderRecord {
  outTradeNo: string;
  userId: string;
  /** The payer's openid; removed (with clientIp) when the owner deletes the account. */
  openid?: string;
  /**
   * The AppID the order was made with when it is not the mini-program's: the official account's
   * (WECHAT_MP_APPID) for an order paid from an H5 page. Absent = the mini-program's (WECHAT_APPID).
   */
  appId?: string;
  planId: string;
  description: string;
  totalFee: number;
  status: OrderStatus;
  payVersion: PayVersion;
  /** The payer's IP sent as spbill_create_ip / payer_client_ip; kept so a re-request is identical. */
  clientIp?: string;
  createdAt: string;
  timeExpire: string;
  prepayId?: string;
  prepayAt?: string;
  transactionId?: string;
  paidAt?: string;
  bankType?: string;
  cashFee?: number;
  paidVia?: string;
  /** When the reconciler next checks this PENDING order with WeChat (ISO UTC); absent once settled or closed. */
  reconcileAt?: string;
  /** When the order was closed (ISO UTC). */
  closedAt?: string;
  /** When a view last queried WeChat for this order (ISO UTC): the query cooldown. */
  lastQueryAt?: string;
  /** The China-time day (YYYY-MM-DD) of paidAt, set by the paid transition: the byLedgerDay index (daily bill). */
  ledgerDay?: string;
  /** Fen reserved by this order's refunds that are not CLOSED (PROCESSING, SUCCESS, ABNORMAL); ≤ totalFee. */
  refundReservedFee?: number;
  /** Fen refunded (refunds in SUCCESS); status REFUNDED when it reaches totalFee. */
  refundedFee?: number;
  /** Membership days revoked so far for this order's refunds: ⌊plan days × refundedFee ÷ totalFee⌋. */
  revokedDays?: number;
  /**
   * The owner as stored when the order was opened: settle's first attempt computes the membership from it
   * instead of reading the user (its transaction is conditioned on this `version`, so any change since is
   * caught and re-read). Absent on orders opened before it existed.
   */
  ownerAtOrder?: OwnerSnapshot;
}

/** What the paid transition needs of the owner: the version it is conditioned on and the membership end. */
export type OwnerSnapshot = Pick<UserRecord, 'version' | 'membershipExpiredAt'>;

/** The sparse byReconcile index holds exactly the orders that carry this attribute: PENDING ones. */
const RECONCILE_SHARD = 'PENDING';

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

/**
 * Creates a new order unless the out_trade_no is taken; false on a collision. An order with `reconcileAt`
 * enters the byReconcile index.
 */
export function createOrder(table: string, order: OrderRecord): Promise<boolean> {
  return writeIf(() =>
    dynamo().send(
      new PutCommand({
        TableName: table,
        Item: order.reconcileAt ? { ...order, reconcileShard: RECONCILE_SHARD } : order,
        ConditionExpression: 'attribute_not_exists(outTradeNo)',
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

/**
 * An order and its owner-to-be in ONE request (BatchGetItem, strongly consistent): the order by out_trade_no,
 * the user by id. Either is undefined when absent.
 */
export async function getOrderAndUser(
  tables: { ordersTable: string; usersTable: string },
  outTradeNo: string,
  userId: string,
): Promise<{ order?: OrderRecord; user?: UserRecord }> {
  const { Responses = {}, UnprocessedKeys = {} } = await dynamo().send(
    new BatchGetCommand({
      RequestItems: {
        [tables.ordersTable]: { Keys: [{ outTradeNo }], ConsistentRead: true },
        [tables.usersTable]: { Keys: [{ id: userId }], ConsistentRead: true },
      },
    }),
  );
  if (Object.keys(UnprocessedKeys).length > 0) throw new Error('BatchGetItem left keys unprocessed');
  return {
    order: Responses[tables.ordersTable]?.[0] as OrderRecord | undefined,
    user: toUserRecord(Responses[tables.usersTable]?.[0]),
  };
}

/** Every order of one user, newest first (pages of the byUser index until done). */
export async function listAllOrdersByUser(table: string, userId: string): Promise<OrderRecord[]> {
  const all: OrderRecord[] = [];
  let startKey: Record<string, string> | undefined;
  do {
    const page = await listOrdersByUser(table, userId, 100, startKey);
    all.push(...page.orders);
    startKey = page.lastKey;
  } while (startKey);
  return all;
}

/**
 * Pseudonymises an order of a deleted account: removes the openid and the payer's IP; the opaque user id and
 * the money fields stay for the books. Idempotent; an absent order is left absent.
 */
export function pseudonymiseOrder(table: string, outTradeNo: string): Promise<boolean> {
  return writeIf(() =>
    dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo },
        UpdateExpression: 'REMOVE openid, clientIp',
        ConditionExpression: 'attribute_exists(outTradeNo)',
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
  /**
   * The owner's condition failed (its version moved, or an in-place extend found the membership ended): retry
   * on `user`, the user as DynamoDB returned it (absent: the user is gone).
   */
  | { kind: 'user_changed'; user?: UserRecord }
  /** DynamoDB reported a conflicting transaction: retry after a pause. */
  | { kind: 'conflict' };

/**
 * The exactly-once paid transition in ONE transaction: the order PENDING → PAID (conditioned on status
 * and amount), its ledgerDay (China day of paidAt, for the daily bill) set, and the owner's membership moved
 * by `membership` (an in-place `extend` while the end is after its `now`, or a `set` on the user's version).
 */
export async function markOrderPaidAndExtendMembership(input: {
  ordersTable: string;
  usersTable: string;
  order: Pick<OrderRecord, 'outTradeNo' | 'totalFee' | 'userId'>;
  paid: PaidFacts;
  membership: MembershipChange;
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
                'SET #s = :paid, transactionId = :tx, paidAt = :paidAt, paidVia = :via, bankType = :bank, cashFee = :cash, ' +
                'ledgerDay = :day ' +
                'REMOVE reconcileShard, reconcileAt',
              ConditionExpression: '#s = :pending AND totalFee = :fee',
              ExpressionAttributeNames: { '#s': 'status' },
              ExpressionAttributeValues: {
                ':paid': 'PAID',
                ':pending': 'PENDING',
                ':fee': order.totalFee,
                ':tx': paid.transactionId,
                ':paidAt': paid.paidAt,
                ':day': chinaDay(paid.paidAt),
                ':via': paid.paidVia,
                ':bank': paid.bankType ?? '',
                ':cash': paid.cashFee ?? order.totalFee,
              },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          { Update: membershipUpdate(input.usersTable, order.userId, input.membership, input.now) },
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
    if (userReason?.Code === 'ConditionalCheckFailed') {
      return userReason.Item
        ? { kind: 'user_changed', user: toUserRecord(unmarshall(userReason.Item)) }
        : { kind: 'user_changed' };
    }
    if ([orderReason?.Code, userReason?.Code].includes('TransactionConflict')) return { kind: 'conflict' };
    throw error;
  }
}

/**
 * Marks a PENDING order CLOSED and takes it out of the byReconcile index. Returns the order as stored now:
 * CLOSED on success, or as it was when it was no longer PENDING (a notify settled it first).
 */
export async function markOrderClosed(
  table: string,
  outTradeNo: string,
  now: string,
): Promise<OrderRecord | undefined> {
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo },
        UpdateExpression: 'SET #s = :closed, closedAt = :now REMOVE reconcileShard, reconcileAt',
        ConditionExpression: '#s = :pending',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':closed': 'CLOSED', ':pending': 'PENDING', ':now': now },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return Attributes as OrderRecord;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      return error.Item ? (unmarshall(error.Item) as OrderRecord) : undefined;
    }
    throw error;
  }
}

/** Moves a PENDING order's next reconcile check to `at` (ISO UTC); a settled or closed order is left alone. */
export async function scheduleReconcile(table: string, outTradeNo: string, at: string): Promise<void> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo },
        UpdateExpression: 'SET reconcileAt = :at',
        ConditionExpression: '#s = :pending AND reconcileShard = :shard',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':at': at, ':pending': 'PENDING', ':shard': RECONCILE_SHARD },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/**
 * A page of PENDING orders whose reconcile check is due (reconcileAt ≤ `due`, ISO UTC), oldest check first,
 * from the sparse byReconcile index (never a Scan).
 */
export async function listOrdersToReconcile(
  table: string,
  due: string,
  limit: number,
  startKey?: Record<string, unknown>,
): Promise<{ orders: OrderRecord[]; lastKey?: Record<string, unknown> }> {
  const { Items = [], LastEvaluatedKey } = await dynamo().send(
    new QueryCommand({
      TableName: table,
      IndexName: 'byReconcile',
      KeyConditionExpression: 'reconcileShard = :shard AND reconcileAt <= :due',
      ExpressionAttributeValues: { ':shard': RECONCILE_SHARD, ':due': due },
      Limit: limit,
      ExclusiveStartKey: startKey,
    }),
  );
  return { orders: Items as OrderRecord[], lastKey: LastEvaluatedKey };
}

/**
 * Takes the right to query WeChat for a PENDING order: true for exactly one caller per `cooldownSeconds`
 * (one conditional UpdateItem on lastQueryAt), false while another caller's query is recent.
 */
export async function claimOrderQuery(
  table: string,
  outTradeNo: string,
  now: Date,
  cooldownSeconds: number,
): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo },
        UpdateExpression: 'SET lastQueryAt = :now',
        ConditionExpression:
          'attribute_exists(outTradeNo) AND (attribute_not_exists(lastQueryAt) OR lastQueryAt <= :cutoff)',
        ExpressionAttributeValues: {
          ':now': now.toISOString(),
          ':cutoff': new Date(now.getTime() - cooldownSeconds * 1000).toISOString(),
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
