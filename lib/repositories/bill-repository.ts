import { BatchGetCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';
import type { PayVersion } from '#lib/wechat-pay/fields';

/**
 * Daily bill reports, one per China-time day, in the orders table under `BILL#<YYYY-MM-DD>` (a key no
 * out_trade_no can take: out_trade_no is [0-9A-Za-z_-|*]). A later run of the same day replaces it.
 */

/** A payment line the ledger does not hold as credited. Amounts integer fen. */
export interface PaidNotCredited {
  outTradeNo: string;
  transactionId: string;
  billFee: number;
  /** Our order's status then (ABSENT: no such order). */
  ourStatus: 'ABSENT' | 'PENDING' | 'PAID' | 'CLOSED' | 'REFUNDED';
  /** What the bill run did: credited (or found credited) through the order query + settle, or an exception. */
  outcome?: 'credited' | 'duplicate' | 'exception' | 'failed';
}

/** A payment we credited on that day that the bill does not show. */
export interface CreditedNotInBill {
  outTradeNo: string;
  transactionId: string;
  ourFee: number;
}

/** A payment or refund whose amount differs (fen). `id` is the transaction_id or the out_refund_no. */
export interface AmountMismatch {
  kind: 'payment' | 'refund';
  outTradeNo: string;
  id: string;
  billFee: number;
  ourFee: number;
}

/** A refund line we have no matching record of (unknown, or we hold it CLOSED while the bill says SUCCESS). */
export interface RefundNotRecorded {
  outTradeNo: string;
  outRefundNo: string;
  refundId: string;
  billFee: number;
  billStatus: string;
  ourStatus: 'ABSENT' | 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';
}

/** A successful refund of ours, requested that day, that the bill does not show. */
export interface RefundNotInBill {
  outTradeNo: string;
  outRefundNo: string;
  ourFee: number;
}

/**
 * One day's bill check. `status`: done (a bill was compared), empty (WeChat has no bill: no trade that day;
 * compared with an empty bill), not_ready (WeChat is still making it: checked again later). Amounts integer fen.
 */
export interface BillReport {
  /** China-time day, YYYY-MM-DD. */
  date: string;
  status: 'done' | 'empty' | 'not_ready';
  version: PayVersion;
  /** ISO 8601 UTC. */
  checkedAt: string;
  /** Lines that agree with our ledger. */
  matched: number;
  /** Lines of other apps on the same mchid, left out (absent on reports stored before it existed). */
  otherApps?: number;
  paidNotCredited: PaidNotCredited[];
  creditedNotInBill: CreditedNotInBill[];
  amountMismatch: AmountMismatch[];
  refundsNotRecorded: RefundNotRecorded[];
  refundsNotInBill: RefundNotInBill[];
  /** All differences (the lists' lengths summed). */
  differences: number;
  /** The bill's own totals (its summary line): lines, payments and refunds in fen. */
  totals: { lines: number; paymentFee: number; refundFee: number };
  /** Set on a stored report whose lists were cut to STORED_PER_LIST entries each (`differences` counts all). */
  truncated?: boolean;
}

/** Entries kept per difference list in a stored report (a DynamoDB item holds at most 400 KB). */
export const STORED_PER_LIST = 200;
const LISTS = [
  'paidNotCredited',
  'creditedNotInBill',
  'amountMismatch',
  'refundsNotRecorded',
  'refundsNotInBill',
] as const;

const keyOf = (date: string) => `BILL#${date}`;

/**
 * Stores (or replaces) the report of `report.date`, each difference list cut to STORED_PER_LIST entries (then
 * `truncated`; every difference is also a payment exception).
 */
export async function saveBillReport(table: string, report: BillReport): Promise<void> {
  const stored: BillReport = { ...report };
  for (const list of LISTS) {
    if (report[list].length <= STORED_PER_LIST) continue;
    Object.assign(stored, { [list]: report[list].slice(0, STORED_PER_LIST), truncated: true });
  }
  await dynamo().send(
    new PutCommand({ TableName: table, Item: { ...stored, outTradeNo: keyOf(report.date), kind: 'bill' } }),
  );
}

/**
 * The stored reports of `dates` (YYYY-MM-DD, at most 100) by date, in one strongly consistent BatchGetItem
 * (unprocessed keys are asked again); a date without a report is absent from the map.
 */
export async function getBillReports(
  table: string,
  dates: readonly string[],
): Promise<Map<string, BillReport>> {
  const found = new Map<string, BillReport>();
  let keys: Record<string, unknown>[] = dates.map((date) => ({ outTradeNo: keyOf(date) }));
  for (let round = 1; keys.length > 0; round++) {
    if (round > 3) throw new Error('BatchGetItem left bill report keys unprocessed');
    const { Responses = {}, UnprocessedKeys = {} } = await dynamo().send(
      new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }),
    );
    for (const { outTradeNo: _key, kind: _kind, ...report } of Responses[table] ?? []) {
      found.set(report.date as string, report as BillReport);
    }
    keys = (UnprocessedKeys[table]?.Keys ?? []) as Record<string, unknown>[];
  }
  return found;
}

/** The stored report of `date` (YYYY-MM-DD), strongly consistent; undefined when none. */
export async function getBillReport(table: string, date: string): Promise<BillReport | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: { outTradeNo: keyOf(date) }, ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const { outTradeNo: _key, kind: _kind, ...report } = Item;
  return report as BillReport;
}
