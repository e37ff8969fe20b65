import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BillFormatError,
  billSha1,
  chinaDay,
  compactDay,
  fenToYuan,
  formatTradeBill,
  isDay,
  parseTradeBill,
  TRADE_BILL_HEADER,
  yuanToFen,
} from '#lib/wechat-pay/bill';

/**
 * An ALL bill in WeChat's 2018+ layout (官方 下载交易账单 field list): a payment, a refund of part of another
 * order, and a payment whose product name holds a comma; CRLF lines as WeChat sends them.
 */
const ALL_BILL = [
  TRADE_BILL_HEADER,
  '`2026-11-28 13:51:31,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000612202611280000000001,`ORDER0000000001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`18.00,`0.00,`0,`0,`0.00,`0.00,`,`,`会员 月卡,`,`0.10800,`0.60%,`18.00,`0.00,`',
  '`2026-11-28 20:05:09,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000612202611270000000002,`ORDER0000000002,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000002026112800000000001,`RF0000000002,`6.00,`0.00,`ORIGINAL,`SUCCESS,`会员 季卡,`,`-0.03600,`0.60%,`0.00,`6.00,`',
  '`2026-11-28 23:59:59,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000612202611280000000003,`ORDER0000000003,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`会员, 测试,`,`0.00000,`0.60%,`0.01,`0.00,`',
  '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额',
  '`3,`18.01,`6.00,`0.00,`0.07200,`18.01,`6.00',
  '',
].join('\r\n');

describe('yuanToFen', () => {
  it('converts yuan text to integer fen by string arithmetic', () => {
    // Assess
    expect(yuanToFen('0.01')).toBe(1);
    expect(yuanToFen('0.1')).toBe(10);
    expect(yuanToFen('18.00')).toBe(1800);
    expect(yuanToFen('12')).toBe(1200);
    expect(yuanToFen('0.0')).toBe(0);
    // 0.29 * 100 is 28.999999999999996 in floating point; string arithmetic is exact.
    expect(yuanToFen('0.29')).toBe(29);
    expect(yuanToFen('21474836.47')).toBe(2147483647);
  });

  it('refuses anything that is not a plain amount in yuan with at most two decimals', () => {
    // Assess
    for (const text of ['', '0.001', '1e2', '-1.00', '1,000.00', '01.00', ' 1.00', '1.', '.5', 'NaN', '¥1']) {
      expect(yuanToFen(text), text).toBeNull();
    }
  });
});

describe('fenToYuan', () => {
  it('writes integer fen as yuan with two decimals and refuses non-integers', () => {
    // Assess
    expect(fenToYuan(1)).toBe('0.01');
    expect(fenToYuan(1800)).toBe('18.00');
    expect(fenToYuan(0)).toBe('0.00');
    expect(() => fenToYuan(1.5)).toThrow(RangeError);
    expect(() => fenToYuan(-1)).toThrow(RangeError);
  });
});

describe('days', () => {
  it('reads China-time days, their compact form, and refuses impossible dates', () => {
    // Assess
    expect(chinaDay('2026-11-28T15:59:59.000Z')).toBe('2026-11-28');
    expect(chinaDay('2026-11-28T16:00:00.000Z')).toBe('2026-11-29');
    expect(compactDay('2026-11-28')).toBe('20261128');
    expect(isDay('2026-02-29')).toBe(false);
    expect(isDay('2028-02-29')).toBe(true);
    expect(isDay('2026-1-5')).toBe(false);
  });
});

describe('parseTradeBill', () => {
  it('reads payments, refunds and the summary of an ALL bill (CRLF, Chinese headers, a comma in a name)', () => {
    // Act
    const bill = parseTradeBill(ALL_BILL);

    // Assess
    expect(bill.payments).toEqual([
      {
        kind: 'payment',
        at: '2026-11-28T05:51:31.000Z',
        appId: 'wx2421b1c4370ec43b',
        mchId: '10000100',
        transactionId: '4200000612202611280000000001',
        outTradeNo: 'ORDER0000000001',
        totalFee: 1800,
        settlementFee: 1800,
      },
      {
        kind: 'payment',
        at: '2026-11-28T15:59:59.000Z',
        appId: 'wx2421b1c4370ec43b',
        mchId: '10000100',
        transactionId: '4200000612202611280000000003',
        outTradeNo: 'ORDER0000000003',
        totalFee: 1,
        settlementFee: 1,
      },
    ]);
    expect(bill.refunds).toEqual([
      {
        kind: 'refund',
        at: '2026-11-28T12:05:09.000Z',
        appId: 'wx2421b1c4370ec43b',
        mchId: '10000100',
        transactionId: '4200000612202611270000000002',
        outTradeNo: 'ORDER0000000002',
        refundId: '50300000002026112800000000001',
        outRefundNo: 'RF0000000002',
        refundFee: 600,
        refundStatus: 'SUCCESS',
        tradeState: 'REFUND',
      },
    ]);
    expect(bill.summary).toEqual({
      count: 3,
      settlementTotal: 1801,
      refundTotal: 600,
      orderTotal: 1801,
      requestedRefundTotal: 600,
    });
  });

  it('reads LF lines, a UTF-8 BOM and trailing blank lines alike', () => {
    // Act
    const bill = parseTradeBill(`\uFEFF${ALL_BILL.replaceAll('\r\n', '\n')}\n\n`);

    // Assess
    expect(bill.payments).toHaveLength(2);
    expect(bill.refunds).toHaveLength(1);
  });

  it('reads the pre-2018 layout (总金额, 退款金额, three summary totals)', () => {
    // Prepare
    const text = [
      '交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率',
      '`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0,`0.60%',
      '总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额',
      '`1,`0.01,`0.0,`0.0,`0',
    ].join('\r\n');

    // Act
    const bill = parseTradeBill(text);

    // Assess
    expect(bill.payments).toMatchObject([
      {
        outTradeNo: '1415640626',
        transactionId: '1001690740201411100005734289',
        totalFee: 1,
        settlementFee: 1,
      },
    ]);
    expect(bill.summary).toEqual({ count: 1, settlementTotal: 1, refundTotal: 0 });
  });

  it('reads a REVOKED payment without refund numbers, and a header with a column the lines leave out', () => {
    // Prepare
    const text = [
      `${TRADE_BILL_HEADER},新增字段`,
      '`2026-11-28 10:00:00,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000612202611280000000004,`ORDER0000000004,`oUser,`MICROPAY,`REVOKED,`OTHERS,`CNY,`0.00,`0.00,`0,`0,`1.00,`0.00,`,`,`付款码,`,`0.00000,`0.60%,`0.00,`1.00,`',
      '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额',
      '`1,`0.00,`1.00,`0.00,`0.00000,`0.00,`1.00',
    ].join('\r\n');

    // Act
    const bill = parseTradeBill(text);

    // Assess
    expect(bill.refunds).toMatchObject([
      { tradeState: 'REVOKED', outTradeNo: 'ORDER0000000004', refundId: '', outRefundNo: '', refundFee: 100 },
    ]);
  });

  it('refuses a malformed amount, naming the line and the column', () => {
    // Prepare
    const text = ALL_BILL.replace('`18.00,`0.00,`0,`0', '`18.001,`0.00,`0,`0');

    // Act / Assess
    expect(() => parseTradeBill(text)).toThrow(BillFormatError);
    expect(() => parseTradeBill(text)).toThrow(/line 2: 应结订单金额 "18.001" is not an amount in yuan/);
  });

  it('refuses a summary that disagrees with the lines (count and sums)', () => {
    // Assess
    expect(() => parseTradeBill(ALL_BILL.replace('`3,`18.01', '`4,`18.01'))).toThrow(
      /总交易单数 4 ≠ 3 lines/,
    );
    expect(() => parseTradeBill(ALL_BILL.replace('`3,`18.01,`6.00', '`3,`18.02,`6.00'))).toThrow(
      /应结订单总金额/,
    );
    expect(() => parseTradeBill(ALL_BILL.replace(',`18.01,`6.00\r\n', ',`18.01,`6.01\r\n'))).toThrow(
      /申请退款总金额/,
    );
  });

  it('refuses a line without backticks, an impossible time, an unknown trade state and a missing column', () => {
    // Assess
    expect(() => parseTradeBill(ALL_BILL.replace('`2026-11-28 13:51:31,`', '2026-11-28 13:51:31,`'))).toThrow(
      /backtick/,
    );
    expect(() => parseTradeBill(ALL_BILL.replace('2026-11-28 13:51:31', '2026-02-30 13:51:31'))).toThrow(
      /not a real time/,
    );
    expect(() =>
      parseTradeBill(ALL_BILL.replace('`JSAPI,`SUCCESS,`OTHERS', '`JSAPI,`NOTPAY,`OTHERS')),
    ).toThrow(/NOTPAY/);
    expect(() => parseTradeBill(ALL_BILL.replace('商户订单号', '订单号'))).toThrow(
      /missing column 商户订单号/,
    );
    expect(() => parseTradeBill('')).toThrow(BillFormatError);
  });
});

describe('formatTradeBill', () => {
  it('writes what parseTradeBill reads back, and survives gzip with the same SHA-1', () => {
    // Prepare
    const text = formatTradeBill([
      {
        kind: 'payment',
        at: new Date('2026-11-28T15:59:59.000Z'),
        appId: 'wx2421b1c4370ec43b',
        mchId: '10000100',
        transactionId: '4200000612202611280000000009',
        outTradeNo: 'ORDER0000000009',
        openid: 'oUser',
        totalFee: 29,
        description: '会员, 月卡',
      },
      {
        kind: 'refund',
        at: new Date('2026-11-28T02:00:00.000Z'),
        appId: 'wx2421b1c4370ec43b',
        mchId: '10000100',
        transactionId: '4200000612202611270000000008',
        outTradeNo: 'ORDER0000000008',
        openid: 'oUser',
        refundId: '50300000002026112800000000008',
        outRefundNo: 'RF8',
        refundFee: 700,
        refundStatus: 'PROCESSING',
        description: '会员 年卡',
      },
    ]);

    // Act
    const zipped = gzipSync(Buffer.from(text, 'utf8'));
    const bill = parseTradeBill(gunzipSync(zipped).toString('utf8'));

    // Assess
    expect(text).toContain('\r\n`2026-11-28 23:59:59,`wx2421b1c4370ec43b');
    expect(billSha1(gunzipSync(zipped))).toBe(billSha1(text));
    expect(bill.payments.map((p) => [p.outTradeNo, p.totalFee, p.at])).toEqual([
      ['ORDER0000000009', 29, '2026-11-28T15:59:59.000Z'],
    ]);
    expect(bill.refunds.map((r) => [r.outRefundNo, r.refundFee, r.refundStatus])).toEqual([
      ['RF8', 700, 'PROCESSING'],
    ]);
    expect(bill.summary).toMatchObject({ count: 2, settlementTotal: 29, refundTotal: 700 });
  });
});
