import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
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

/** A refund by out_refund_no (strongly consistent), whatever its day or status; undefined when unknown. */
export async function getRefund(table: string, outRefundNo: string): Promise<LedgerRefund | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({
      TableName: table,
      Key: { outTradeNo: `${REFUND_PREFIX}${outRefundNo}` },
      ConsistentRead: true,
    }),
  );
  return Item?.kind === 'refund' ? toRefund(Item) : undefined;
}

function toRefund(item: Record<string, unknown>): LedgerRefund {
  const { outTradeNo: _key, kind: _kind, ...rest } = item;
  return rest as unknown as LedgerRefund;
}
