import { Agent } from 'node:https';
import { gunzipSync } from 'node:zlib';
import type {
  AbnormalRefundRequest,
  CloseResult,
  NotifyReply,
  NotifyRequest,
  NotifyResult,
  OrderQueryResult,
  PaymentProvider,
  PaymentReport,
  PayParams,
  PrepayRequest,
  RefundReport,
  RefundRequest,
  TradeBillDownload,
} from '#lib/clients/payment-provider';
import type { V2Config } from '#lib/config';
import { ConfigError, ConflictError, NotifyRejectedError, RefundRefusedError } from '#lib/errors';
import { logger } from '#lib/logger';
import { compactDay } from '#lib/wechat-pay/bill';
import {
  parseV2DateTime,
  readReqInfo,
  type V2RefundNotifyError,
  v2RefundStatus,
} from '#lib/wechat-pay/refund-protocol';
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
  mtlsExchange,
  orderStateConflict,
  type PayHttpAnswer,
  payDownload,
  payExchange,
  payUpstream,
  withPayRetry,
} from './wechat-pay-shared';

type V2ClientConfig = Pick<
  V2Config,
  'appId' | 'mchId' | 'mchKey' | 'payApiBase' | 'notifyUrl' | 'v2SignType'
> &
  Partial<Pick<V2Config, 'mchTls' | 'payMtlsBase' | 'payCaPem'>>;

/** v2 err_codes after which a refund is retried with the same out_refund_no and parameters (申请退款, 错误码). */
const REFUND_RETRY_CODES = new Set(['SYSTEMERROR', 'BIZERR_NEED_RETRY']);

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

  /**
   * POSTs a signed XML request and returns the verified response fields (return_code SUCCESS, sign valid).
   * `appId`: the order's AppID (the official account's for H5 orders; default the mini-program's); `exchange`:
   * the transport (mutual TLS for /secapi/).
   */
  private async call(
    path: string,
    fields: Record<string, string | number | undefined>,
    {
      appId = this.config.appId,
      exchange = (url, body) =>
        payExchange(url, {
          method: 'POST',
          headers: { 'content-type': 'text/xml; charset=utf-8' },
          body,
        }),
    }: { appId?: string; exchange?: (url: string, body: string) => Promise<PayHttpAnswer> } = {},
  ): Promise<Record<string, string>> {
    const { config } = this;
    const params: Record<string, string | number | undefined> = {
      appid: appId,
      mch_id: config.mchId,
      nonce_str: nonceStr(),
      sign_type: config.v2SignType,
      ...fields,
    };
    params.sign = signV2(params, config.mchKey, config.v2SignType);
    const body = toV2Xml(params);

    return withPayRetry('v2', path, () => this.send(path, body, exchange));
  }

  /**
   * One attempt: POST, then the hardened parse, return_code, the response sign, SYSTEMERROR / BIZERR_NEED_RETRY →
   * retry (the same body: the same out_trade_no / out_refund_no and parameters).
   */
  private async send(
    path: string,
    body: string,
    exchange: (url: string, body: string) => Promise<PayHttpAnswer>,
  ): Promise<Record<string, string>> {
    const base = path.startsWith('/secapi/')
      ? (this.config.payMtlsBase ?? this.config.payApiBase)
      : this.config.payApiBase;
    const answer = await exchange(`${base}${path}`, body);
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
    if (result.result_code !== 'SUCCESS' && REFUND_RETRY_CODES.has(result.err_code ?? '')) {
      throw new RetryableError(result.err_code as string);
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
      { appId: request.appId },
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
    const result = await this.call('/pay/orderquery', { out_trade_no: outTradeNo }, { appId });
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
    const result = await this.call('/pay/closeorder', { out_trade_no: outTradeNo }, { appId });
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

  private tlsAgent?: Agent;

  /** The dedicated mutual-TLS agent: the merchant API certificate and key (WECHAT_MCH_CERT, WECHAT_MCH_PRIVATE_KEY). */
  private agent(): Agent {
    if (!this.tlsAgent) {
      const tls = this.config.mchTls;
      if (!tls)
        throw new ConfigError('WECHAT_MCH_CERT / WECHAT_MCH_PRIVATE_KEY were not loaded by this function');
      this.tlsAgent = new Agent({
        cert: tls.cert,
        key: tls.key,
        // Locally only (WECHAT_PAY_CA): the sandbox's own CA; otherwise the system's trust store.
        ...(this.config.payCaPem ? { ca: this.config.payCaPem } : {}),
        keepAlive: true,
      });
    }
    return this.tlsAgent;
  }

  /**
   * 申请退款 `POST /secapi/pay/refund` over mutual TLS (pay.weixin.qq.com/wiki/doc/api/wxa/wxa_api.php?chapter=9_4):
   * accepted → PROCESSING with refund_id. SYSTEMERROR / BIZERR_NEED_RETRY / 5xx / timeouts are retried once with the
   * same body; other err_codes → RefundRefusedError.
   */
  async refund(request: RefundRequest): Promise<RefundReport> {
    if (!this.config.notifyUrl) throw new ConfigError('WECHAT_NOTIFY_URL is not set');
    const agent = this.agent();
    const result = await this.call(
      '/secapi/pay/refund',
      {
        out_trade_no: request.outTradeNo,
        out_refund_no: request.outRefundNo,
        total_fee: request.totalFee,
        refund_fee: request.refundFee,
        refund_desc: request.reason || undefined,
        notify_url: this.config.notifyUrl,
      },
      { appId: request.appId, exchange: (url, body) => mtlsExchange(url, body, agent) },
    );
    if (result.result_code !== 'SUCCESS') {
      const code = result.err_code ?? 'UNKNOWN';
      logger.error('refund refused', {
        outRefundNo: request.outRefundNo,
        errCode: code,
        errCodeDes: result.err_code_des,
      });
      throw new RefundRefusedError(code, `refund ${code}`);
    }
    return {
      outRefundNo: request.outRefundNo,
      outTradeNo: request.outTradeNo,
      status: 'PROCESSING',
      refundId: result.refund_id,
      refundFee: Number(result.refund_fee ?? request.refundFee),
      via: 'refund-v2',
    };
  }

  /** 查询退款 `POST /pay/refundquery` by out_refund_no (no certificate): the refund's status; REFUNDNOTEXIST → NOTEXIST. */
  async queryRefund(outRefundNo: string, appId?: string): Promise<RefundReport | { status: 'NOTEXIST' }> {
    const result = await this.call('/pay/refundquery', { out_refund_no: outRefundNo }, { appId });
    if (result.result_code !== 'SUCCESS') {
      if (result.err_code === 'REFUNDNOTEXIST') return { status: 'NOTEXIST' };
      throw payUpstream('微信支付查询退款失败', `refundquery ${result.err_code ?? 'UNKNOWN'}`);
    }
    const count = Number(result.refund_count ?? '0');
    for (let n = 0; n < count; n++) {
      if (result[`out_refund_no_${n}`] !== outRefundNo) continue;
      const status = v2RefundStatus(result[`refund_status_${n}`]);
      const fee = result[`refund_fee_${n}`] ?? '';
      if (!status || !FEN.test(fee)) throw payUpstream('微信支付响应异常', 'refundquery: bad refund fields');
      const time = result[`refund_success_time_${n}`];
      return {
        outRefundNo,
        outTradeNo: result.out_trade_no ?? '',
        status,
        refundId: result[`refund_id_${n}`],
        refundFee: Number(fee),
        successAt: status === 'SUCCESS' && time ? parseV2DateTime(time) : undefined,
        mchId: result.mch_id,
        via: 'refundquery-v2',
      };
    }
    return { status: 'NOTEXIST' };
  }

  /**
   * 退款结果通知: no sign; return_code, then `req_info` decrypted (AES-256-ECB, key = MD5 hex of the APIv2 key) and
   * read. A req_info that does not decrypt under our key → NotifyRejectedError 401; missing fields → 400.
   */
  private parseRefundNotify(params: Record<string, string>): NotifyResult {
    if (params.return_code !== 'SUCCESS')
      return { kind: 'ignored', reason: `return_code ${params.return_code}` };
    let info: Record<string, string>;
    try {
      info = readReqInfo(params.req_info ?? '', this.config.mchKey);
    } catch (error) {
      throw new NotifyRejectedError('解密失败', 401, (error as V2RefundNotifyError).reason);
    }
    const status = v2RefundStatus(info.refund_status);
    const fee = info.refund_fee ?? '';
    if (!status || !FEN.test(fee))
      throw new NotifyRejectedError('参数格式校验错误', 400, 'bad refund fields');
    let successAt: string | undefined;
    if (status === 'SUCCESS') {
      try {
        successAt = parseV2DateTime(field(info, 'success_time'));
      } catch {
        throw new NotifyRejectedError('参数格式校验错误', 400, 'bad success_time');
      }
    }
    return {
      kind: 'refund',
      report: {
        outRefundNo: field(info, 'out_refund_no'),
        outTradeNo: field(info, 'out_trade_no'),
        status,
        refundId: info.refund_id,
        refundFee: Number(fee),
        successAt,
        mchId: params.mch_id,
        via: 'notify-v2',
      },
    };
  }

  /**
   * API v2 has no way to re-apply an ABNORMAL refund (its refund status CHANGE): the merchant re-applies it in the
   * merchant platform (商户平台). Always throws ConflictError ABNORMAL_REFUND_V3_ONLY, without calling WeChat.
   */
  async applyAbnormalRefund(_request: AbnormalRefundRequest): Promise<RefundReport> {
    throw new ConflictError(
      '微信支付 v2 不支持通过接口重新发起异常退款，请在微信支付商户平台处理',
      'ABNORMAL_REFUND_V3_ONLY',
    );
  }

  accepts(request: NotifyRequest): boolean {
    return request.body.trimStart().startsWith('<');
  }

  /**
   * Payment notify, or a refund notify (`req_info`, no sign: see parseRefundNotify): hardened XML parse, sign verified in constant time (MD5 or HMAC-SHA256 with the v2 key),
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
    if (params.req_info !== undefined && params.sign === undefined) return this.parseRefundNotify(params);
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
