import type { KeyObject } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { V3Config } from '#lib/config';
import { ConfigError, NotifyRejectedError, RefundRefusedError, UpstreamError } from '#lib/errors';
import { logger } from '#lib/logger';
import { billSha1 } from '#lib/wechat-pay/bill';
import { v3RefundStatus } from '#lib/wechat-pay/refund-protocol';
import { formatRfc3339Cst, rfc3339ToIso } from '#lib/wechat-pay/time';
import {
  buildAuthorization,
  buildPayParamsV3,
  decryptResource,
  encryptSensitiveField,
  sensitiveFieldKey,
  V3DecryptError,
  V3SignatureError,
  type WechatPayVerifier,
} from '#lib/wechat-pay/v3-protocol';
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
} from './payment-provider';
import { RetryableError } from './retry';
import {
  isGzip,
  orderStateConflict,
  payDownload,
  payExchange,
  payUnavailable,
  payUpstream,
  withPayRetry,
} from './wechat-pay-shared';

/** What the v3 client needs: the merchant key and the verifier are built and checked once, by config. */
export type V3ClientConfig = Pick<
  V3Config,
  | 'appId'
  | 'mchId'
  | 'mchSerialNo'
  | 'apiV3Key'
  | 'payPublicKeyId'
  | 'payPublicKeyPem'
  | 'payApiBase'
  | 'notifyUrl'
> & { mchPrivateKey: KeyObject; payVerifier: WechatPayVerifier; platformCertPems?: string[] };

const USER_AGENT = 'wechat-miniprogram-backend (WeChat Pay API v3)';
/** The four headers every v3 response and notify carries (lower-case, as API Gateway payload 2.0 delivers them). */
const SIGNATURE_HEADERS = [
  'wechatpay-serial',
  'wechatpay-signature',
  'wechatpay-timestamp',
  'wechatpay-nonce',
];

/** The v3 refund notify events (退款结果通知). */
const REFUND_EVENTS: ReadonlySet<string> = new Set(['REFUND.SUCCESS', 'REFUND.ABNORMAL', 'REFUND.CLOSED']);

/** A verified transaction object that cannot be read into a report (missing or non-integer field). */
class BadTransactionError extends Error {}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || value === '') throw new BadTransactionError(`missing ${name}`);
  return value;
}

/** Reads a verified v3 transaction object (notify resource or order query) into a report; amounts as exact integers. */
function toReport(transaction: Record<string, unknown>, paidVia: PaymentReport['paidVia']): PaymentReport {
  const amount = transaction.amount;
  if (!isObject(amount)) throw new BadTransactionError('missing amount');
  const total = amount.total;
  if (typeof total !== 'number' || !Number.isSafeInteger(total) || total <= 0) {
    throw new BadTransactionError('amount.total is not a positive integer');
  }
  const payerTotal = amount.payer_total;
  if (
    payerTotal !== undefined &&
    (typeof payerTotal !== 'number' || !Number.isSafeInteger(payerTotal) || payerTotal < 0)
  ) {
    throw new BadTransactionError('bad amount.payer_total');
  }
  const currency = amount.currency ?? 'CNY';
  if (typeof currency !== 'string' || currency === '') throw new BadTransactionError('bad amount.currency');
  const bankType = transaction.bank_type;
  let paidAt: string;
  try {
    paidAt = rfc3339ToIso(text(transaction, 'success_time'));
  } catch {
    throw new BadTransactionError('bad success_time');
  }
  return {
    outTradeNo: text(transaction, 'out_trade_no'),
    transactionId: text(transaction, 'transaction_id'),
    totalFee: total,
    currency,
    paidAt,
    appId: text(transaction, 'appid'),
    mchId: text(transaction, 'mchid'),
    bankType: typeof bankType === 'string' && bankType !== '' ? bankType : undefined,
    cashFee: payerTotal,
    paidVia,
  };
}

/**
 * Reads a verified v3 refund object (refund answer, refund query, or a refund notify's resource, which names the
 * status `refund_status`) into a report; amounts as exact integers.
 */
function toRefundReport(refund: Record<string, unknown>, via: RefundReport['via']): RefundReport {
  const status = v3RefundStatus(refund.status ?? refund.refund_status);
  if (!status) throw new BadTransactionError('bad refund status');
  const amount = refund.amount;
  if (!isObject(amount)) throw new BadTransactionError('missing amount');
  const fee = amount.refund;
  if (typeof fee !== 'number' || !Number.isSafeInteger(fee) || fee <= 0) {
    throw new BadTransactionError('amount.refund is not a positive integer');
  }
  let successAt: string | undefined;
  if (status === 'SUCCESS') {
    try {
      successAt = rfc3339ToIso(text(refund, 'success_time'));
    } catch {
      throw new BadTransactionError('bad success_time');
    }
  }
  const refundId = refund.refund_id;
  const mchId = refund.mchid;
  return {
    outRefundNo: text(refund, 'out_refund_no'),
    outTradeNo: text(refund, 'out_trade_no'),
    status,
    refundId: typeof refundId === 'string' && refundId !== '' ? refundId : undefined,
    refundFee: fee,
    successAt,
    mchId: typeof mchId === 'string' ? mchId : undefined,
    via,
  };
}

/**
 * The four signature headers, in SIGNATURE_HEADERS order, read in one pass over the headers with case ignored; a
 * header absent or present under two spellings reads as '' (missing: never guess which one is real).
 */
function signatureHeaders(headers: NotifyRequest['headers']): [string, string, string, string] {
  const found: [string, string, string, string] = ['', '', '', ''];
  const seen = [0, 0, 0, 0];
  for (const key of Object.keys(headers)) {
    const index = SIGNATURE_HEADERS.indexOf(key.toLowerCase());
    const value = headers[key];
    if (index < 0 || value === undefined) continue;
    seen[index] = (seen[index] as number) + 1;
    found[index] = value;
  }
  for (let index = 0; index < found.length; index++) if (seen[index] !== 1) found[index] = '';
  return found;
}

/**
 * WeChat Pay API v3 (JSON, SHA256withRSA, AEAD_AES_256_GCM) for mini-program JSAPI payments: prepay, order
 * query, the wx.requestPayment paySign and the payment notify. Every response and notify is verified with the
 * WeChat Pay public key and/or platform certificates (combined mode for migration), chosen by Wechatpay-Serial.
 * https://pay.weixin.qq.com/doc/v3/merchant/4012525182 (小程序下单), …/4012791865 (回调), 签名与验签规则.
 */
export class WechatPayV3 implements PaymentProvider {
  readonly version = 'v3' as const;
  private readonly verifier: WechatPayVerifier;
  private readonly privateKey: KeyObject;
  /** The key sensitive fields are encrypted with and its Wechatpay-Serial, chosen on first use. */
  private encryption?: { serial: string; key: KeyObject };

  constructor(private readonly config: V3ClientConfig) {
    this.verifier = config.payVerifier;
    this.privateKey = config.mchPrivateKey;
  }

  /**
   * Sends a signed request (one retry on network error / 5xx / SYSTEM_ERROR, same body bytes) → verified
   * status and JSON body.
   */
  private async call(
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ status: number; data: Record<string, unknown> }> {
    const body = payload === undefined ? '' : JSON.stringify(payload);
    const path = url.split('?')[0] ?? url;
    return withPayRetry('v3', path, () => this.send(method, url, body, path, extraHeaders));
  }

  private async send(
    method: 'GET' | 'POST',
    url: string,
    body: string,
    path: string,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ status: number; data: Record<string, unknown> }> {
    const { config } = this;
    const headers: Record<string, string> = {
      authorization: buildAuthorization({
        mchId: config.mchId,
        serialNo: config.mchSerialNo,
        privateKey: this.privateKey,
        method,
        url,
        body,
      }),
      accept: 'application/json',
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
    };
    if (config.payPublicKeyPem) headers['wechatpay-serial'] = config.payPublicKeyId;
    Object.assign(headers, extraHeaders);

    const answer = await payExchange(`${config.payApiBase}${url}`, {
      method,
      headers,
      body: method === 'GET' ? undefined : body,
    });
    try {
      this.verifier.verify({
        serial: answer.headers.get('wechatpay-serial') ?? '',
        signature: answer.headers.get('wechatpay-signature') ?? '',
        timestamp: answer.headers.get('wechatpay-timestamp') ?? '',
        nonce: answer.headers.get('wechatpay-nonce') ?? '',
        body: answer.text,
        now: Math.floor(Date.now() / 1000),
      });
    } catch (error) {
      if (!(error instanceof V3SignatureError)) throw error;
      // A 2xx (or an error) without a valid signature is treated as forged (WeChat 验签 wechatpay3_3).
      logger.error('wechat pay v3 response signature rejected', {
        path,
        status: answer.status,
        reason: error.reason,
      });
      throw payUpstream(
        '微信支付响应签名无效',
        `${path}: http ${answer.status} ${error.reason}`,
        'WECHAT_PAY_BAD_SIGNATURE',
      );
    }
    let data: unknown = {};
    if (answer.text !== '') {
      try {
        data = JSON.parse(answer.text);
      } catch {
        data = undefined;
      }
    }
    if (!isObject(data)) {
      throw payUpstream('微信支付响应异常', `${path}: unparsable response (http ${answer.status})`);
    }
    if (answer.status >= 300 && data.code === 'SYSTEM_ERROR') throw new RetryableError('SYSTEM_ERROR');
    return { status: answer.status, data };
  }

  /** The typed error for a verified non-2xx answer `{code, message}`. */
  private failure(operation: string, status: number, data: Record<string, unknown>): Error {
    const code = typeof data.code === 'string' ? data.code : `HTTP_${status}`;
    logger.error('wechat pay v3 refused', {
      operation,
      status,
      code,
      message: typeof data.message === 'string' ? data.message.slice(0, 200) : undefined,
    });
    const conflict = orderStateConflict(code);
    if (conflict) return conflict;
    if (status === 429 || code === 'FREQUENCY_LIMITED') return payUnavailable(code);
    return payUpstream('微信支付请求失败', `${operation}: http ${status} ${code}`);
  }

  /**
   * JSAPI prepay (`POST /v3/pay/transactions/jsapi`) → prepay_id. ORDERPAID / ORDER_CLOSED → ConflictError;
   * 429 → ServiceUnavailableError; others → UpstreamError.
   */
  async prepay(request: PrepayRequest): Promise<string> {
    const { config } = this;
    if (!config.notifyUrl) throw new ConfigError('WECHAT_NOTIFY_URL is not set');
    const { status, data } = await this.call('POST', '/v3/pay/transactions/jsapi', {
      appid: request.appId ?? config.appId,
      mchid: config.mchId,
      description: request.description,
      out_trade_no: request.outTradeNo,
      time_expire: formatRfc3339Cst(request.timeExpire),
      notify_url: config.notifyUrl,
      amount: { total: request.totalFee, currency: 'CNY' },
      payer: { openid: request.openid },
      scene_info: { payer_client_ip: request.clientIp },
    });
    if (status >= 200 && status < 300) {
      if (typeof data.prepay_id === 'string' && data.prepay_id !== '') return data.prepay_id;
      throw payUpstream('微信支付下单失败', 'jsapi: no prepay_id');
    }
    throw this.failure('jsapi', status, data);
  }

  /**
   * wx.requestPayment parameters, paySign SHA256withRSA with the merchant key over the appId the prepay used
   * (signType RSA); H5 (`appId` given) also gets `appId`.
   */
  payParams(prepayId: string, appId?: string): PayParams {
    const params = buildPayParamsV3({
      appId: appId ?? this.config.appId,
      prepayId,
      privateKey: this.privateKey,
    });
    return appId ? { appId, ...params } : params;
  }

  /**
   * `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…` → trade state (report on SUCCESS); 404
   * ORDER_NOT_EXIST → NOTEXIST.
   */
  async queryOrder(outTradeNo: string): Promise<OrderQueryResult> {
    const url =
      `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}` +
      `?mchid=${encodeURIComponent(this.config.mchId)}`;
    const { status, data } = await this.call('GET', url);
    if (status === 404 && data.code === 'ORDER_NOT_EXIST') return { tradeState: 'NOTEXIST' };
    if (status < 200 || status >= 300) throw this.failure('orderquery', status, data);
    const tradeState = typeof data.trade_state === 'string' ? data.trade_state : 'UNKNOWN';
    if (tradeState !== 'SUCCESS') return { tradeState };
    try {
      return { tradeState, report: toReport(data, 'orderquery-v3') };
    } catch (error) {
      throw payUpstream('微信支付响应异常', `orderquery: ${(error as Error).message}`);
    }
  }

  /**
   * `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` (关闭订单), then the order query to confirm:
   * CLOSED or NOTEXIST → CLOSED; SUCCESS → its report; a paid order's ORDER_PAID refusal → the query's
   * report. Any other state after a 204 → UpstreamError (not confirmed).
   */
  async closeOrder(outTradeNo: string): Promise<CloseResult> {
    const url = `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}/close`;
    const { status, data } = await this.call('POST', url, { mchid: this.config.mchId });
    const refused = status < 200 || status >= 300;
    if (refused && !orderStateConflict(String(data.code ?? ''))) throw this.failure('close', status, data);
    const query = await this.queryOrder(outTradeNo);
    if ('report' in query) return { tradeState: 'SUCCESS', report: query.report };
    if (query.tradeState === 'CLOSED' || query.tradeState === 'NOTEXIST') return { tradeState: 'CLOSED' };
    throw payUpstream('微信支付关单失败', `close not confirmed: trade_state ${query.tradeState}`);
  }

  /**
   * `GET /v3/bill/tradebill?bill_date=&bill_type=ALL&tar_type=GZIP` (申请交易账单, response verified): 400
   * NO_STATEMENT_EXIST → empty, STATEMENT_CREATING → not_ready; else `{hash_type: SHA1, hash_value, download_url}`,
   * then `GET download_url` signed like any v3 request (下载账单). That answer carries no Wechatpay-Signature, so it
   * is not verified: the SHA-1 of the uncompressed file must equal hash_value instead (UpstreamError otherwise),
   * and the URL must be on the WeChat Pay host we call (our Authorization goes nowhere else).
   */
  async downloadTradeBill(day: string): Promise<TradeBillDownload> {
    const url = `/v3/bill/tradebill?bill_date=${encodeURIComponent(day)}&bill_type=ALL&tar_type=GZIP`;
    const { status, data } = await this.call('GET', url);
    if (status === 400 && data.code === 'NO_STATEMENT_EXIST') return { kind: 'empty' };
    if (status === 400 && data.code === 'STATEMENT_CREATING') return { kind: 'not_ready' };
    if (status < 200 || status >= 300) throw this.failure('tradebill', status, data);
    const { hash_type: hashType, hash_value: hashValue, download_url: downloadUrl } = data;
    if (hashType !== 'SHA1' || typeof hashValue !== 'string' || typeof downloadUrl !== 'string') {
      throw payUpstream('微信支付响应异常', 'tradebill: no SHA1 hash_value / download_url');
    }
    let target: URL;
    try {
      target = new URL(downloadUrl.trim());
    } catch {
      throw payUpstream('微信支付响应异常', 'tradebill: download_url is not a URL');
    }
    if (target.origin !== new URL(this.config.payApiBase).origin) {
      throw payUpstream('微信支付响应异常', `tradebill: download_url on another host (${target.host})`);
    }
    const pathAndQuery = `${target.pathname}${target.search}`;
    const text = await withPayRetry('v3', target.pathname, async () => {
      const answer = await payDownload(target.href, {
        method: 'GET',
        headers: {
          authorization: buildAuthorization({
            mchId: this.config.mchId,
            serialNo: this.config.mchSerialNo,
            privateKey: this.privateKey,
            method: 'GET',
            url: pathAndQuery,
            body: '',
          }),
          accept: '*/*',
          'user-agent': USER_AGENT,
        },
      });
      if (answer.status !== 200) {
        throw payUpstream('微信支付账单下载失败', `billdownload: http ${answer.status}`);
      }
      let bytes = answer.bytes;
      if (isGzip(bytes)) {
        try {
          bytes = gunzipSync(bytes);
        } catch {
          throw payUpstream('微信支付账单损坏', 'billdownload: gzip does not inflate');
        }
      }
      return bytes;
    });
    if (billSha1(text) !== hashValue.toLowerCase()) {
      throw payUpstream(
        '微信支付账单校验失败',
        'billdownload: SHA1 differs from hash_value',
        'WECHAT_PAY_BILL_CORRUPT',
      );
    }
    return { kind: 'bill', text: text.toString('utf8') };
  }

  /**
   * 退款申请 `POST /v3/refund/domestic/refunds` (pay.weixin.qq.com/doc/v3/merchant/4012791862): the refund object
   * (usually PROCESSING). 5xx / SYSTEM_ERROR / timeouts are retried once with the same body; 429 →
   * ServiceUnavailableError; other refusals → RefundRefusedError.
   */
  async refund(request: RefundRequest): Promise<RefundReport> {
    const { config } = this;
    if (!config.notifyUrl) throw new ConfigError('WECHAT_NOTIFY_URL is not set');
    const { status, data } = await this.call('POST', '/v3/refund/domestic/refunds', {
      out_trade_no: request.outTradeNo,
      out_refund_no: request.outRefundNo,
      ...(request.reason ? { reason: request.reason } : {}),
      notify_url: config.notifyUrl,
      amount: { refund: request.refundFee, total: request.totalFee, currency: 'CNY' },
    });
    if (status >= 200 && status < 300) {
      try {
        return toRefundReport(data, 'refund-v3');
      } catch (error) {
        throw payUpstream('微信支付响应异常', `refund: ${(error as Error).message}`);
      }
    }
    const code = typeof data.code === 'string' ? data.code : `HTTP_${status}`;
    if (status === 429 || code === 'FREQUENCY_LIMITED') throw this.failure('refund', status, data);
    logger.error('refund refused', { outRefundNo: request.outRefundNo, status, code });
    throw new RefundRefusedError(code, `refund http ${status} ${code}`);
  }

  /** 查询单笔退款 `GET /v3/refund/domestic/refunds/{out_refund_no}`: the refund; 404 → NOTEXIST. */
  async queryRefund(outRefundNo: string): Promise<RefundReport | { status: 'NOTEXIST' }> {
    const { status, data } = await this.call(
      'GET',
      `/v3/refund/domestic/refunds/${encodeURIComponent(outRefundNo)}`,
    );
    if (status === 404) return { status: 'NOTEXIST' };
    if (status < 200 || status >= 300) throw this.failure('refundquery', status, data);
    try {
      return toRefundReport(data, 'refundquery-v3');
    } catch (error) {
      throw payUpstream('微信支付响应异常', `refundquery: ${(error as Error).message}`);
    }
  }

  /**
   * 发起异常退款 `POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund` (doc 4017150905) with
   * `{out_refund_no, type, bank_type?, bank_account?, real_name?}`: for USER_BANK_CARD bank_account and real_name are
   * encrypted (RSA-OAEP SHA-1) with the WeChat Pay public key, or the newest valid platform certificate, and
   * `Wechatpay-Serial` names it. Answers the refund model (usually PROCESSING). Bounded by the invocation deadline
   * and retried once like every call; 429 → ServiceUnavailableError; another refusal → UpstreamError
   * ABNORMAL_REFUND_REFUSED (WeChat's code in the message); bank fields missing for USER_BANK_CARD → TypeError.
   */
  async applyAbnormalRefund(request: AbnormalRefundRequest): Promise<RefundReport> {
    const { config } = this;
    this.encryption ??= sensitiveFieldKey({
      ...(config.payPublicKeyPem
        ? { publicKey: { id: config.payPublicKeyId, pem: config.payPublicKeyPem } }
        : {}),
      platformCertificates: config.platformCertPems ?? [],
    });
    const { encryption } = this;
    let bank = {};
    if (request.type === 'USER_BANK_CARD') {
      const { bankType, bankAccount, realName } = request;
      if (!bankType || !bankAccount || !realName) {
        throw new TypeError('applyAbnormalRefund: USER_BANK_CARD needs bankType, bankAccount and realName');
      }
      bank = {
        bank_type: bankType,
        bank_account: encryptSensitiveField(encryption.key, bankAccount),
        real_name: encryptSensitiveField(encryption.key, realName),
      };
    }
    const { status, data } = await this.call(
      'POST',
      `/v3/refund/domestic/refunds/${encodeURIComponent(request.refundId)}/apply-abnormal-refund`,
      { out_refund_no: request.outRefundNo, type: request.type, ...bank },
      { 'wechatpay-serial': encryption.serial },
    );
    if (status >= 200 && status < 300) {
      try {
        return toRefundReport(data, 'refund-v3');
      } catch (error) {
        throw payUpstream('微信支付响应异常', `apply-abnormal-refund: ${(error as Error).message}`);
      }
    }
    const failure = this.failure('apply-abnormal-refund', status, data);
    if (!(failure instanceof UpstreamError) || status >= 500) throw failure;
    const code = typeof data.code === 'string' ? data.code : `HTTP_${status}`;
    throw new UpstreamError(
      `微信支付拒绝重新发起退款（${code}）`,
      'ABNORMAL_REFUND_REFUSED',
      `apply-abnormal-refund: http ${status} ${code}`,
    );
  }

  accepts(request: NotifyRequest): boolean {
    return request.body.trimStart().startsWith('{');
  }

  /**
   * Payment notify: the four Wechatpay-* headers verified over the raw body (±300 s, key by serial, SIGNTEST
   * probes refused) → 401; then JSON, TRANSACTION.SUCCESS / transaction, AES-256-GCM with the APIv3 key → 400.
   * REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED (resource `refund`) answer the refund's report; other verified
   * events and trade_state ≠ SUCCESS are acknowledged without credit.
   */
  parseNotify(request: NotifyRequest, nowSeconds: number): NotifyResult {
    if (!this.accepts(request)) throw new NotifyRejectedError('not a v3 notify', 400);
    const [serial, signature, timestamp, nonce] = signatureHeaders(request.headers);
    try {
      this.verifier.verify({ serial, signature, timestamp, nonce, body: request.body, now: nowSeconds });
    } catch (error) {
      if (error instanceof V3SignatureError) throw new NotifyRejectedError('签名验证失败', 401, error.reason);
      throw error;
    }
    let notification: unknown;
    try {
      notification = JSON.parse(request.body);
    } catch {
      throw new NotifyRejectedError('参数格式校验错误', 400, 'body is not JSON');
    }
    if (!isObject(notification))
      throw new NotifyRejectedError('参数格式校验错误', 400, 'body is not an object');
    const eventType = notification.event_type;
    const resource = notification.resource;
    const refund = REFUND_EVENTS.has(String(eventType));
    if (eventType !== 'TRANSACTION.SUCCESS' && !refund)
      return { kind: 'ignored', reason: `event_type ${String(eventType)}` };
    const expectedType = refund ? 'refund' : 'transaction';
    if (!isObject(resource) || resource.original_type !== expectedType) {
      return { kind: 'ignored', reason: `resource is not a ${expectedType}` };
    }
    let plaintext: string;
    try {
      plaintext = decryptResource(resource, this.config.apiV3Key);
    } catch (error) {
      if (error instanceof V3DecryptError) throw new NotifyRejectedError('解密失败', 400, error.reason);
      throw error;
    }
    let transaction: unknown;
    try {
      transaction = JSON.parse(plaintext);
    } catch {
      throw new NotifyRejectedError('参数格式校验错误', 400, 'resource is not JSON');
    }
    if (!isObject(transaction))
      throw new NotifyRejectedError('参数格式校验错误', 400, 'resource is not an object');
    if (refund) {
      try {
        return { kind: 'refund', report: toRefundReport(transaction, 'notify-v3') };
      } catch (error) {
        throw new NotifyRejectedError('参数格式校验错误', 400, (error as Error).message);
      }
    }
    if (transaction.trade_state !== 'SUCCESS') {
      return { kind: 'ignored', reason: `trade_state ${String(transaction.trade_state)}` };
    }
    try {
      return { kind: 'paid', report: toReport(transaction, 'notify-v3') };
    } catch (error) {
      throw new NotifyRejectedError('参数格式校验错误', 400, (error as Error).message);
    }
  }

  /** 204, empty body: "验签通过…HTTP 200 或 204，无需返回应答报文". */
  notifyAck(): NotifyReply {
    return { statusCode: 204, headers: {}, body: '' };
  }

  /** 4xx/5xx with `{"code":"FAIL","message":…}`; WeChat retries on it. A status outside 400–599 becomes 500. */
  notifyFail(status: number, message: string): NotifyReply {
    const statusCode = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
    return {
      statusCode,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'FAIL', message }),
    };
  }
}
