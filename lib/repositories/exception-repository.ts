import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';
import type { ExceptionReason } from '#lib/errors';

/**
 * Payment exceptions: validly signed payments that must never be credited, kept for operators. They live
 * in the orders table (same retention, backups and encryption as the orders they are about) under keys
 * that no out_trade_no can take (`EXCEPTION#…`; out_trade_no is [0-9A-Za-z_-|*]), listed through the
 * sparse byException index.
 */

/** One uncreditable payment, once per (out_trade_no, transaction_id). Amounts in integer fen; times ISO UTC. */
export interface PaymentException {
  outTradeNo: string;
  transactionId: string;
  reason: ExceptionReason;
  /** What our order says (absent when there is no order). */
  orderFee?: number;
  /** What WeChat reported. */
  reportedFee: number;
  /** The channel that reported it: notify-v2, notify-v3, orderquery-v2, orderquery-v3, bill-v2, bill-v3. */
  source: string;
  at: string;
  /** A difference found by the daily bill: the bill's China-time day (YYYY-MM-DD). */
  billDate?: string;
  /** A refund difference: its out_refund_no. */
  outRefundNo?: string;
}

const SHARD = 'EXCEPTION';
/**
 * A payment exception's key: once per (out_trade_no, transaction_id); a bill difference once per (out_trade_no,
 * transaction_id or out_refund_no, reason), whichever day's bill finds it, apart from what notifies recorded.
 */
const keyOf = (exception: PaymentException) =>
  exception.billDate === undefined
    ? `${SHARD}#${exception.outTradeNo}#${exception.transactionId}`
    : `${SHARD}#${exception.outTradeNo}#${exception.outRefundNo ?? exception.transactionId}#${exception.reason}`;

/**
 * Stores an exception unless it is already recorded (once per (out_trade_no, transaction_id), a bill difference
 * once per its key above); true when it is new.
 */
export async function recordException(table: string, exception: PaymentException): Promise<boolean> {
  try {
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: {
          ...exception,
          outTradeNo: keyOf(exception),
          exceptionOutTradeNo: exception.outTradeNo,
          exceptionShard: SHARD,
        },
        ConditionExpression: 'attribute_not_exists(outTradeNo)',
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** A page of exceptions, newest first, from the byException index; `startKey` continues a page. */
export async function listExceptions(
  table: string,
  limit: number,
  startKey?: Record<string, unknown>,
): Promise<{ exceptions: PaymentException[]; lastKey?: Record<string, unknown> }> {
  const { Items = [], LastEvaluatedKey } = await dynamo().send(
    new QueryCommand({
      TableName: table,
      IndexName: 'byException',
      KeyConditionExpression: 'exceptionShard = :shard',
      ExpressionAttributeValues: { ':shard': SHARD },
      ScanIndexForward: false,
      Limit: limit,
      ExclusiveStartKey: startKey,
    }),
  );
  const exceptions = Items.map(({ exceptionOutTradeNo, exceptionShard: _, outTradeNo: __, ...rest }) => ({
    ...rest,
    outTradeNo: exceptionOutTradeNo,
  })) as PaymentException[];
  return { exceptions, lastKey: LastEvaluatedKey };
}
