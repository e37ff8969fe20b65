import { createHash } from 'node:crypto';
import { CST_OFFSET_MS } from './time';

/**
 * WeChat Pay's trade bill (交易账单, bill_type ALL), the same text in API v2 (`/pay/downloadbill`) and v3
 * (`/v3/bill/tradebill` → download_url): a header line of Chinese column names, one detail line per payment or
 * refund, then a summary header and one summary line. Every detail and summary field is prefixed with a backtick
 * (so Excel keeps long numbers); amounts are in yuan with up to two decimals; times are China time
 * `yyyy-MM-dd HH:mm:ss`. Columns are found by name, so both the 2018+ layout (应结订单金额 … 订单金额, 申请退款金额)
 * and the older one (总金额, 退款金额) read. https://pay.weixin.qq.com/doc/v2/merchant/4011987833 (下载交易账单),
 * https://pay.weixin.qq.com/doc/v3/merchant/4012556654 (申请交易账单).
 *
 * Pure: no I/O, no clock. Errors are BillFormatError naming the line and what is wrong.
 */

/** A bill that cannot be read (line is 1-based; 0 for the whole text). */
export class BillFormatError extends Error {
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(line > 0 ? `bill line ${line}: ${reason}` : `bill: ${reason}`);
    this.name = 'BillFormatError';
  }
}

/** A payment line (交易状态 SUCCESS). Amounts integer fen; `at` ISO 8601 UTC. */
export interface BillPayment {
  kind: 'payment';
  at: string;
  appId: string;
  mchId: string;
  transactionId: string;
  outTradeNo: string;
  /** 订单金额 (2018+ layout) or 总金额: the order's total_fee, before coupons. */
  totalFee: number;
  /** 应结订单金额 (2018+) or 总金额: what settles to the merchant. */
  settlementFee: number;
}

/** A refund line (交易状态 REFUND, or REVOKED: a payment revoked after success). Amounts integer fen. */
export interface BillRefund {
  kind: 'refund';
  /** When the refund was accepted by WeChat (发起退款成功时间, not when it succeeded), ISO 8601 UTC. */
  at: string;
  appId: string;
  mchId: string;
  transactionId: string;
  outTradeNo: string;
  refundId: string;
  outRefundNo: string;
  /** 申请退款金额 (2018+) or 退款金额: what the merchant asked to refund. */
  refundFee: number;
  /** 退款状态 as the bill was made: SUCCESS, PROCESSING, … (it is not updated later). */
  refundStatus: string;
  /** 交易状态: REFUND or REVOKED. */
  tradeState: string;
}

/** The summary line, amounts integer fen (the fee total, with its five decimals, is not read). */
export interface BillSummary {
  /** 总交易单数: every detail line. */
  count: number;
  /** 应结订单总金额 (总交易额 in the older layout). */
  settlementTotal: number;
  /** 退款总金额 (总退款金额 in the older layout). */
  refundTotal: number;
  /** 订单总金额 (2018+ layout only). */
  orderTotal?: number;
  /** 申请退款总金额 (2018+ layout only). */
  requestedRefundTotal?: number;
}

export interface TradeBill {
  payments: BillPayment[];
  refunds: BillRefund[];
  summary: BillSummary;
}

/** Yuan as WeChat writes it (`0.01`, `12`, `3.5`) → integer fen; `null` for anything else. Never a float. */
export function yuanToFen(text: string): number | null {
  const match = /^(0|[1-9]\d{0,11})(?:\.(\d{1,2}))?$/.exec(text);
  if (!match) return null;
  const [, whole, fraction = ''] = match;
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
}

/** Integer fen → yuan with two decimals (`1` → `0.01`); throws RangeError on a non-integer or negative amount. */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError('fen must be a non-negative integer');
  const text = String(fen).padStart(3, '0');
  return `${text.slice(0, -2)}.${text.slice(-2)}`;
}

/** Lowercase hex SHA-1 of the uncompressed bill bytes (v3 `hash_type` SHA1 / `hash_value`). */
export function billSha1(bytes: Uint8Array | string): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** A China-time day `YYYY-MM-DD` → `YYYYMMDD` (v2 bill_date). */
export function compactDay(day: string): string {
  return day.replaceAll('-', '');
}

/** An instant (ISO 8601 or Date) → its China-time day `YYYY-MM-DD`. */
export function chinaDay(at: string | Date): string {
  const ms = typeof at === 'string' ? Date.parse(at) : at.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('chinaDay: invalid time');
  return new Date(ms + CST_OFFSET_MS).toISOString().slice(0, 10);
}

/** Whether `text` is a real calendar day `YYYY-MM-DD`. */
export function isDay(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === text;
}

/** The detail columns read (by name); the others are ignored. */
const COLUMNS = {
  at: '交易时间',
  appId: '公众账号ID',
  mchId: '商户号',
  transactionId: '微信订单号',
  outTradeNo: '商户订单号',
  tradeState: '交易状态',
  refundId: '微信退款单号',
  outRefundNo: '商户退款单号',
  refundStatus: '退款状态',
} as const;

const SUMMARY_COUNT = '总交易单数';
const TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** One backtick-prefixed line → its fields (split on ",`", so a comma inside a product name is kept). */
function fieldsOf(line: string, lineNo: number): string[] {
  if (!line.startsWith('`')) throw new BadLine(lineNo, 'a data line must start with a backtick');
  return line.slice(1).split(',`');
}

class BadLine extends BillFormatError {}

function header(line: string): string[] {
  return line.split(',').map((name) => name.trim());
}

function chinaTimeToIso(text: string, lineNo: number): string {
  const match = TIME.exec(text);
  if (!match) throw new BadLine(lineNo, `交易时间 "${text}" is not yyyy-MM-dd HH:mm:ss`);
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  if (
    check.getUTCDate() !== day ||
    check.getUTCMonth() !== month - 1 ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new BadLine(lineNo, `交易时间 "${text}" is not a real time`);
  }
  return new Date(ms - CST_OFFSET_MS).toISOString();
}

/**
 * Parses a trade bill (ALL, SUCCESS or REFUND) into payments, refunds and the summary, and checks the summary
 * against the lines: 总交易单数 = number of detail lines; 应结订单总金额, 退款总金额, 订单总金额 and 申请退款总金额 =
 * the sums of their columns. Accepts CRLF or LF, a UTF-8 BOM and trailing blank lines. Other trade states
 * (never in an ALL bill) are refused. Throws BillFormatError on a missing column, a malformed amount or time,
 * or a summary that disagrees with the lines.
 */
export function parseTradeBill(text: string): TradeBill {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length > 0 && lines.at(-1)?.trim() === '') lines.pop();
  const summaryAt = lines.findIndex((line) => line.trim().startsWith(SUMMARY_COUNT));
  if (lines.length < 3 || summaryAt < 1 || summaryAt !== lines.length - 2) {
    throw new BillFormatError(0, 'expected a header, detail lines, a summary header and a summary line');
  }
  const names = header(lines[0] as string);
  const at = (name: string): number => names.indexOf(name);
  const index: Record<keyof typeof COLUMNS, number> = Object.fromEntries(
    Object.entries(COLUMNS).map(([key, name]) => {
      const i = at(name);
      if (i < 0) throw new BillFormatError(1, `missing column ${name}`);
      return [key, i];
    }),
  ) as Record<keyof typeof COLUMNS, number>;
  const totalColumn = at('订单金额') >= 0 ? at('订单金额') : at('总金额');
  const settlementColumn = at('应结订单金额') >= 0 ? at('应结订单金额') : at('总金额');
  const refundColumn = at('退款金额');
  const requestedColumn = at('申请退款金额') >= 0 ? at('申请退款金额') : refundColumn;
  if (totalColumn < 0 || settlementColumn < 0 || refundColumn < 0) {
    throw new BillFormatError(1, 'missing an amount column (订单金额/总金额, 应结订单金额, 退款金额)');
  }

  // Lines need the columns read, no more (a header may carry trailing columns the lines leave out).
  const needed =
    Math.max(...Object.values(index), totalColumn, settlementColumn, refundColumn, requestedColumn) + 1;
  const payments: BillPayment[] = [];
  const refunds: BillRefund[] = [];
  const sums = { settlement: 0, refund: 0, total: 0, requested: 0 };
  for (let i = 1; i < summaryAt; i++) {
    const lineNo = i + 1;
    const fields = fieldsOf(lines[i] as string, lineNo);
    if (fields.length < needed) {
      throw new BadLine(lineNo, `${fields.length} fields, the columns read need ${needed}`);
    }
    const text = (column: number) => (fields[column] ?? '').trim();
    const fen = (column: number): number => {
      const value = yuanToFen(text(column));
      if (value === null) {
        throw new BadLine(lineNo, `${names[column]} "${text(column)}" is not an amount in yuan`);
      }
      return value;
    };
    const required = (key: keyof typeof COLUMNS): string => {
      const value = text(index[key]);
      if (value === '' || value === '0') throw new BadLine(lineNo, `${COLUMNS[key]} is empty`);
      return value;
    };
    const settlement = fen(settlementColumn);
    const refund = fen(refundColumn);
    const total = fen(totalColumn);
    const requested = fen(requestedColumn);
    sums.settlement += settlement;
    sums.refund += refund;
    sums.total += total;
    sums.requested += requested;
    const common = {
      at: chinaTimeToIso(text(index.at), lineNo),
      appId: text(index.appId),
      mchId: required('mchId'),
      transactionId: required('transactionId'),
      outTradeNo: required('outTradeNo'),
    };
    const tradeState = text(index.tradeState);
    if (tradeState === 'SUCCESS') {
      payments.push({ kind: 'payment', ...common, totalFee: total, settlementFee: settlement });
    } else if (tradeState === 'REFUND' || tradeState === 'REVOKED') {
      // A revoked (付款码 撤销) payment may carry no refund numbers; a refund must.
      const refundNumber = (key: 'refundId' | 'outRefundNo') =>
        tradeState === 'REFUND' ? required(key) : text(index[key]).replace(/^0$/, '');
      refunds.push({
        kind: 'refund',
        ...common,
        refundId: refundNumber('refundId'),
        outRefundNo: refundNumber('outRefundNo'),
        refundFee: requested,
        refundStatus: text(index.refundStatus),
        tradeState,
      });
    } else {
      throw new BadLine(lineNo, `交易状态 "${tradeState}" is not SUCCESS, REFUND or REVOKED`);
    }
  }

  const summary = parseSummary(
    header(lines[summaryAt] as string),
    lines[summaryAt + 1] as string,
    summaryAt + 2,
  );
  const detailCount = summaryAt - 1;
  const problems: string[] = [];
  if (summary.count !== detailCount)
    problems.push(`${SUMMARY_COUNT} ${summary.count} ≠ ${detailCount} lines`);
  if (summary.settlementTotal !== sums.settlement) problems.push('应结订单总金额 ≠ the sum of 应结订单金额');
  if (summary.refundTotal !== sums.refund) problems.push('退款总金额 ≠ the sum of 退款金额');
  if (summary.orderTotal !== undefined && summary.orderTotal !== sums.total) {
    problems.push('订单总金额 ≠ the sum of 订单金额');
  }
  if (summary.requestedRefundTotal !== undefined && summary.requestedRefundTotal !== sums.requested) {
    problems.push('申请退款总金额 ≠ the sum of 申请退款金额');
  }
  if (problems.length > 0) throw new BillFormatError(summaryAt + 2, problems.join('; '));
  return { payments, refunds, summary };
}

function parseSummary(names: string[], line: string, lineNo: number): BillSummary {
  const fields = fieldsOf(line, lineNo);
  const value = (name: string): string | undefined => {
    const i = names.indexOf(name);
    return i < 0 ? undefined : (fields[i] ?? '').trim();
  };
  /** The first of `names` the summary header has (2018+ name first, then the older one). */
  const fen = (name: string | string[], optional = false): number | undefined => {
    const candidates = Array.isArray(name) ? name : [name];
    const found = candidates.find((candidate) => value(candidate) !== undefined);
    const text = found === undefined ? undefined : value(found);
    if (text === undefined) {
      if (optional) return undefined;
      throw new BadLine(lineNo - 1, `missing summary column ${candidates.join(' / ')}`);
    }
    const amount = yuanToFen(text);
    if (amount === null) throw new BadLine(lineNo, `${name} "${text}" is not an amount in yuan`);
    return amount;
  };
  const count = value(SUMMARY_COUNT) ?? '';
  if (!/^(0|[1-9]\d{0,9})$/.test(count))
    throw new BadLine(lineNo, `${SUMMARY_COUNT} "${count}" is not a count`);
  return {
    count: Number(count),
    settlementTotal: fen(['应结订单总金额', '总交易额']) as number,
    refundTotal: fen(['退款总金额', '总退款金额']) as number,
    orderTotal: fen('订单总金额', true),
    requestedRefundTotal: fen('申请退款总金额', true),
  };
}

/** The 2018+ ALL bill header (免充值券后的结算对账单), as WeChat writes it. */
export const TRADE_BILL_HEADER =
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,' +
  '应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,' +
  '手续费,费率,订单金额,申请退款金额,费率备注';

const SUMMARY_HEADER =
  '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额';

/** One line to write into a bill (what the sandbox processed). Amounts integer fen; `at` a Date. */
export type BillLineInput =
  | {
      kind: 'payment';
      at: Date;
      appId: string;
      mchId: string;
      transactionId: string;
      outTradeNo: string;
      openid: string;
      totalFee: number;
      description: string;
    }
  | {
      kind: 'refund';
      at: Date;
      appId: string;
      mchId: string;
      transactionId: string;
      outTradeNo: string;
      openid: string;
      refundId: string;
      outRefundNo: string;
      refundFee: number;
      refundStatus: string;
      description: string;
    };

function chinaTime(at: Date): string {
  return new Date(at.getTime() + CST_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * Writes an ALL trade bill in WeChat's 2018+ layout (CRLF lines, backticks, yuan, fee 0 at rate 0.60%) — what
 * the sandbox serves; `parseTradeBill` reads it back. Lines are written in the order given.
 */
export function formatTradeBill(lines: BillLineInput[]): string {
  const out = [TRADE_BILL_HEADER];
  const totals = { settlement: 0, refund: 0, total: 0, requested: 0 };
  for (const line of lines) {
    const payment = line.kind === 'payment';
    const amount = payment ? line.totalFee : line.refundFee;
    const settlement = payment ? amount : 0;
    const refund = payment ? 0 : amount;
    totals.settlement += settlement;
    totals.refund += refund;
    totals.total += settlement;
    totals.requested += refund;
    const fields = [
      chinaTime(line.at),
      line.appId,
      line.mchId,
      '0',
      '',
      line.transactionId,
      line.outTradeNo,
      line.openid,
      'JSAPI',
      payment ? 'SUCCESS' : 'REFUND',
      'OTHERS',
      'CNY',
      fenToYuan(settlement),
      '0.00',
      payment ? '0' : line.refundId,
      payment ? '0' : line.outRefundNo,
      fenToYuan(refund),
      '0.00',
      payment ? '' : 'ORIGINAL',
      payment ? '' : line.refundStatus,
      line.description,
      '',
      '0.00000',
      '0.60%',
      fenToYuan(settlement),
      fenToYuan(refund),
      '',
    ];
    out.push(fields.map((field) => `\`${field}`).join(','));
  }
  out.push(SUMMARY_HEADER);
  out.push(
    [
      String(lines.length),
      fenToYuan(totals.settlement),
      fenToYuan(totals.refund),
      '0.00',
      '0.00000',
      fenToYuan(totals.total),
      fenToYuan(totals.requested),
    ]
      .map((field) => `\`${field}`)
      .join(','),
  );
  return `${out.join('\r\n')}\r\n`;
}
