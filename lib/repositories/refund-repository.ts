import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';
import type { AbnormalRefundType } from '#lib/clients/payment-provider';
import type { PayVersion } from '#lib/wechat-pay/fields';
import type { RefundStatus } from '#lib/wechat-pay/refund-protocol';
import type { OrderRecord } from './order-repository';
import { membershipUpdate } from './user-repository';

/**
 * Refunds: one item per out_refund_no in the orders table (same retention, backups and encryption as the orders
 * they refund), under keys no out_trade_no can take (`REFUND#…`; out_trade_no is [0-9A-Za-z_-|*]). A PROCESSING
 * refund also sits in the sparse byReconcile index under its own shard (`REFUND`), so the reconciler finds the
 * refunds WeChat has not settled without a Scan and without a second index. The order carries the money side:
 * `refundReservedFee` (reserved by every refund not CLOSED), `refundedFee` (SUCCESS only) and `revokedDays`.
 */

/** One refund as stored. Amounts integer fen; times ISO 8601 UTC. */
export interface RefundRecord {
  /** The table key: `REFUND#<outRefundNo>`. */
  outTradeNo: `REFUND#${string}`;
  kind: 'refund';
  outRefundNo: string;
  /** The refunded order's out_trade_no. */
  refundOf: string;
  /** This refund's refund_fee, fen. */
  amount: number;
  /** The order's total_fee, fen (sent with every retry, so a retry carries identical parameters). */
  totalFee: number;
  status: RefundStatus;
  /** refund_desc / reason, ≤ 80 characters. */
  reason?: string;
  /** WeChat's refund_id, once WeChat named it. */
  refundId?: string;
  /** The pay version the order was paid with (and the refund requested with). */
  payVersion: PayVersion;
  /** The order's AppID when it is not the mini-program's (an H5 order): v2 refunds must name it. */
  appId?: string;
  createdAt: string;
  /** When WeChat reports the refund done (ISO UTC), once SUCCESS. */
  successAt?: string;
  /** The China-time day (YYYY-MM-DD) of successAt: the trade bill that lists it. Set with SUCCESS. */
  ledgerDay?: string;
  /** When CLOSED or ABNORMAL was recorded (ISO UTC). */
  endedAt?: string;
  /** The operator's Idempotency-Key, when one was sent. */
  idempotencyKey?: string;
  /** When the reconciler next asks WeChat about this PROCESSING refund (ISO UTC); absent once final. */
  reconcileAt?: string;
  /** Each re-application of this refund after it went ABNORMAL, oldest first (never bank account or name). */
  reapplications?: RefundReapplication[];
}

/** One re-application of an ABNORMAL refund (apply-abnormal-refund): when (ISO UTC) and where to. */
export interface RefundReapplication {
  at: string;
  type: AbnormalRefundType;
}

/** The byReconcile shard of PROCESSING refunds (PENDING orders use `PENDING`). */
export const REFUND_RECONCILE_SHARD = 'REFUND';
const INDEX_ATTRIBUTES = ['reconcileShard'];

/** The table key of a refund. */
export function refundKey(outRefundNo: string): `REFUND#${string}` {
  return `REFUND#${outRefundNo}`;
}

function toRecord(item: Record<string, unknown> | undefined): RefundRecord | undefined {
  if (!item) return undefined;
  const record = { ...item };
  for (const name of INDEX_ATTRIBUTES) delete record[name];
  return record as unknown as RefundRecord;
}

/** Reads a refund by out_refund_no (strongly consistent); undefined when there is none. */
export async function getRefund(table: string, outRefundNo: string): Promise<RefundRecord | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: { outTradeNo: refundKey(outRefundNo) }, ConsistentRead: true }),
  );
  return toRecord(Item);
}

export type ReserveResult =
  | { kind: 'reserved' }
  /** The out_refund_no is taken (a retried request with the same Idempotency-Key): the stored refund. */
  | { kind: 'refund_exists'; refund?: RefundRecord }
  /** The order is no longer PAID, or its reserve leaves too little: the order as it is now. */
  | { kind: 'order_changed'; order?: OrderRecord }
  | { kind: 'conflict' };

/**
 * Reserves a refund's amount on its order and creates the PROCESSING refund, in ONE transaction, before WeChat is
 * asked: the order stays PAID and `refundReservedFee + amount ≤ totalFee` (as `refundReservedFee ≤ totalFee −
 * amount`, conditioned on the stored total), so concurrent refunds can never sum above total_fee.
 */
export async function reserveRefund(table: string, refund: RefundRecord): Promise<ReserveResult> {
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: table,
              Key: { outTradeNo: refund.refundOf },
              UpdateExpression: 'SET refundReservedFee = if_not_exists(refundReservedFee, :zero) + :amount',
              ConditionExpression:
                '#s = :paid AND totalFee = :total AND (attribute_not_exists(refundReservedFee) OR refundReservedFee <= :limit)',
              ExpressionAttributeNames: { '#s': 'status' },
              ExpressionAttributeValues: {
                ':zero': 0,
                ':amount': refund.amount,
                ':paid': 'PAID',
                ':total': refund.totalFee,
                ':limit': refund.totalFee - refund.amount,
              },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          {
            Put: {
              TableName: table,
              Item: { ...refund, reconcileShard: REFUND_RECONCILE_SHARD },
              ConditionExpression: 'attribute_not_exists(outTradeNo)',
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
        ],
      }),
    );
    return { kind: 'reserved' };
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const [orderReason, refundReason] = error.CancellationReasons ?? [];
    if (refundReason?.Code === 'ConditionalCheckFailed') {
      return {
        kind: 'refund_exists',
        refund: refundReason.Item ? toRecord(unmarshall(refundReason.Item)) : undefined,
      };
    }
    if (orderReason?.Code === 'ConditionalCheckFailed') {
      return {
        kind: 'order_changed',
        order: orderReason.Item ? (unmarshall(orderReason.Item) as OrderRecord) : undefined,
      };
    }
    if ([orderReason?.Code, refundReason?.Code].includes('TransactionConflict')) return { kind: 'conflict' };
    throw error;
  }
}

/** Stores WeChat's refund_id on a refund (idempotent). */
export async function saveRefundId(table: string, outRefundNo: string, refundId: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: table,
      Key: { outTradeNo: refundKey(outRefundNo) },
      UpdateExpression: 'SET refundId = :id',
      ConditionExpression: 'attribute_exists(outTradeNo)',
      ExpressionAttributeValues: { ':id': refundId },
    }),
  );
}

export type RefundTransitionResult =
  | { kind: 'committed' }
  /** The refund is no longer PROCESSING: its current state. */
  | { kind: 'refund_changed'; refund?: RefundRecord }
  /** The order's refundedFee or status moved (another refund of it settled): re-read and retry. */
  | { kind: 'order_changed' }
  /** The owner's version moved: re-read and retry. */
  | { kind: 'user_changed' }
  | { kind: 'conflict' };

/**
 * The refund item's move to `:final`, conditioned on the status the caller read (`refund.status`: PROCESSING, or
 * ABNORMAL for one the merchant resolved since). It leaves the byReconcile index, unless `recheckAt` (ISO UTC)
 * keeps it there to be asked again then.
 */
function refundFinal(
  table: string,
  refund: RefundRecord,
  set: string,
  values: Record<string, unknown>,
  recheckAt?: string,
) {
  return {
    Update: {
      TableName: table,
      Key: { outTradeNo: refundKey(refund.outRefundNo) },
      UpdateExpression: recheckAt
        ? `SET #s = :final, ${set}, reconcileAt = :recheck`
        : `SET #s = :final, ${set} REMOVE reconcileShard, reconcileAt`,
      ConditionExpression: '#s = :from',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':from': refund.status,
        ...values,
        ...(recheckAt ? { ':recheck': recheckAt } : {}),
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    },
  };
}

async function transition(
  items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>,
): Promise<RefundTransitionResult> {
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items }));
    return { kind: 'committed' };
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const reasons = error.CancellationReasons ?? [];
    const [refundReason, orderReason, userReason] = reasons;
    if (refundReason?.Code === 'ConditionalCheckFailed') {
      return {
        kind: 'refund_changed',
        refund: refundReason.Item ? toRecord(unmarshall(refundReason.Item)) : undefined,
      };
    }
    if (orderReason?.Code === 'ConditionalCheckFailed') return { kind: 'order_changed' };
    if (userReason?.Code === 'ConditionalCheckFailed') return { kind: 'user_changed' };
    if (reasons.some((reason) => reason?.Code === 'TransactionConflict')) return { kind: 'conflict' };
    throw error;
  }
}

/**
 * The exactly-once SUCCESS of a refund in ONE transaction: the refund PROCESSING → SUCCESS (successAt, ledgerDay,
 * refundId), the order's refundedFee `previousRefundedFee` → `refundedFee` with `revokedDays` and `status` (PAID,
 * or REFUNDED when fully refunded; conditioned on PAID and the previous refundedFee), and, when the owner still
 * exists, the owner's membership end and role (conditioned on the user's version).
 */
export function markRefundSucceeded(input: {
  ordersTable: string;
  usersTable: string;
  refund: RefundRecord;
  successAt: string;
  ledgerDay: string;
  refundId?: string;
  previousRefundedFee: number;
  refundedFee: number;
  revokedDays: number;
  status: 'PAID' | 'REFUNDED';
  user?: { id: string; version: number; membershipExpiredAt: string; role: 0 | 1 };
  now: string;
}): Promise<RefundTransitionResult> {
  const { refund, user } = input;
  const previous = input.previousRefundedFee;
  return transition([
    refundFinal(input.ordersTable, refund, 'successAt = :at, ledgerDay = :day, refundId = :rid', {
      ':final': 'SUCCESS',
      ':at': input.successAt,
      ':day': input.ledgerDay,
      ':rid': input.refundId ?? refund.refundId ?? '',
    }),
    {
      Update: {
        TableName: input.ordersTable,
        Key: { outTradeNo: refund.refundOf },
        UpdateExpression: 'SET refundedFee = :fee, revokedDays = :days, #s = :status',
        ConditionExpression:
          previous === 0
            ? '#s = :paid AND (attribute_not_exists(refundedFee) OR refundedFee = :old)'
            : '#s = :paid AND refundedFee = :old',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':fee': input.refundedFee,
          ':days': input.revokedDays,
          ':status': input.status,
          ':paid': 'PAID',
          ':old': previous,
        },
      },
    },
    ...(user
      ? [
          {
            Update: membershipUpdate(
              input.usersTable,
              user.id,
              { kind: 'set', end: user.membershipExpiredAt, role: user.role, version: user.version },
              input.now,
            ),
          },
        ]
      : []),
  ]);
}

/**
 * A refund PROCESSING → CLOSED and its amount released from the order's refundReservedFee, in ONE transaction
 * (WeChat closed it: nothing was refunded).
 */
export function markRefundClosed(
  table: string,
  refund: RefundRecord,
  now: string,
): Promise<RefundTransitionResult> {
  return transition([
    refundFinal(table, refund, 'endedAt = :at', { ':final': 'CLOSED', ':at': now }),
    {
      Update: {
        TableName: table,
        Key: { outTradeNo: refund.refundOf },
        UpdateExpression: 'SET refundReservedFee = refundReservedFee - :amount',
        ConditionExpression: 'refundReservedFee >= :amount',
        ExpressionAttributeValues: { ':amount': refund.amount },
      },
    },
  ]);
}

/**
 * A refund PROCESSING → ABNORMAL (the user's card was frozen or closed): its amount stays reserved, and it stays
 * in the byReconcile index, asked again from `recheckAt` (ISO UTC), until the merchant's re-application (商户平台 or
 * apply-abnormal-refund) makes it SUCCESS or CLOSED at WeChat.
 */
export function markRefundAbnormal(
  table: string,
  refund: RefundRecord,
  now: string,
  recheckAt: string,
  refundId?: string,
): Promise<RefundTransitionResult> {
  return transition([
    refundFinal(
      table,
      refund,
      'endedAt = :at, refundId = :rid',
      { ':final': 'ABNORMAL', ':at': now, ':rid': refundId ?? refund.refundId ?? '' },
      recheckAt,
    ),
  ]);
}

/** Moves a PROCESSING or ABNORMAL refund's next reconcile check to `at` (ISO UTC); a final refund is left alone. */
export async function scheduleRefundCheck(table: string, outRefundNo: string, at: string): Promise<void> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo: refundKey(outRefundNo) },
        UpdateExpression: 'SET reconcileAt = :at',
        ConditionExpression: '#s IN (:processing, :abnormal) AND reconcileShard = :shard',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':at': at,
          ':processing': 'PROCESSING',
          ':abnormal': 'ABNORMAL',
          ':shard': REFUND_RECONCILE_SHARD,
        },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/**
 * A page of PROCESSING refunds whose check is due (reconcileAt ≤ `due`, ISO UTC), oldest first, from the sparse
 * byReconcile index under the REFUND shard (never a Scan).
 */
export async function listRefundsToReconcile(
  table: string,
  due: string,
  limit: number,
  startKey?: Record<string, unknown>,
): Promise<{ refunds: RefundRecord[]; lastKey?: Record<string, unknown> }> {
  const { Items = [], LastEvaluatedKey } = await dynamo().send(
    new QueryCommand({
      TableName: table,
      IndexName: 'byReconcile',
      KeyConditionExpression: 'reconcileShard = :shard AND reconcileAt <= :due',
      ExpressionAttributeValues: { ':shard': REFUND_RECONCILE_SHARD, ':due': due },
      Limit: limit,
      ExclusiveStartKey: startKey,
    }),
  );
  return {
    refunds: Items.map((item) => toRecord(item) as RefundRecord),
    lastKey: LastEvaluatedKey,
  };
}

/**
 * An ABNORMAL refund WeChat accepted again (apply-abnormal-refund) → PROCESSING, conditioned on it still being
 * ABNORMAL (the status read), with `reapplication` appended to its reapplications; it stays in the byReconcile index,
 * asked again from `recheckAt` (ISO UTC). Its later SUCCESS or CLOSED is then applied once, like any PROCESSING
 * refund's. 'refund_changed' (with the refund as it is now) when it was no longer ABNORMAL.
 */
export async function markRefundReapplied(
  table: string,
  outRefundNo: string,
  reapplication: RefundReapplication,
  recheckAt: string,
): Promise<{ kind: 'committed' } | { kind: 'refund_changed'; refund?: RefundRecord }> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { outTradeNo: refundKey(outRefundNo) },
        UpdateExpression:
          'SET #s = :processing, reapplications = list_append(if_not_exists(reapplications, :none), :one), ' +
          'reconcileShard = :shard, reconcileAt = :recheck',
        ConditionExpression: '#s = :abnormal',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':processing': 'PROCESSING',
          ':abnormal': 'ABNORMAL',
          ':none': [],
          ':one': [reapplication],
          ':shard': REFUND_RECONCILE_SHARD,
          ':recheck': recheckAt,
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return { kind: 'committed' };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    return { kind: 'refund_changed', refund: error.Item ? toRecord(unmarshall(error.Item)) : undefined };
  }
}
