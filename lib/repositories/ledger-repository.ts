import { BatchGetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';
import type { OrderRecord } from './order-repository';

/**
 * The ledger of one China-time day, for the daily bill: the paid orders and successful refunds whose `ledgerDay`
 * (YYYY-MM-DD, China time of paidAt / successAt) is that day, read from the byLedgerDay index of the orders table.
 * Refunds live in the same table under `REFUND#<out_refund_no>` with `kind: 'refund'`.
 */

export type RefundStatus = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';

/** A refund as stored (integer fen; times ISO 8601 UTC). */
export interface LedgerRefund {
  outRefundNo: string;
  /** The refunded order's out_trade_no. */
  refundOf: string;
  amount: number;
  status: RefundStatus;
  refundId?: string;
  /** When the refund was requested (its bill line is on that China day). */
  createdAt?: string;
  successAt?: string;
  ledgerDay?: string;
}

const REFUND_PREFIX = 'REFUND#';
/** Items read per page of the index. */
const PAGE = 200;

/** Paid orders and successful refunds of `day` (YYYY-MM-DD, China time), every page of the byLedgerDay index. */
export async function ledgerForDay(
  table: string,
  day: string,
): Promise<{ orders: OrderRecord[]; refunds: LedgerRefund[] }> {
  const orders: OrderRecord[] = [];
  const refunds: LedgerRefund[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const { Items = [], LastEvaluatedKey } = await dynamo().send(
      new QueryCommand({
        TableName: table,
        IndexName: 'byLedgerDay',
        KeyConditionExpression: 'ledgerDay = :day',
        ExpressionAttributeValues: { ':day': day },
        Limit: PAGE,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of Items) {
      if (item.kind === 'refund') refunds.push(toRefund(item));
      else orders.push(item as OrderRecord);
    }
    startKey = LastEvaluatedKey;
  } while (startKey);
  return { orders, refunds };
}

/** Keys per BatchGetItem request (DynamoDB's limit). */
const BATCH = 100;
/** BatchGetItem rounds for keys DynamoDB left unprocessed (throttling) before giving up. */
const MAX_ROUNDS = 5;

/**
 * Orders by out_trade_no and refunds by out_refund_no, whatever their day or status, in BatchGetItem requests of
 * 100 keys (strongly consistent): the records of bill lines a day's ledger lacks. Absent ones are left out.
 * Throws when DynamoDB keeps keys unprocessed.
 */
export async function getLedgerItems(
  table: string,
  keys: { outTradeNos: readonly string[]; outRefundNos: readonly string[] },
): Promise<{ orders: OrderRecord[]; refunds: LedgerRefund[] }> {
  const wanted = [
    ...new Set([...keys.outTradeNos, ...keys.outRefundNos.map((no) => `${REFUND_PREFIX}${no}`)]),
  ];
  const orders: OrderRecord[] = [];
  const refunds: LedgerRefund[] = [];
  for (let i = 0; i < wanted.length; i += BATCH) {
    let pending: Record<string, unknown>[] = wanted.slice(i, i + BATCH).map((outTradeNo) => ({ outTradeNo }));
    for (let round = 1; pending.length > 0; round++) {
      if (round > MAX_ROUNDS) throw new Error('BatchGetItem left keys unprocessed');
      const { Responses = {}, UnprocessedKeys = {} } = await dynamo().send(
        new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }),
      );
      for (const item of Responses[table] ?? []) {
        if (item.kind === 'refund') refunds.push(toRefund(item));
        else if (typeof item.outTradeNo === 'string' && !item.outTradeNo.includes('#')) {
          orders.push(item as OrderRecord);
        }
      }
      pending = (UnprocessedKeys[table]?.Keys ?? []) as Record<string, unknown>[];
    }
  }
  return { orders, refunds };
}

function toRefund(item: Record<string, unknown>): LedgerRefund {
  const { outTradeNo: _key, kind: _kind, ...rest } = item;
  return rest as unknown as LedgerRefund;
}
