import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import {
  ConfigError,
  ConflictError,
  NotifyRejectedError,
  ServiceUnavailableError,
  UpstreamError,
} from '#lib/errors';
import {
  formatTimeExpire,
  parseV2Xml,
  signV2,
  toV2Xml,
  V2_SUCCESS_REPLY,
  type V2SignType,
  v2FailReply,
  verifyV2Sign,
} from '#lib/wechat-pay/v2-protocol';
import { v2NotifyXml } from '#local/fixtures/notify';
import { rejection, thrown } from '#test/helpers/outcomes';
import { type ScriptedServer, startScripted } from '#test/helpers/scripted-server';

const APP_ID = process.env.WECHAT_APPID as string;
const MCH_ID = process.env.WECHAT_MCH_ID as string;
const MCH_KEY = process.env.WECHAT_MCH_KEY as string;
const NOTIFY_URL = 'https://merchant.example.com/wechat/notify';
const OUT_TRADE_NO = 'M20261121080000abcdefABCDEF';
const TRANSACTION_ID = '4200000215201811190261405420';

let upstream: ScriptedServer;

function client(signType: V2SignType = 'MD5', notifyUrl = NOTIFY_URL): WechatPayV2 {
  return new WechatPayV2({
    appId: APP_ID,
    mchId: MCH_ID,
    mchKey: MCH_KEY,
    payApiBase: upstream.url,
    notifyUrl,
    v2SignType: signType,
  });
}

/** Queues a signed WeChat Pay v2 answer: return_code SUCCESS plus `fields`, signed with the merchant key. */
function answer(
  fields: Record<string, string | number>,
  options: { key?: string; signType?: V2SignType } = {},
) {
  const signType = options.signType ?? 'MD5';
  const params: Record<string, string | number> = {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: APP_ID,
    mch_id: MCH_ID,
    nonce_str: 'answerNonce0001',
    ...(signType === 'HMAC-SHA256' ? { sign_type: signType } : {}),
    ...fields,
  };
  params.sign = signV2(params, options.key ?? MCH_KEY, signType);
  upstream.next(200, toV2Xml(params), { 'content-type': 'text/xml' });
}

const prepayRequest = {
  outTradeNo: OUT_TRADE_NO,
  description: '会员-月度会员',
  totalFee: 1800,
  openid: 'oSandboxOpenid000000',
  clientIp: '203.0.113.7',
  timeExpire: new Date('2026-11-21T10:00:00.000Z'),
};

/** What both the order query and the notify report for the paid order (paid 2026-11-21 16:05:09 CST). */
const PAID_REPORT = {
  outTradeNo: OUT_TRADE_NO,
  transactionId: TRANSACTION_ID,
  totalFee: 1800,
  currency: 'CNY',
  paidAt: '2026-11-21T08:05:09.000Z',
  appId: APP_ID,
  mchId: MCH_ID,
};

const paidQuery = {
  result_code: 'SUCCESS',
  trade_state: 'SUCCESS',
  out_trade_no: OUT_TRADE_NO,
  transaction_id: TRANSACTION_ID,
  total_fee: 1800,
  cash_fee: 1700,
  fee_type: 'CNY',
  bank_type: 'CMB_CREDIT',
  time_end: '20261121160509',
};

beforeAll(async () => {
  upstream = await startScripted();
});
afterAll(() => upstream.close());
afterEach(() => {
  upstream.requests.length = 0;
});

describe('WechatPayV2.prepay (unifiedorder)', () => {
  it.each<V2SignType>(['MD5', 'HMAC-SHA256'])(
    'POSTs the signed (%s) unifiedorder WeChat expects and returns the prepay_id',
    async (signType) => {
      // Prepare
      answer(
        { result_code: 'SUCCESS', prepay_id: 'wx201410272009395522657a690389285100', trade_type: 'JSAPI' },
        { signType },
      );
      // Act
      const prepayId = await client(signType).prepay(prepayRequest);
      // Assess
      expect(prepayId).toBe('wx201410272009395522657a690389285100');
      const [request] = upstream.requests;
      expect(request).toMatchObject({ method: 'POST', url: '/pay/unifiedorder' });
      expect(request?.headers['content-type']).toBe('text/xml; charset=utf-8');
      const sent = parseV2Xml(request?.body ?? '');
      expect(sent).toMatchObject({
        appid: APP_ID,
        mch_id: MCH_ID,
        sign_type: signType,
        body: '会员-月度会员',
        out_trade_no: OUT_TRADE_NO,
        total_fee: '1800',
        spbill_create_ip: '203.0.113.7',
        notify_url: NOTIFY_URL,
        trade_type: 'JSAPI',
        openid: 'oSandboxOpenid000000',
        time_expire: formatTimeExpire(prepayRequest.timeExpire),
      });
      expect(sent.time_expire).toBe('20261121180000');
      expect(sent.nonce_str).toMatch(/^[0-9A-Za-z]{32}$/);
      expect(verifyV2Sign(sent, MCH_KEY, [signType])).toBe(true);
    },
  );

  it('refuses an answer whose sign does not verify with 502 WECHAT_PAY_BAD_SIGNATURE', async () => {
    // Prepare
    answer({ result_code: 'SUCCESS', prepay_id: 'wx_forged' }, { key: 'x'.repeat(32) });
    // Act
    const error = await rejection(client().prepay(prepayRequest));
    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: 'WECHAT_PAY_BAD_SIGNATURE' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('refuses an answer signed with a sign type it did not ask for', async () => {
    // Prepare
    answer({ result_code: 'SUCCESS', prepay_id: 'wx_other_type' }, { signType: 'HMAC-SHA256' });
    // Act
    const error = await rejection(client('MD5').prepay(prepayRequest));
    // Assess
    expect(error).toMatchObject({ code: 'WECHAT_PAY_BAD_SIGNATURE' });
  });

  it('answers 502 for return_code FAIL and for an unparsable answer, without a retry', async () => {
    // Prepare
    upstream.next(200, toV2Xml({ return_code: 'FAIL', return_msg: '签名错误' }));
    upstream.next(200, 'not xml at all');
    // Act
    const failed = await rejection(client().prepay(prepayRequest));
    const garbled = await rejection(client().prepay(prepayRequest));
    // Assess
    expect(failed).toBeInstanceOf(UpstreamError);
    expect((failed as UpstreamError).detail).toContain('签名错误');
    expect(garbled).toBeInstanceOf(UpstreamError);
    expect((garbled as UpstreamError).detail).toContain('unparsable');
    expect(upstream.requests).toHaveLength(2);
  });

  it('retries a signed SYSTEMERROR once with the identical body and returns the second answer', async () => {
    // Prepare
    answer({ result_code: 'FAIL', err_code: 'SYSTEMERROR', err_code_des: '系统超时' });
    answer({ result_code: 'SUCCESS', prepay_id: 'wx_after_retry' });
    // Act
    const prepayId = await client().prepay(prepayRequest);
    // Assess
    expect(prepayId).toBe('wx_after_retry');
    expect(upstream.requests).toHaveLength(2);
    expect(upstream.requests[1]?.body).toBe(upstream.requests[0]?.body);
  });

  it.each([
    ['a signed SYSTEMERROR', () => answer({ result_code: 'FAIL', err_code: 'SYSTEMERROR' })],
    ['a 5xx', () => upstream.next(502, 'bad gateway')],
  ])('answers 503 WECHAT_PAY_UNAVAILABLE after %s twice', async (_name, fail) => {
    // Prepare
    fail();
    fail();
    // Act
    const error = await rejection(client().prepay(prepayRequest));
    // Assess
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ status: 503, code: 'WECHAT_PAY_UNAVAILABLE' });
    expect(upstream.requests).toHaveLength(2);
  });

  it.each([
    ['ORDERPAID', 'ORDER_PAID'],
    ['ORDERCLOSED', 'ORDER_CLOSED'],
  ])('answers 409 for err_code %s', async (errCode, code) => {
    // Prepare
    answer({ result_code: 'FAIL', err_code: errCode, err_code_des: '订单状态' });
    // Act
    const error = await rejection(client().prepay(prepayRequest));
    // Assess
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ status: 409, code });
    expect(upstream.requests).toHaveLength(1);
  });

  it('answers 502 for any other err_code, and for SUCCESS without a prepay_id', async () => {
    // Prepare
    answer({ result_code: 'FAIL', err_code: 'PARAM_ERROR' });
    answer({ result_code: 'SUCCESS' });
    // Act
    const refused = await rejection(client().prepay(prepayRequest));
    const empty = await rejection(client().prepay(prepayRequest));
    // Assess
    expect(refused).toBeInstanceOf(UpstreamError);
    expect((refused as UpstreamError).detail).toBe('unifiedorder PARAM_ERROR');
    expect((empty as UpstreamError).detail).toBe('unifiedorder UNKNOWN');
  });

  it('refuses to prepay without WECHAT_NOTIFY_URL and calls nothing', async () => {
    // Act
    const error = await rejection(client('MD5', '').prepay(prepayRequest));
    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('WechatPayV2.payParams', () => {
  it.each<V2SignType>(['MD5', 'HMAC-SHA256'])('signs wx.requestPayment’s parameters with %s', (signType) => {
    // Act
    const params = client(signType).payParams('wx_prepay_1');
    // Assess
    expect(params.package).toBe('prepay_id=wx_prepay_1');
    expect(params.signType).toBe(signType);
    const { paySign, ...signed } = params;
    expect(paySign).toBe(signV2({ appId: APP_ID, ...signed }, MCH_KEY, signType));
  });
});

describe('WechatPayV2.queryOrder (orderquery)', () => {
  it('reads a verified SUCCESS into an orderquery-v2 report with exact integer amounts', async () => {
    // Prepare
    answer(paidQuery);
    // Act
    const result = await client().queryOrder(OUT_TRADE_NO);
    // Assess
    expect(parseV2Xml(upstream.requests[0]?.body ?? '')).toMatchObject({ out_trade_no: OUT_TRADE_NO });
    expect(upstream.requests[0]?.url).toBe('/pay/orderquery');
    expect(result).toEqual({
      tradeState: 'SUCCESS',
      report: { ...PAID_REPORT, bankType: 'CMB_CREDIT', cashFee: 1700, paidVia: 'orderquery-v2' },
    });
  });

  it('names the trade state of an unpaid order and the err_code of a refused query', async () => {
    // Prepare
    answer({ result_code: 'SUCCESS', trade_state: 'NOTPAY', out_trade_no: OUT_TRADE_NO });
    answer({ result_code: 'FAIL', err_code: 'ORDERNOTEXIST' });
    // Act / Assess
    expect(await client().queryOrder(OUT_TRADE_NO)).toEqual({ tradeState: 'NOTPAY' });
    expect(await client().queryOrder(OUT_TRADE_NO)).toEqual({ tradeState: 'ORDERNOTEXIST' });
  });

  it.each([
    ['a fractional total_fee', { total_fee: '18.00' }],
    ['a bad cash_fee', { cash_fee: '-1' }],
    ['a bad time_end', { time_end: '2026-11-21 16:05:09' }],
  ])('refuses a verified SUCCESS with %s', async (_name, fields) => {
    // Prepare
    answer({ ...paidQuery, ...fields });
    // Act
    const error = await rejection(client().queryOrder(OUT_TRADE_NO));
    // Assess
    expect(error).toBeInstanceOf(NotifyRejectedError);
    expect(error).toMatchObject({ status: 400 });
  });
});

describe('WechatPayV2.parseNotify', () => {
  const notify = (body: string) => ({ headers: { 'content-type': 'text/xml' }, body });
  const statusOf = (body: string) => {
    const error = thrown(() => client().parseNotify(notify(body)));
    expect(error).toBeInstanceOf(NotifyRejectedError);
    return (error as NotifyRejectedError).status;
  };

  it.each<V2SignType>(['MD5', 'HMAC-SHA256'])(
    'reads a genuine %s-signed notify into a notify-v2 report',
    (signType) => {
      // Prepare
      const body = v2NotifyXml({
        outTradeNo: OUT_TRADE_NO,
        totalFee: 1800,
        transactionId: TRANSACTION_ID,
        signType,
        timeEnd: new Date('2026-11-21T08:05:09.000Z'),
      });
      // Act
      const result = client().parseNotify(notify(body));
      // Assess
      expect(result).toEqual({
        kind: 'paid',
        report: { ...PAID_REPORT, bankType: 'OTHERS', cashFee: 1800, paidVia: 'notify-v2' },
      });
    },
  );

  it('refuses a notify signed with another key with 401', () => {
    // Assess
    expect(statusOf(v2NotifyXml({ outTradeNo: OUT_TRADE_NO, totalFee: 1800, key: 'x'.repeat(32) }))).toBe(
      401,
    );
    expect(statusOf(v2NotifyXml({ outTradeNo: OUT_TRADE_NO, totalFee: 1800, sign: '' }))).toBe(401);
  });

  it('refuses a body that is not XML, or XML with a DOCTYPE, with 400', () => {
    // Prepare
    const genuine = v2NotifyXml({ outTradeNo: OUT_TRADE_NO, totalFee: 1800 });
    // Assess
    expect(client().accepts(notify('{"id":"EV-1"}'))).toBe(false);
    expect(statusOf('{"id":"EV-1"}')).toBe(400);
    expect(statusOf(`<!DOCTYPE xml [<!ENTITY x "y">]>${genuine}`)).toBe(400);
    expect(statusOf('<xml><unclosed>')).toBe(400);
  });

  it.each([
    ['result_code FAIL', { result_code: 'FAIL', err_code: 'NOTENOUGH' }, 'result_code FAIL'],
    ['return_code FAIL', { return_code: 'FAIL', return_msg: '通信失败' }, 'return_code FAIL'],
  ])('acknowledges a verified %s without credit', (_name, extra, reason) => {
    // Act
    const result = client().parseNotify(
      notify(v2NotifyXml({ outTradeNo: OUT_TRADE_NO, totalFee: 1800, extra })),
    );
    // Assess
    expect(result).toEqual({ kind: 'ignored', reason });
  });

  it.each([
    ['no out_trade_no', { out_trade_no: undefined }],
    ['no transaction_id', { transaction_id: undefined }],
    ['a fractional total_fee', { total_fee: '18.5' }],
    ['a negative cash_fee', { cash_fee: '-1' }],
    ['an impossible time_end', { time_end: '20261131120000' }],
  ])('refuses a verified SUCCESS notify with %s with 400', (_name, extra) => {
    // Assess
    expect(statusOf(v2NotifyXml({ outTradeNo: OUT_TRADE_NO, totalFee: 1800, extra }))).toBe(400);
  });

  it('answers WeChat’s SUCCESS and FAIL XML replies with 200', () => {
    // Act
    const ack = client().notifyAck();
    const fail = client().notifyFail(409, 'order already paid by another transaction');
    // Assess
    expect(ack).toEqual({ statusCode: 200, headers: { 'content-type': 'text/xml' }, body: V2_SUCCESS_REPLY });
    expect(fail).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'text/xml' },
      body: v2FailReply('order already paid by another transaction'),
    });
  });
});
