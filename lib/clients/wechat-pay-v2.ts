import { gunzipSync } from 'node:zlib';
import type {
  CloseResult,
  NotifyReply,
  NotifyRequest,
  NotifyResult,
  OrderQueryResult,
  PaymentProvider,
  PaymentReport,
  PayParams,
  PrepayRequest,
  TradeBillDownload,
} from '#lib/clients/payment-provider';
import type { V2Config } from '#lib/config';
import { ConfigError, NotifyRejectedError } from '#lib/errors';
import { logger } from '#lib/logger';
import { compactDay } from '#lib/wechat-pay/bill';
import {
  buildPayParamsV2,
  formatTimeExpire,
  nonceStr,
  parseTimeEnd,
  parseV2Xml,
  signV2,
  toV2Xml,
  V2_SUCCESS_REPLY,
  v2FailReply,
  verifyV2Sign,
} from '#lib/wechat-pay/v2-protocol';
import { RetryableError } from './retry';
import {
  isGzip,
  orderStateConflict,
  payDownload,
  payExchange,
  payUpstream,
  withPayRetry,
} from './wechat-pay-shared';

type V2ClientConfig = Pick<
  V2Config,
  'appId' | 'mchId' | 'mchKey' | 'payApiBase' | 'notifyUrl' | 'v2SignType'
>;

const FEN = /^[1-9]\d{0,9}$/;
const CASH_FEN = /^(0|[1-9]\d{0,9})$/;

/** A required string field of a verified WeChat message; throws NotifyRejectedError when absent. */
function field(params: Record<string, string>, name: string): string {
  const value = params[name];
  if (!value) throw new NotifyRejectedError(`missing ${name}`, 400);
  return value;
}

/** Reads a verified v2 payment message (notify or orderquery) into a report; amounts as exact integers. */
function toReport(params: Record<string, string>, paidVia: PaymentReport['paidVia']): PaymentReport {
  const totalFee = field(params, 'total_fee');
  if (!FEN.test(totalFee)) throw new NotifyRejectedError('total_fee is not an integer amount', 400);
  const cashFee = params.cash_fee;
  if (cashFee !== undefined && !CASH_FEN.test(cashFee)) throw new NotifyRejectedError('bad cash_fee', 400);
  let paidAt: string;
  try {
    paidAt = parseTimeEnd(field(params, 'time_end'));
  } catch {
    throw new NotifyRejectedError('bad time_end', 400);
  }
  return {
    outTradeNo: field(params, 'out_trade_no'),
    transactionId: field(params, 'transaction_id'),
    totalFee: Number(totalFee),
    currency: params.fee_type || 'CNY',
    paidAt,
    appId: field(params, 'appid'),
    mchId: field(params, 'mch_id'),
    bankType: params.bank_type,
    cashFee: cashFee === undefined ? undefined : Number(cashFee),
    paidVia,
  };
}

/**
 * WeChat Pay API v2 (XML, MD5 / HMAC-SHA256) for mini-program JSAPI payments: unifiedorder, orderquery,
 * the wx.requestPayment signature and the payment notify. https://pay.weixin.qq.com/wiki/doc/api/wxa/wxa_api.php
 */
export class WechatPayV2 implements PaymentProvider {
  readonly version = 'v2' as const;

  constructor(private readonly config: V2ClientConfig) {}

  /** POSTs a signed XML request and returns the verified response fields (return_code SUCCESS, sign valid). */
  private async call(
    path: string,
    fields: Record<string, string | number>,
    appId = this.config.appId,
  ): Promise<Record<string, string>> {
    const { config } = this;
    const params: Record<string, string | number> = {
      appid: appId,
      mch_id: config.mchId,
      nonce_str: nonceStr(),
      sign_type: config.v2SignType,
      ...fields,
    };
    params.sign = signV2(params, config.mchKey, config.v2SignType);
    const body = toV2Xml(params);

    return withPayRetry('v2', path, () => this.send(path, body));
  }

  /** One attempt: POST, then the hardened parse, return_code, the response sign, SYSTEMERROR → retry. */
  private async send(path: string, body: string): Promise<Record<string, string>> {
    const answer = await payExchange(`${this.config.payApiBase}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body,
    });
    let result: Record<string, string>;
    try {
      result = parseV2Xml(answer.text);
    } catch {
      throw payUpstream('微信支付响应异常', `${path}: unparsable response (http ${answer.status})`);
    }
    if (result.return_code !== 'SUCCESS') {
      throw payUpstream('微信支付响应异常', `${path}: return_msg ${result.return_msg ?? ''}`);
    }
    if (!verifyV2Sign(result, this.config.mchKey, [this.config.v2SignType])) {
      throw payUpstream('微信支付响应签名无效', `${path}: response sign invalid`, 'WECHAT_PAY_BAD_SIGNATURE');
    }
    if (result.result_code !== 'SUCCESS' && result.err_code === 'SYSTEMERROR') {
      throw new RetryableError('SYSTEMERROR');
    }
    return result;
  }

  /** unifiedorder (trade_type JSAPI) → prepay_id. ORDERPAID / ORDERCLOSED → ConflictError; others → UpstreamError. */
  async prepay(request: PrepayRequest): Promise<string> {
    if (!this.config.notifyUrl) throw new ConfigError('WECHAT_NOTIFY_URL is not set');
    const result = await this.call(
      '/pay/unifiedorder',
      {
        body: request.description,
        out_trade_no: request.outTradeNo,
        total_fee: request.totalFee,
        spbill_create_ip: request.clientIp,
        notify_url: this.config.notifyUrl,
        trade_type: 'JSAPI',
        openid: request.openid,
        time_expire: formatTimeExpire(request.timeExpire),
      },
      request.appId,
    );
    if (result.result_code === 'SUCCESS' && result.prepay_id) return result.prepay_id;
    const code = result.err_code ?? 'UNKNOWN';
    logger.error('unifiedorder refused', {
      outTradeNo: request.outTradeNo,
      errCode: code,
      errCodeDes: result.err_code_des,
    });
    throw orderStateConflict(code) ?? payUpstream('微信支付下单失败', `unifiedorder ${code}`);
  }

  /** wx.requestPayment parameters, signed (appId included) with the configured sign type; H5 also gets `appId`. */
  payParams(prepayId: string, appId?: string): PayParams {
    const params = buildPayParamsV2({
      appId: appId ?? this.config.appId,
      prepayId,
      signType: this.config.v2SignType,
      key: this.config.mchKey,
    });
    return appId ? { appId, ...params } : params;
  }

  /** orderquery by out_trade_no. */
  async queryOrder(outTradeNo: string, appId?: string): Promise<OrderQueryResult> {
    const result = await this.call('/pay/orderquery', { out_trade_no: outTradeNo }, appId);
    if (result.result_code !== 'SUCCESS') return { tradeState: result.err_code ?? 'UNKNOWN' };
    const tradeState = result.trade_state ?? 'UNKNOWN';
    if (tradeState !== 'SUCCESS') return { tradeState };
    return { tradeState, report: toReport(result, 'orderquery-v2') };
  }

  /**
   * closeorder by out_trade_no (WeChat Pay v2 关闭订单): SUCCESS or ORDERCLOSED → CLOSED; ORDERPAID → the
   * order query's report. Other err_codes → UpstreamError.
   */
  async closeOrder(outTradeNo: string, appId?: string): Promise<CloseResult> {
    const result = await this.call('/pay/closeorder', { out_trade_no: outTradeNo }, appId);
    const code = result.result_code === 'SUCCESS' ? 'SUCCESS' : (result.err_code ?? 'UNKNOWN');
    if (code === 'SUCCESS' || code === 'ORDERCLOSED') return { tradeState: 'CLOSED' };
    if (code === 'ORDERPAID') {
      const query = await this.queryOrder(outTradeNo, appId);
      if ('report' in query) return { tradeState: 'SUCCESS', report: query.report };
    }
    throw payUpstream('微信支付关单失败', `closeorder ${code}`);
  }

  /**
   * `POST /pay/downloadbill` (下载交易账单, bill_type ALL, tar_type GZIP) for `day` (China time YYYY-MM-DD). The
   * bill comes back as gzip (or plain text) and carries no sign; a refusal is unsigned XML with return_code FAIL:
   * "No Bill Exist" (error_code 20002) → empty, "Bill Creating" → not_ready, anything else → UpstreamError.
   */
  async downloadTradeBill(day: string): Promise<TradeBillDownload> {
    const { config } = this;
    const params: Record<string, string> = {
      appid: config.appId,
      mch_id: config.mchId,
      nonce_str: nonceStr(),
      sign_type: config.v2SignType,
      bill_date: compactDay(day),
      bill_type: 'ALL',
      tar_type: 'GZIP',
    };
    params.sign = signV2(params, config.mchKey, config.v2SignType);
    const body = toV2Xml(params);
    const path = '/pay/downloadbill';
    return withPayRetry('v2', path, async () => {
      const answer = await payDownload(`${config.payApiBase}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8' },
        body,
      });
      let bytes = answer.bytes;
      if (isGzip(bytes)) {
        try {
          bytes = gunzipSync(bytes);
        } catch {
          throw payUpstream('微信支付账单损坏', `${path}: gzip does not inflate`);
        }
        return { kind: 'bill', text: bytes.toString('utf8') };
      }
      const text = bytes.toString('utf8');
      if (!text.trimStart().startsWith('<')) {
        if (answer.status !== 200) throw payUpstream('微信支付响应异常', `${path}: http ${answer.status}`);
        return { kind: 'bill', text };
      }
      let result: Record<string, string>;
      try {
        result = parseV2Xml(text);
      } catch {
        throw payUpstream('微信支付响应异常', `${path}: unparsable response (http ${answer.status})`);
      }
      const message = (result.return_msg ?? '').toLowerCase();
      if (message.includes('no bill exist')) return { kind: 'empty' };
      if (message.includes('bill creating')) return { kind: 'not_ready' };
      if (message.includes('systemerror') || result.err_code === 'SYSTEMERROR') {
        throw new RetryableError('SYSTEMERROR');
      }
      throw payUpstream(
        '微信支付账单下载失败',
        `${path}: ${result.return_msg ?? ''} ${result.error_code ?? result.err_code ?? ''}`.trim(),
      );
    });
  }

  accepts(request: NotifyRequest): boolean {
    return request.body.trimStart().startsWith('<');
  }

  /**
   * Payment notify: hardened XML parse, sign verified in constant time (MD5 or HMAC-SHA256 with the v2 key),
   * then the fields. return_code / result_code FAIL is acknowledged without credit.
   */
  parseNotify(request: NotifyRequest): NotifyResult {
    if (!this.accepts(request)) throw new NotifyRejectedError('not a v2 notify', 400);
    let params: Record<string, string>;
    try {
      params = parseV2Xml(request.body);
    } catch (error) {
      throw new NotifyRejectedError('参数格式校验错误', 400, (error as { reason?: string }).reason);
    }
    if (!verifyV2Sign(params, this.config.mchKey, ['MD5', 'HMAC-SHA256'])) {
      throw new NotifyRejectedError('签名失败', 401);
    }
    if (params.return_code !== 'SUCCESS')
      return { kind: 'ignored', reason: `return_code ${params.return_code}` };
    if (params.result_code !== 'SUCCESS')
      return { kind: 'ignored', reason: `result_code ${params.result_code}` };
    return { kind: 'paid', report: toReport(params, 'notify-v2') };
  }

  notifyAck(): NotifyReply {
    return { statusCode: 200, headers: { 'content-type': 'text/xml' }, body: V2_SUCCESS_REPLY };
  }

  notifyFail(_status: number, message: string): NotifyReply {
    return { statusCode: 200, headers: { 'content-type': 'text/xml' }, body: v2FailReply(message) };
  }
}
